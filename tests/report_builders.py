"""Builders of small synthetic run / evaluation / analysis directories for the report tests
(tests/test_report.py and tests/test_report_browser.py), and a self-containment checker."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from PIL import Image


def make_run(
    root: Path, *, records: int = 12, extra: dict | None = None, metrics: bool = True
) -> Path:
    """A run directory with a real tiny-preset config.json and synthetic metrics.jsonl."""
    from lewm.config import preset

    cfg = preset("tiny").to_dict()
    cfg["model"]["action_dim"] = 2
    cfg.update(
        format_version=1,
        lewm_version="0.1.0",
        step=records * 5,
        data={
            "path": "/data/tworoom_train.h5",
            "n_episodes": 12,
            "n_rows": 1109,
            "image_size": 32,
            "env": "tworoom",
        },
        **(extra or {}),
    )
    run = root / "run"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(cfg))
    if metrics:
        lines = [json.dumps(r) for r in metric_records(records)]
        (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return run


def metric_records(n: int) -> list[dict]:
    out = []
    for i in range(1, n + 1):
        r = {
            "step": 5 * i,
            "loss": 1.0 / i,
            "pred_loss": 0.5 / i,
            "sigreg_loss": 1.2 + 1 / i,
            "grad_norm": 1.0,
            "lr": 1e-3,
            "steps_per_s": 10.0,
            "z_std": 0.5,
            "z_eff_rank": 12.0,
            "my_new_metric": float(i),
        }
        if i % 4 == 0:
            r.update(
                val_loss=0.9 / i,
                val_pred_loss=0.4 / i,
                val_sigreg_loss=1.3,
                straightness=0.1 * i / n,
            )
        out.append(r)
    return out


def make_gif(
    path: Path,
    frames: int = 8,
    size: tuple[int, int] = (96, 40),
    noise: bool = False,
    seed: int = 0,
) -> Path:

    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, 768, dtype=np.uint8).tolist()
    ims = []
    for t in range(frames):
        if noise:  # palette noise: incompressible, and written without slow quantisation
            im = Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8), mode="P")
            im.putpalette(palette)
        else:  # a red bar moving right on white
            a = np.full((size[1], size[0], 3), 255, np.uint8)
            a[:, (4 * t) % size[0]] = (200, 30, 30)
            im = Image.fromarray(a)
        ims.append(im)
    path.parent.mkdir(parents=True, exist_ok=True)
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=100, loop=0)
    return path


def make_eval(
    root: Path,
    run: Path | str | None,
    *,
    name: str = "eval",
    samples: int = 16,
    successes=(True, False, True, False),
    seeds=(42, 43),
    gifs: int = 2,
    **top,
) -> Path:
    """An evaluation directory: results.json in the evaluation schema, plus GIFs."""
    d = root / name
    eps = []
    for s in seeds:
        for i, ok in enumerate(successes):
            eps.append(
                {
                    "seed": s,
                    "index": i,
                    "success": ok,
                    "already_solved": i == 0,
                    "random_success": i == 0,
                }
            )
    per_seed = []
    for s in seeds:
        mine = [e for e in eps if e["seed"] == s]
        rate = 100 * np.mean([e["success"] for e in mine])
        per_seed.append(
            {
                "seed": s,
                "episodes": len(mine),
                "success_rate": rate,
                "random_success_rate": 25.0,
                "already_solved_fraction": 0.25,
                "success_rate_excluding_solved": 33.3,
                "plan_seconds_mean": 0.1,
            }
        )
    results = {
        "success_rate": float(np.mean([p["success_rate"] for p in per_seed])),
        "success_rate_std": None,
        "random_success_rate": 25.0,
        "random_success_rate_std": None,
        "std_kind": "sample std over seeds (ddof=1)",
        "already_solved_fraction": 0.25,
        "success_rate_excluding_solved": 33.3,
        "headline_metric": "success_rate_excluding_solved",
        "per_seed": per_seed,
        "episodes": eps,
        "plan_seconds_mean": 0.1,
        "solves": 12,
        "env": "tworoom",
        "env_kwargs": {},
        "checkpoint": str(run) if run is not None else None,
        "model": {"image_size": 32, "frameskip": 5, "action_dim": 2, "history_size": 3},
        "data": "/data/held.h5",
        "profile": "clean",
        "held_out": True,
        "seeds": list(seeds),
        "episodes_per_seed": len(successes),
        "solver": {"solver": "cem", "samples": samples, "iterations": 2, "topk": 2},
        "mpc": {"horizon": 5, "budget": 50},
        "timing": {"total_seconds": 1.5},
        "warnings": ["cem runs 2 iterations (the reference uses 30; P8)"],
    }
    results.update(top)
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps(results))
    for i in range(gifs):
        outcome = "success" if i % 2 == 0 else "fail"
        make_gif(d / "videos" / f"seed42_pair{i:03d}_ep{i}_{outcome}.gif", seed=i)
    return d


def make_analysis(root: Path, *, nested: bool = False) -> Path:

    d = root / "analysis"
    d.mkdir(parents=True)
    quantities = {
        "agent_pos": {
            "linear": {"mse_mean": 0.01, "mse_std": 0.02, "pearson_r": 0.99, "r2": 0.98},
            "mlp": {"mse_mean": 0.001, "mse_std": 0.002, "pearson_r": 0.999, "r2": 0.998},
        }
    }
    probe = {"env": "tworoom", "features": "projector", "quantities": quantities}
    if nested:
        probe = {
            "env": "tworoom",
            "projector": {"quantities": quantities},
            "cls": {"quantities": quantities},
        }
    (d / "probe.json").write_text(json.dumps(probe))
    kinds = {
        "colour": {"t": 1.2, "p": 0.23, "auroc": 0.6, "relative_accuracy": 0.55, "pairs": 50},
        "teleport": {"t": 9.5, "p": 1e-9, "auroc": 0.99, "relative_accuracy": 0.98, "pairs": 50},
    }
    (d / "surprise.json").write_text(json.dumps({"env": "tworoom", "kinds": kinds}))
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(d / "probe_scatter.png")
    return d


class PageParser(HTMLParser):
    """Collects what the self-containment checks need."""

    def __init__(self):
        super().__init__()
        self.urls, self.imgs, self.tables, self.ids, self.scripts = [], [], [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href", "srcset", "poster", "data") and v]
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.imgs.append(a)
        if tag == "table":
            self.tables.append(0)
        if tag == "th" and self.tables:
            self.tables[-1] += 1
        if tag == "script" or (tag == "link" and "stylesheet" in (a.get("rel") or "")):
            self.scripts += 1


def check_self_contained(html: str) -> PageParser:
    p = PageParser()
    p.feed(html)
    for url in p.urls:
        assert not url.lower().startswith(("http:", "https:", "//", "file:")), url[:80]
        assert url.startswith(("data:", "#")), url[:80]
    assert all(img.get("alt", "").strip() for img in p.imgs), "an <img> without alt text"
    assert all(n > 0 for n in p.tables), "a table without <th> headers"
    assert p.scripts == 0
    return p
