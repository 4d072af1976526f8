"""``lewm surprise`` end to end: check, simulate the twins, score, summarise (spec §9.2)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lewm.analysis import perturb
from lewm.analysis.stats import auroc, mean_band, paired_t_test, relative_accuracy
from lewm.analysis.surprise import (
    AFTER,
    KINDS,
    SIGNIFICANCE,
    SurpriseSettings,
    model_surprise,
    pair_seeds,
    simulate_pair,
)
from lewm.errors import CheckpointError


def load_checked(ckpt, env: str, settings: SurpriseSettings, device, stats_from):
    """The model, refused when it is of another environment or has no action statistics."""
    import lewm
    from lewm.eval.episodes import provenance_of

    perturb.check_perturbable(env)
    model = lewm.load(ckpt, device=device, stats_from=stats_from)
    prov = provenance_of(model)
    if prov.env is not None and prov.env != env:
        raise CheckpointError(f"{ckpt} was trained on {prov.env!r} data, not {env!r}")
    if model.action_normalizer is None:
        raise CheckpointError(f"{ckpt}: no action statistics; pass --stats-from TRAINING_FILE.h5")
    settings.check(model.history_size)
    return model


def run_surprise(
    ckpt, env: str, settings: SurpriseSettings | None = None, *, device: Any = "cpu",
    stats_from=None, log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], np.ndarray]:  # fmt: skip
    """Simulate ``settings.pairs`` twin sets, score them; returns (surprise.json dict, PNG bytes)."""
    from lewm.envs.factory import make_env

    settings = settings or SurpriseSettings()
    perturb.check_perturbable(env)
    t0 = time.perf_counter()
    model = load_checked(ckpt, env, settings, device, stats_from)
    f = int(model.frameskip)
    sim, used = make_env(env, int(model.image_size), env_kwargs=dict(settings.env_kwargs))
    runs: dict[str, list] = {k: [] for k in ("unperturbed", *KINDS)}
    events: dict[str, list] = {k: [] for k in KINDS}
    try:
        for i in range(settings.pairs):
            pair = simulate_pair(env, sim, pair_seeds(settings.seed, i), settings, f)
            for kind, (frames, actions, what) in pair.items():
                runs[kind].append((frames, actions))
                if what is not None:
                    events[kind].append(what)
    finally:
        getattr(sim, "close", lambda: None)()
    sim_s = time.perf_counter() - t0
    log(f"simulated {settings.pairs} pairs x {1 + len(KINDS)} trajectories in {sim_s:.1f} s")
    surprise = {
        kind: model_surprise(
            model, np.stack([r[0] for r in rs]), np.stack([r[1] for r in rs]), settings.normalise
        )  # fmt: skip
        for kind, rs in runs.items()
    }
    result = summarise(surprise, settings, model.history_size)
    result.update(
        env=env, checkpoint=str(ckpt), image_size=int(model.image_size), frameskip=f,
        env_kwargs=used, objects=dict(zip(("policy", "colour", "teleport"), perturb.OBJECTS[env], strict=True)),
        events={k: v[:5] for k, v in events.items()},
        seconds={"simulation": round(sim_s, 2), "total": round(time.perf_counter() - t0, 2)},
    )  # fmt: skip
    return result, surprise


def summarise(surprise: dict[str, np.ndarray], s: SurpriseSettings, window: int) -> dict[str, Any]:
    """Test statistics per kind and mean curves (surprise.json without the run description)."""
    e = s.event_frame
    stat = {k: np.nanmax(v[:, e : e + AFTER], axis=1) for k, v in surprise.items()}  # (pairs,)
    base = stat["unperturbed"]
    kinds = {}
    for kind in KINDS:
        t, p = paired_t_test(stat[kind], base)
        kinds[kind] = {
            "t": t, "p": p, "significant": None if p is None else bool(p < SIGNIFICANCE and t > 0),
            "auroc": auroc(stat[kind], base), "relative_accuracy": relative_accuracy(stat[kind], base),
            "pairs": int(len(base)), "mean_max_surprise": float(stat[kind].mean()),
            "mean_max_surprise_unperturbed": float(base.mean()),
        }  # fmt: skip
    curves = {}
    for kind, v in surprise.items():
        mean, low, high = mean_band(v[:, 1:])
        curves[kind] = {"steps": list(range(1, v.shape[1])), "mean": mean, "low": low, "high": high}
    return {
        "kinds": kinds,
        "pairs": s.pairs,
        "frames": s.frames,
        "event_frame": e,
        "window": window,
        "statistic": f"max surprise over model frames {e}..{e + AFTER - 1} (the {AFTER} steps from the event)",
        "surprise": "sum over dimensions of the squared error"
        + (", each divided by its variance" if s.normalise else ""),
        "test": f"paired t-test (scipy.stats.ttest_rel, two-sided), significant: p < {SIGNIFICANCE} and t > 0",
        "seed": s.seed,
        "curves": curves,
    }


def surprise_files(result: dict[str, Any]) -> dict[str, bytes]:
    """surprise.png, then surprise.json."""
    from lewm.analysis.outputs import json_bytes
    from lewm.analysis.plots import surprise_curves

    e = result["event_frame"]
    title = f"{result['env']}: surprise, {result['pairs']} pairs per kind (mean, 95 % band)"
    png = surprise_curves(title, result["curves"], e, (e, e + AFTER - 1))
    return {"surprise.png": png, "surprise.json": json_bytes(result)}


def surprise_table(result: dict[str, Any]) -> str:
    lines = [f"{'kind':<10} {'t':>8} {'p':>10} {'AUROC':>6} {'rel.acc':>7}  paper (LeWM)"]
    paper = {"colour": "weaker, not significant", "teleport": "sharp spike, p < 0.01"}
    for kind, s in result["kinds"].items():
        t = "-" if s["t"] is None else f"{s['t']:.2f}"
        p = "-" if s["p"] is None else f"{s['p']:.2g}"
        lines.append(f"{kind:<10} {t:>8} {p:>10} {s['auroc']:>6.3f} {s['relative_accuracy']:>7.3f}  {paper[kind]}")  # fmt: skip
    return "\n".join(lines)
