"""The paper's evaluation protocol (spec §7.1, §7.4), composed from one file per step.

Per evaluation seed:

1. **Pairs** (``pairs.py``): starts drawn from the valid rows of the allowed episodes
   (``episodes.py``: held-out selection), goal = start + ``goal_offset``.
2. **Restore** (``restore.py``): one environment per pair, simulator put in the start
   state, render compared with the dataset frame, goal set.
3. **MPC** and 4. **random floor** (``runs.py``): the planner, then uniform actions,
   on the same pairs.
5. **Scoring** (``scoring.py``): per-seed rates, means and sample stds over seeds,
   the ``results.json`` dictionary.

Settings are an :class:`~lewm.eval.config.EvalConfig`; everything is checked by
``prepare.py`` before the first episode runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lewm.eval.config import PROFILES, EvalConfig, EvaluationError
from lewm.eval.episodes import EpisodeSource, choose_episodes, provenance_of
from lewm.eval.pairs import EvalPair, draw_pairs, sample_starts, valid_start_rows
from lewm.eval.prepare import REFERENCE_ITERATIONS, EvalSetup, prepare
from lewm.eval.restore import (
    APPEARANCE_KEYS,
    HOOKS,
    RESET_STREAM,
    EnvSet,
    PairData,
    make_eval_env,
    outside_states,
    read_pairs,
    restore_all,
    success_now,
)
from lewm.eval.runs import RANDOM_STREAM, RunOutcome, run_mpc, run_random
from lewm.eval.scoring import (
    RENDER_DIFF_WARN,
    STD_KIND,
    Notes,
    SeedResult,
    Timing,
    build_results,
    score_seed,
    write_results,
)

__all__ = [  # the names this module has always offered, wherever they live now
    "APPEARANCE_KEYS",
    "HOOKS",
    "PROFILES",
    "RANDOM_STREAM",
    "REFERENCE_ITERATIONS",
    "RENDER_DIFF_WARN",
    "RESET_STREAM",
    "STD_KIND",
    "EpisodeSource",
    "EvalConfig",
    "EvalPair",
    "EvaluationError",
    "PairData",
    "RunOutcome",
    "choose_episodes",
    "draw_pairs",
    "evaluate",
    "make_eval_env",
    "provenance_of",
    "run_mpc",
    "run_random",
    "sample_starts",
    "success_now",
    "valid_start_rows",
]


def evaluate(
    ckpt: str | os.PathLike,
    env: str,
    data: str | os.PathLike,
    out: str | os.PathLike | None = None,
    config: EvalConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
    command: Sequence[str] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Run the paper's evaluation protocol (spec §7) and return the results dictionary.

    Args:
        ckpt: a run directory (or the authors' checkpoint folder / ``.pt``).
        env: ``tworoom``, ``pusht``, ``reacher`` or ``cube``.
        data: the evaluation HDF5 file (reference layout).
        out: directory for ``results.json`` (written atomically at the very end, only if
            everything succeeded) and ``videos/``; None = write nothing.
        config: the settings; ``settings`` (any :class:`EvalConfig` field, e.g.
            ``episodes=2, seeds=(42,)``) build one or override ``config``'s fields.
        log: progress callback (one line per message); default: stderr.
        command: the command line that asked for this evaluation (``lewm eval`` passes its
            argv), recorded as results.json ``command``.

    Returns:
        The ``results.json`` dictionary (see ``docs/evaluation.md``).

    Raises:
        LewmError subclasses (ConfigError, DatasetError, CheckpointError,
        EvaluationError, PlanningError) for bad input; nothing is written then.
    """
    cfg = (config or EvalConfig()).updated(**settings)
    notes, timing = Notes(log), Timing()
    setup = prepare(ckpt, env, data, cfg, out, notes)
    with setup.environments() as envs:
        timing.setup_seconds = time.perf_counter() - timing.start
        seeds = [
            run_seed(setup, envs, seed, cfg.videos if k == 0 else 0, out, timing, notes)
            for k, seed in enumerate(cfg.seeds)
        ]
    results = build_results(setup, seeds, envs, timing, notes, command)
    if out is not None:
        write_results(out, results)
    return results


def run_seed(
    setup: EvalSetup,
    envs: EnvSet,
    seed: int,
    videos: int,
    out: str | os.PathLike | None,
    timing: Timing,
    notes: Notes,
) -> SeedResult:
    """One seed: read its pairs, restore, MPC, random floor, GIFs of the first ``videos``."""
    cfg, pairs = setup.config, setup.pairs[seed]
    past = cfg.context - 1 if cfg.dataset_history else 0
    data = read_pairs(
        setup.data,
        pairs,
        setup.info.n_rows,
        setup.size,
        seed,
        videos,
        past_blocks=past,
        frameskip=setup.model.frameskip,
    )
    diffs, solved0 = restore_all(envs.envs, data)
    _warn_outside(outside_states(envs.envs[: len(data)]), solved0, seed, setup, notes)
    policy = setup.policy(seed, envs.bounds)
    t0 = time.perf_counter()
    mpc = run_mpc(envs.envs, pairs, data, policy, cfg.budget, keep_frames=videos)
    timing.mpc_seconds += time.perf_counter() - t0
    timing.env_seconds += mpc.env_seconds
    rnd = run_random(envs.envs, pairs, data, cfg.budget, seed)
    timing.random_seconds += rnd.env_seconds
    if videos:
        from lewm.eval.video import write_seed_videos

        t0 = time.perf_counter()
        write_seed_videos(Path(out) / "videos", seed, pairs, mpc, data, videos)
        timing.video_seconds += time.perf_counter() - t0
    result = score_seed(seed, pairs, mpc, rnd, solved0, diffs, policy.records)
    timing.plan_seconds += result.plan_seconds
    s = result.summary
    notes.log(
        f"seed {seed}: success {s['success_rate']:.1f}% (random {s['random_success_rate']:.1f}%, "
        f"already solved {100 * s['already_solved_fraction']:.1f}%) over {len(pairs)} episodes"
    )
    return result


def _warn_outside(
    outside: np.ndarray, solved0: np.ndarray, seed: int, setup: EvalSetup, notes: Notes
) -> None:
    """States the environment cannot be in make its success test meaningless: say so."""
    if not outside.any():
        return
    solved = int((outside & solved0).sum())
    notes.warn(
        f"seed {seed}: {int(outside.sum())} of {len(outside)} start states of {setup.data} lie "
        f"outside the {setup.env} arena (does the file belong to this environment?); "
        f"{solved} of them count as already solved, which means nothing for such states"
    )
