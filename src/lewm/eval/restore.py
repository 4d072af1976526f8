"""Putting the simulator in a dataset state: evaluation environments, dataset rows, restores.

Per pair (spec §7.1, §7.2): ``reset`` (seed from the dataset's ``seed`` column,
else derived from (seed, pair index)), ``load_state(start row)``, a render that
is compared with the dataset frame (spec §12 P13), ``load_goal(goal row)``.
Environments come from the project's one factory (:func:`lewm.envs.factory.make_env`);
what is evaluation-specific is the hook check here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lewm.envs.factory import APPEARANCE_KEYS
from lewm.eval.config import EvaluationError
from lewm.eval.pairs import EvalPair

__all__ = [
    "APPEARANCE_KEYS",
    "HOOKS",
    "RESET_STREAM",
    "EnvSet",
    "PairData",
    "eval_envs",
    "fit_frames",
    "make_eval_env",
    "outside_states",
    "read_pairs",
    "restore",
    "restore_all",
    "success_now",
]

HOOKS = ("load_state", "load_goal", "goal_distance")
RESET_STREAM = 0x52455354  # "REST": derived reset seeds when the data has no `seed` column


# --------------------------------------------------------------------------- environments


def make_eval_env(
    name: str,
    image_size: int,
    profile: str,
    data_meta: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The factory's ``ENVS[name]`` at the model's image size, checked for the evaluation hooks.

    Keyword arguments: appearance keywords recorded with the evaluation file
    (``APPEARANCE_KEYS``), ``profile`` when the class takes one (Reacher's angle
    wrapping, P10), then ``env_kwargs``. Missing evaluation hooks fail (P12).

    Returns:
        (env, the keyword arguments used).
    """
    from lewm.envs.factory import make_env

    recorded = (data_meta or {}).get("env_kwargs")
    env, kwargs = make_env(
        name, image_size, profile=profile, recorded_kwargs=recorded, env_kwargs=env_kwargs
    )
    missing = [h for h in HOOKS if not callable(getattr(env, h, None))]
    if missing:
        _close(env)
        raise EvaluationError(
            f"{type(env).__name__} lacks the evaluation hook(s) {missing}; it cannot restore "
            "dataset states, so it cannot be evaluated with the paper's protocol (spec §7.2, P12)"
        )
    return env, kwargs


@dataclass(frozen=True)
class EnvSet:
    """One environment per pair slot, built the same way."""

    envs: list[Any]
    kwargs: dict[str, Any]  # constructor keywords used (results.json `env_kwargs`)
    bounds: tuple[np.ndarray, np.ndarray]  # the action Box (low, high), (A,) each


@contextmanager
def eval_envs(
    name: str,
    n: int,
    image_size: int,
    profile: str,
    data_meta: Mapping[str, Any],
    env_kwargs: Mapping[str, Any],
    action_dim: int,
) -> Iterator[EnvSet]:
    """``n`` evaluation environments whose actions are ``action_dim``-D; all closed on exit."""
    envs: list[Any] = []
    try:
        first, used = make_eval_env(name, image_size, profile, data_meta, env_kwargs)
        envs.append(first)
        space = first.action_space
        if tuple(space.shape) != (action_dim,):
            raise EvaluationError(
                f"environment {name!r} has actions of shape {tuple(space.shape)}, the "
                f"checkpoint plans {action_dim}-D actions"
            )
        while len(envs) < n:
            envs.append(make_eval_env(name, image_size, profile, data_meta, env_kwargs)[0])
        yield EnvSet(envs, used, (space.low, space.high))
    finally:
        for env in envs:
            _close(env)


def _close(env: Any) -> None:
    close = getattr(env, "close", None)
    if callable(close):
        close()


def success_now(env: Any) -> bool:
    """Whether the environment's success test holds in its current state (no step taken)."""
    fn = getattr(env, "is_success", None)
    if not callable(fn):
        raise EvaluationError(
            f"{type(env).__name__} has no is_success(); the environment contract requires it"
        )
    return bool(fn())


# --------------------------------------------------------------------------- dataset rows


@dataclass
class PairData:
    """What the evaluation reads from the file for one pair."""

    init_row: dict[str, np.ndarray]
    goal_row: dict[str, np.ndarray]
    start_frame: np.ndarray  # (S, S, 3) uint8, at the model's size
    goal_frame: np.ndarray  # (S, S, 3)
    reset_seed: int | None
    continuation: np.ndarray | None = None  # (goal_offset + 1, S, S, 3) for videos
    past_frames: np.ndarray | None = None  # (k, S, S, 3): frames start - k*f .. start - f
    past_actions: np.ndarray | None = None  # (k*f, A): actions of rows start - k*f .. start - 1


def state_columns(f, n_rows: int) -> list[str]:
    """Row-aligned columns passed to the hooks: not pixels/action, not ``goal*`` (spec §7.1)."""
    out = []
    for name, obj in f.items():
        if name in ("pixels", "action", "ep_len", "ep_offset") or name.startswith("goal"):
            continue
        if getattr(obj, "shape", None) and obj.shape[0] == n_rows:
            out.append(name)
    return out


def read_pairs(
    path: Path,
    pairs: Sequence[EvalPair],
    n_rows: int,
    size: int,
    seed: int,
    continuation_for: int,
    past_blocks: int = 0,
    frameskip: int = 1,
) -> list[PairData]:
    """Rows, frames (fitted to ``size``) and reset seeds of ``pairs``; the dataset
    continuation (start..goal frames) for the first ``continuation_for`` pairs.

    ``past_blocks`` > 0 also reads what preceded each start in its episode: up to that
    many block-boundary frames (every ``frameskip`` rows) and the actions between them
    and the start, fewer when the start is nearer its episode's first row.
    """
    from lewm.data.hdf5 import open_h5

    out = []
    with open_h5(path) as f:
        cols = state_columns(f, n_rows)
        px = f["pixels"]
        for p in pairs:
            init = {c: np.asarray(f[c][p.start_row]) for c in cols}
            goal = {c: np.asarray(f[c][p.goal_row]) for c in cols}
            cont = None
            if p.index < continuation_for:
                cont = fit_frames(px[p.start_row : p.goal_row + 1], size)
            start_frame = fit_frames(px[p.start_row], size)
            goal_frame = fit_frames(px[p.goal_row], size)
            reset_seed = _reset_seed(init, seed, p)
            past_frames = past_actions = None
            k = min(past_blocks, p.start_step // frameskip)
            if k > 0:
                first = p.start_row - k * frameskip
                past_frames = fit_frames(px[first : p.start_row : frameskip], size)
                past_actions = np.asarray(f["action"][first : p.start_row], np.float32)
            out.append(
                PairData(
                    init, goal, start_frame, goal_frame, reset_seed, cont, past_frames, past_actions
                )
            )
    return out


def _reset_seed(init_row: Mapping[str, np.ndarray], seed: int, pair: EvalPair) -> int:
    if "seed" in init_row:
        return int(init_row["seed"])
    # the reference resets unseeded; derived seeds keep runs repeatable
    ss = np.random.SeedSequence([seed, RESET_STREAM, pair.index])
    return int(ss.generate_state(1)[0])


def fit_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (..., H, W, 3) -> (..., size, size, 3) with PIL bilinear (the reference's resize)."""
    frames = np.asarray(frames)
    if frames.shape[-3:-1] == (size, size):
        return frames
    from PIL import Image

    flat = frames.reshape(-1, *frames.shape[-3:])
    out = [
        np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BILINEAR)) for f in flat
    ]
    return np.stack(out).reshape(*frames.shape[:-3], size, size, 3)


# --------------------------------------------------------------------------- restores


def restore(
    env: Any, init_row: Mapping[str, np.ndarray], goal_row: Mapping[str, np.ndarray], reset_seed
) -> np.ndarray:
    """reset -> load_state -> render (returned, (S, S, 3)) -> load_goal."""
    env.reset(seed=reset_seed)
    _call_hook(env, "load_state", init_row, "restore a row")
    frame = np.asarray(env.render())
    _call_hook(env, "load_goal", goal_row, "set a goal from a row")
    return frame


def _call_hook(env: Any, hook: str, row: Mapping[str, np.ndarray], what: str) -> None:
    """``env.<hook>(row)``; a row the hook cannot use is an EvaluationError naming its columns."""
    try:
        getattr(env, hook)(row)
    except (KeyError, ValueError) as exc:
        raise EvaluationError(
            f"{type(env).__name__}.{hook} cannot {what} with columns {sorted(row)}: {exc}"
        ) from exc


def restore_all(envs: Sequence[Any], data: Sequence[PairData]) -> tuple[np.ndarray, np.ndarray]:
    """Restore every pair into its environment.

    Returns:
        (render_diff (n,) float: mean |render - dataset frame| in grey levels,
         already_solved (n,) bool: the success test holds before any action).
    """
    diffs, solved0 = [], []
    for env, d in zip(envs, data, strict=True):
        frame = restore(env, d.init_row, d.goal_row, d.reset_seed)
        if frame.shape != d.start_frame.shape:
            raise EvaluationError(
                f"{type(env).__name__}.render() gave {frame.shape} frames, expected "
                f"{d.start_frame.shape}"
            )
        diffs.append(float(np.abs(frame.astype(np.int16) - d.start_frame).mean()))
        solved0.append(success_now(env))
    return np.asarray(diffs, dtype=np.float64), np.asarray(solved0, dtype=bool)


def outside_states(envs: Sequence[Any]) -> np.ndarray:
    """(n,) bool: the restored state lies outside the environment (its ``in_bounds()``
    hook says so); environments without the hook are trusted."""
    out = []
    for env in envs:
        check = getattr(env, "in_bounds", None)
        out.append(callable(check) and not check())
    return np.asarray(out, dtype=bool)
