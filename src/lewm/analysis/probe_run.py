"""``lewm probe``: probe a checkpoint's frozen embeddings for physical quantities (spec §9.1).

:func:`run_probe` checks every input (file, quantities, split, checkpoint, image size)
before it encodes anything, encodes the chosen rows once, then fits per feature kind
(projector output and CLS before the projector), per split seed and per quantity a
linear and an MLP probe. Headline numbers are those of the first split seed (the spec's
protocol: seed 0); the others give the spread. Angles are probed as given and, as a
second quantity ``NAME_cos_sin``, as (cos, sin).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lewm.analysis import quantities as qty
from lewm.analysis.features import (
    FEATURE_KINDS,
    check_image_size,
    encode_rows,
    episode_of_rows,
    select_rows,
)
from lewm.analysis.probe import LAMBDAS, MLPConfig, Standardizer, fit_mlps, fit_ridge, scores
from lewm.analysis.splits import FRACTIONS, EpisodeSplit, masks, split_episodes
from lewm.errors import ConfigError

PROBES = ("linear", "mlp")
METRICS = ("mse_mean", "mse_std", "pearson_r", "r2")


@dataclass(frozen=True)
class ProbeSettings:
    """What :func:`run_probe` does besides which checkpoint and file."""

    quantities: tuple[str, ...] = ()  # () = the environment's table (spec §9.1)
    env: str | None = None  # None = the file's recorded environment, else guessed
    split_seeds: tuple[int, ...] = (0, 1, 2)
    features: tuple[str, ...] = FEATURE_KINDS
    mlp: MLPConfig | None = field(default_factory=MLPConfig)  # None: linear probes only
    mlp_all_seeds: bool = False  # MLP probes on every split seed (default: the first only)
    every: int = 1  # probe every ``every``-th row of each episode
    max_frames: int | None = None
    batch_size: int = 256
    resize_frames: bool = False
    scatter_points: int = 1500

    def __post_init__(self) -> None:
        if not self.split_seeds:
            raise ConfigError("--split-seeds: give at least one seed")
        bad = [f for f in self.features if f not in FEATURE_KINDS]
        if bad or not self.features:
            raise ConfigError(f"--features: unknown {bad}; choose from {list(FEATURE_KINDS)}")
        if self.every < 1 or self.batch_size < 1:
            raise ConfigError("--every and --batch-size must be positive")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError("--max-frames must be positive")


@dataclass
class Target:
    name: str
    values: np.ndarray  # (N, k)
    info: dict[str, Any]


def load_targets(
    info, settings: ProbeSettings, rows: np.ndarray
) -> tuple[str | None, list[Target]]:
    """The environment name and the targets at ``rows`` (angles also as cos, sin)."""
    from lewm.data.hdf5 import open_h5

    env = settings.env or qty.detect_env(info.columns, info.attrs.get("env"))
    quantities = qty.resolve(env, settings.quantities, info.columns)
    targets = []
    with open_h5(info.path) as f:
        for q in quantities:
            col, lo, hi = qty.source_for(q, info.columns)
            values = qty.read_targets(f, q, info.columns, rows)
            meta = {"column": col, "dims": [lo, hi], "angle": q.angle, "encoding": "as given"}
            targets.append(Target(q.name, values, meta))
            if q.angle:
                cs = dict(meta, encoding="cos, sin")
                targets.append(Target(f"{q.name}_cos_sin", qty.cos_sin(values), cs))
    return env, targets


def run_probe(
    ckpt: str | Path,
    data: str | Path,
    settings: ProbeSettings | None = None,
    *,
    device: Any = "cpu",
    stats_from: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], dict[str, list]]:
    """Probe ``ckpt`` on ``data``; returns the ``probe.json`` dict and the scatter data."""
    import lewm
    from lewm.data.hdf5 import inspect_dataset

    settings = settings or ProbeSettings()
    t0 = time.perf_counter()
    info = inspect_dataset(data)
    rows = select_rows(info, settings.every, settings.max_frames)
    episodes = episode_of_rows(info, rows)
    splits = [split_episodes(np.unique(episodes), s) for s in settings.split_seeds]
    env, targets = load_targets(info, settings, rows)
    model = lewm.load(ckpt, device=device, stats_from=stats_from or data)
    check_image_size(model, info, settings.resize_frames, ckpt)
    log(f"probing {len(targets)} target(s) on {len(rows)} frames of {info.n_episodes} episodes")
    enc = encode_rows(model, info, rows, batch_size=settings.batch_size, log=log)
    result = _header(ckpt, data, env, info, settings, splits, enc, targets, model)
    scatter: dict[str, list] = {}
    for kind in settings.features:
        table, scatter[kind] = _probe_kind(
            enc.kind(kind), episodes, targets, splits, settings, device
        )
        result["features"][kind] = {"dim": int(enc.kind(kind).shape[1]), "quantities": table}
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result, scatter


def _header(ckpt, data, env, info, settings, splits, enc, targets, model) -> dict[str, Any]:
    prov = getattr(model, "provenance", None)
    return {
        "env": env,
        "checkpoint": str(ckpt),
        "data": str(data),
        "model": prov.to_dict() if prov is not None else None,
        "frames": len(enc.rows),
        "every": settings.every,
        "targets_zscored_on": "train part, per dimension",
        "split": {
            "by": "episode",
            "fractions": list(FRACTIONS),
            "seeds": list(settings.split_seeds),
            "headline_seed": settings.split_seeds[0],
            "episodes": splits[0].sizes(),
        },
        "probes": {
            "linear": {
                "kind": "ridge (closed form)",
                "lambda_grid": list(LAMBDAS),
                "features": "standardised on the train part",
            },  # fmt: skip
            "mlp": dict(
                settings.mlp.to_dict(),
                split_seeds="all" if settings.mlp_all_seeds else "the first only",
            )
            if settings.mlp
            else None,  # fmt: skip
        },
        "quantity_sources": {t.name: t.info for t in targets},
        "encode": {
            "frames_per_s": round(enc.frames_per_second, 1),
            "encode_seconds": round(enc.encode_seconds, 2),
            "read_seconds": round(enc.read_seconds, 2),
        },
        "features": {},
    }


def _probe_kind(x, episodes, targets, splits: Sequence[EpisodeSplit], settings, device):
    """Every probe of one feature kind over every split seed -> (quantities table, scatter)."""
    per_seed = []  # seed -> {name: {probe: scores}}
    scatter = []
    for k, split in enumerate(splits):
        tr, va, te = masks(split, episodes)
        fx = Standardizer.fit(x[tr])
        xs = [fx(x[m]) for m in (tr, va, te)]
        zs = []
        for t in targets:
            fy = Standardizer.fit(t.values[tr])
            zs.append([fy(t.values[m]) for m in (tr, va, te)])
        res = {t.name: {} for t in targets}
        preds = {}
        for t, (yt, yv, ye) in zip(targets, zs, strict=True):
            fit = fit_ridge(xs[0], yt, xs[1], yv)
            preds[(t.name, "linear")] = fit.predict(xs[2])
            res[t.name]["linear"] = {**scores(preds[(t.name, "linear")], ye), "lambda": fit.lam}
        if settings.mlp is not None and (k == 0 or settings.mlp_all_seeds):
            predict, steps = fit_mlps(xs[0], [z[0] for z in zs], xs[1], [z[1] for z in zs],
                                      settings.mlp, split.seed, device)  # fmt: skip
            for t, z, p, s in zip(targets, zs, predict(xs[2]), steps, strict=True):
                preds[(t.name, "mlp")] = p
                res[t.name]["mlp"] = {**scores(p, z[2]), "best_step": s}
        per_seed.append(res)
        if k == 0:
            scatter = _scatter(targets, zs, preds, res, settings.scatter_points)
    return _aggregate(per_seed, [t.name for t in targets]), scatter


def _scatter(targets, zs, preds, res, n_points: int) -> list:
    rng = np.random.default_rng(0)
    out = []
    for t, z in zip(targets, zs, strict=True):
        true = z[2]
        keep = rng.permutation(len(true))[:n_points]
        for probe in PROBES:
            if (t.name, probe) in preds:
                r = res[t.name][probe]["pearson_r"]
                out.append((f"{t.name} ({probe})", true[keep], preds[(t.name, probe)][keep], r))
    return out


def _aggregate(per_seed: list[dict], names: list[str]) -> dict[str, Any]:
    """Headline = the first seed's scores; per-seed lists and their std as the spread."""
    table: dict[str, Any] = {}
    for name in names:
        table[name] = {}
        for probe in per_seed[0][name]:
            head = dict(per_seed[0][name][probe])
            runs = [s[name][probe] for s in per_seed if probe in s[name]]
            head["seeds"] = {m: [r[m] for r in runs] for m in ("mse_mean", "pearson_r", "r2")}
            head["spread"] = {f"{m}_std": _std([r[m] for r in runs]) for m in ("mse_mean", "pearson_r", "r2")}  # fmt: skip
            table[name][probe] = head
    return table


def _std(values: list) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.std(v, ddof=1)) if len(v) > 1 else None


def probe_files(result: dict[str, Any], scatter: dict[str, list]) -> dict[str, bytes]:
    """The output files, in writing order: one scatter PNG per feature kind, then probe.json."""
    from lewm.analysis.outputs import json_bytes
    from lewm.analysis.plots import probe_scatter

    files = {}
    for kind, panels in scatter.items():
        title = f"{result['env'] or '?'}: probes on {kind} features, test part, split seed {result['split']['headline_seed']}"
        files[f"probe_{kind}.png"] = probe_scatter(title, panels)
    files["probe.json"] = json_bytes(result)
    return files


def probe_table(result: dict[str, Any]) -> str:
    """A plain-text table: every quantity and feature kind beside the paper's LeWM value."""
    from lewm.report.analysis import paper_probe

    def cell(s: dict | None) -> str:
        if not s:
            return "-"
        r = s.get("pearson_r")
        spread = (s.get("spread") or {}).get("pearson_r_std")
        r_txt = "-" if r is None else f"{r:.3f}" + (f"±{spread:.3f}" if spread is not None else "")
        return f"{s['mse_mean']:.3f}±{s['mse_std']:.3f}, r {r_txt}"

    def paper(v) -> str:
        if v is None:
            return "-"
        mse, std, r = v
        return f"{mse:.3f}" + (f"±{std:.3f}" if std is not None else "") + f", r {r:.3f}"

    head = ("quantity", "features", "linear MSE, r", "MLP MSE, r", "paper linear", "paper MLP")
    lines = [head]
    for kind, block in result["features"].items():
        for name, probes in block["quantities"].items():
            lines.append((name, kind, cell(probes.get("linear")), cell(probes.get("mlp")),
                          paper(paper_probe(result["env"], name, "linear")),
                          paper(paper_probe(result["env"], name, "mlp"))))  # fmt: skip
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    seeds = result["split"]["seeds"]
    note = (
        f"MSE mean±std over test samples (z-scored targets), split seed {seeds[0]}; "
        f"r ± std over split seeds {seeds}. Paper: LeWM, spec §9.1 (no R² there)."
    )
    return "\n".join([*text, note])
