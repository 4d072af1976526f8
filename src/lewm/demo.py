"""The one-command demo: an environment from pixels to planning, on a CPU, resumably.

1. collect training data and a separate held-out file (the recipe's policy and rendering);
2. train the recipe's preset;
3. evaluate with the paper's protocol (50 start/goal pairs 25 steps apart, budget 50,
   3 evaluation seeds) on the held-out file, with the random-policy floor;
4. write the run directory, ``results.json``, GIFs and a training-curve plot under ``out``
   and print a short table.

Every stage can be killed and rerun with the same command: collection restarts at its
first missing shard (:mod:`lewm.envs.collect_shards`), training resumes from the run's
last checkpoint, evaluation from its first seed without a ``results.json``. The recipe
is written to ``out/demo.json`` first; a rerun with another recipe is refused. Stage
times add up over the interruptions (``out/stages.json``).

Recipes (``lewm.recipes``) choose the data, model and planning budget per environment;
``lewm demo`` alone is the 30-minute TwoRoom demo.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from lewm.demo_output import peak_rss_mb, plot_training_curve, print_table
from lewm.errors import ConfigError
from lewm.recipes import DemoConfig

__all__ = ["DemoConfig", "peak_rss_mb", "plot_training_curve", "print_table", "run_demo"]


def run_demo(out: str | Path, cfg: DemoConfig | None = None, *, progress: bool = True) -> dict:
    """Run (or continue) the demo; returns the results also written to ``out/results.json``.

    Also writes ``out/report.html`` (:func:`lewm.report.write_report`) and prints its path.
    """
    from lewm.checkpoint import atomic_write_bytes
    from lewm.report import write_report

    cfg = cfg or DemoConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _claim(out, cfg)
    stages = _Stages(out)

    with stages.run(
        "collect",
        f"collect {cfg.train_episodes} training + {cfg.eval_episodes} "
        f"held-out {cfg.env} episodes ({cfg.policy} policy)",
    ):
        train_file, eval_file = _collect(cfg, out, progress)
        stages.record("collect_frames", sum(_rows(f) for f in (train_file, eval_file)))
    with stages.run("train", f"train the {cfg.preset} preset"):
        result, sigreg_t_max = _train(cfg, train_file, out / "run", progress)
    with stages.run(
        "eval",
        f"evaluate: {cfg.pairs} pairs x seeds {list(cfg.seeds)}, {_planner(cfg)}",
    ):
        results = _evaluate(cfg, out, eval_file)

    plot_training_curve(out / "run" / "metrics.jsonl", out / "training_curve.png", sigreg_t_max)
    results["demo"] = {
        "config": asdict(cfg),
        "train_steps": result["step"],
        "final_metrics": result,
        "peak_rss_mb": stages.peak_rss_mb(),
        **stages.seconds(),
    }
    atomic_write_bytes(out / "results.json", (json.dumps(results, indent=2) + "\n").encode())
    print_table(results)
    print(f"\nreport: {write_report(out / 'run', evals=[out], out=out / 'report.html').path}")
    return results


def _claim(out: Path, cfg: DemoConfig) -> None:
    """Record the recipe in ``out/demo.json``, or check a rerun asks for the same one."""
    from lewm.checkpoint import atomic_write_bytes

    path = out / "demo.json"
    wanted = json.loads(json.dumps(asdict(cfg)))  # tuples -> lists, as read back
    wanted.pop("device")  # where it runs may change between a run and its resume
    if path.exists():
        # a field added since the run started reads as its default (what the run used)
        saved = {**json.loads(json.dumps(asdict(DemoConfig()))), **json.loads(path.read_text())}
        saved.pop("device", None)
        diff = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
        if diff:
            raise ConfigError(
                f"{out} holds a demo of another recipe (differs in {', '.join(diff)}); "
                "rerun it with the same arguments to continue it, or choose a new --out"
            )
    elif (out / "run" / "config.json").exists():
        raise ConfigError(f"{out} already holds a run without demo.json; choose a new --out")
    else:
        atomic_write_bytes(path, (json.dumps(wanted, indent=2) + "\n").encode())


class _Stages:
    """Stage banners, wall times (accumulated over interrupted runs) and peak memory (the
    largest seen at a stage's end over those runs), in ``stages.json``."""

    def __init__(self, out: Path):
        self.path = out / "stages.json"
        self.times = json.loads(self.path.read_text()) if self.path.exists() else {}

    def run(self, name: str, banner: str):
        import contextlib

        @contextlib.contextmanager
        def timed():
            print(f"\n== {banner}", flush=True)
            t = time.perf_counter()
            try:
                yield
            finally:  # a killed stage still counts the time it spent
                self.times[f"{name}_seconds"] = self.times.get(f"{name}_seconds", 0.0) + (
                    time.perf_counter() - t
                )
                # ru_maxrss is a high-water mark since the process started: this stage's
                # peak, or an earlier stage's of the same process if that was larger.
                peak = max(self.times.get(f"{name}_peak_rss_mb", 0.0), peak_rss_mb())
                self.times[f"{name}_peak_rss_mb"] = peak
                self._save()

        return timed()

    def record(self, key: str, value) -> None:
        self.times[key] = value
        self._save()

    def _save(self) -> None:
        from lewm.checkpoint import atomic_write_bytes

        atomic_write_bytes(self.path, (json.dumps(self.times, indent=2) + "\n").encode())

    def peak_rss_mb(self) -> float:
        """The largest process over every run of the demo (a resumed run's own may be smaller)."""
        peaks = [v for k, v in self.times.items() if k.endswith("_peak_rss_mb")]
        return max([peak_rss_mb(), *peaks])

    def seconds(self) -> dict[str, float]:
        out = {k: self.times.get(k, 0.0) for k in ("collect_seconds", "train_seconds")}
        out["eval_seconds"] = self.times.get("eval_seconds", 0.0)
        out["total_seconds"] = sum(out.values())
        return out


def _collect(cfg: DemoConfig, out: Path, progress: bool) -> tuple[Path, Path]:
    """The training file and the separate held-out evaluation file (kept if already there)."""
    from lewm.envs.collect_shards import collect_sharded

    train_file, eval_file = out / f"{cfg.env}_train.h5", out / f"{cfg.env}_eval.h5"
    for path, episodes, seed in (
        (train_file, cfg.train_episodes, cfg.seed),
        (eval_file, cfg.eval_episodes, cfg.seed + 1),
    ):
        collect_sharded(
            cfg.env,
            cfg.policy,
            episodes,
            cfg.image_size,
            seed,
            path,
            cfg.workers,
            shard_episodes=cfg.shard_episodes,
            progress=progress,
            max_steps=cfg.max_steps,
            env_kwargs=cfg.env_kwargs,
            policy_kwargs=cfg.policy_kwargs,
        )
    return train_file, eval_file


def _rows(path: Path) -> int:
    from lewm.data.hdf5 import inspect_dataset

    return inspect_dataset(path, check_actions=False, sample_chunks=0).n_rows


def _train(cfg: DemoConfig, train_file: Path, run_dir: Path, progress: bool):
    """Train (or resume, or skip if finished); returns the last metrics and SIGReg's t_max."""
    from lewm.config import apply_overrides, preset
    from lewm.train import train

    tcfg = apply_overrides(preset(cfg.preset), list(cfg.overrides))
    tcfg.model.encoder.image_size = cfg.image_size
    tcfg.train.seed = cfg.seed
    if cfg.train_steps:
        tcfg.train.steps = cfg.train_steps
    done = _saved_step(run_dir)
    if done is not None and done >= tcfg.train.steps:
        print(f"training finished earlier ({done} steps): kept", flush=True)
        return _last_metrics(run_dir), tcfg.loss.sigreg_t_max
    if done is not None:
        print(f"resuming training from step {done}", flush=True)
    result = train(
        tcfg, train_file, run_dir, resume=done is not None, device=cfg.device, progress=progress
    )
    return {"step": result.step, **result.metrics}, tcfg.loss.sigreg_t_max


def _saved_step(run_dir: Path) -> int | None:
    """The step of the run's last checkpoint, None when there is no run yet."""
    path = run_dir / "config.json"
    if not path.exists():
        return None
    return int(json.loads(path.read_text()).get("step", 0))


def _last_metrics(run_dir: Path) -> dict:
    """The last training record of ``metrics.jsonl`` merged with the last validation record."""
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    merged: dict = {}
    for r in records:
        merged.update(r)
    return merged


def _planner(cfg: DemoConfig) -> str:
    """The solver and budget, labelled when it is the paper's or the environment's studied one."""
    from lewm.eval.budgets import describe

    if cfg.solver != "cem":
        return f"{cfg.solver} {cfg.samples}x{cfg.iterations}"
    return describe(cfg.env, cfg.samples, cfg.iterations)


def _evaluate(cfg: DemoConfig, out: Path, eval_file: Path) -> dict:
    """One ``evaluate`` per seed under ``out/eval/seed_S`` (a finished seed is kept), merged."""
    from lewm.eval.merge import merge_seed_results
    from lewm.eval.protocol import evaluate
    from lewm.planning.solvers import default_topk

    per_seed = []
    for k, seed in enumerate(cfg.seeds):
        seed_dir = out / "eval" / f"seed_{seed}"
        if (seed_dir / "results.json").exists():
            print(f"seed {seed}: evaluated earlier, kept", flush=True)
            per_seed.append(json.loads((seed_dir / "results.json").read_text()))
            continue
        settings = {"samples": cfg.samples, "iterations": cfg.iterations}
        if cfg.topk is not None:
            settings["topk"] = cfg.topk
        elif cfg.solver in ("cem", "mppi"):
            settings["topk"] = default_topk(cfg.samples)  # iCEM: the rule, raised to its elites
        per_seed.append(
            evaluate(
                out / "run",
                cfg.env,
                eval_file,
                seed_dir,
                episodes=cfg.pairs,
                seeds=(seed,),
                solver=cfg.solver,
                solver_settings=settings,
                videos=cfg.videos if k == 0 else 0,
                device=cfg.device,
                env_kwargs=cfg.env_kwargs,
                **cfg.eval_settings,
            )
        )
    first_videos = out / "eval" / f"seed_{cfg.seeds[0]}" / "videos"
    if first_videos.is_dir():
        shutil.copytree(first_videos, out / "videos", dirs_exist_ok=True)
    return merge_seed_results(per_seed)
