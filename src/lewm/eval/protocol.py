"""The paper's evaluation protocol (spec §7.1, §7.4): start/goal pairs, MPC, random floor, scoring.

Per evaluation seed:

1. **Pairs.** Valid starts are the rows with ``step_idx <= L_e - goal_offset - 1``;
   ``episodes`` of them are drawn uniformly without replacement with
   ``np.random.default_rng(seed)`` and sorted. The goal row is ``start + goal_offset``
   in the same episode. Dataset columns starting with ``goal`` are ignored.
2. **Restore.** One environment per pair: ``reset`` (seed from the dataset's ``seed``
   column, else derived from (seed, pair index)), ``load_state(start row)``, a render
   compared with the dataset frame (spec §12 P13), ``load_goal(goal row)``.
3. **MPC.** All pairs of the seed run as one batch through :class:`MPCPolicy`; the
   first observation is the dataset frame, later ones are renders. Success = the
   environment's success test fired at any of the ``budget`` steps (an environment
   that succeeded is frozen).
4. **Random floor.** The same pairs, restored again, driven by uniform actions in the
   action Box (one seeded generator per pair).

The headline numbers are means over seeds; :func:`evaluate` returns (and writes) the
``results.json`` dictionary described in ``docs/evaluation.md``.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lewm.errors import ConfigError, LewmError

PROFILES = ("clean", "reference")
HOOKS = ("load_state", "load_goal", "goal_distance")
# Constructor keywords that change what frames look like: inherited from the
# collection metadata of the evaluation file, so renders match the dataset frames.
APPEARANCE_KEYS = (
    "fast_render",
    "shadow_size",
    "render_size",
    "show_target",
    "render_target",
    "agent_color",
)
RENDER_DIFF_WARN = 5.0  # mean |dataset frame - render| (grey levels, 0..255) above which we warn
RANDOM_STREAM = 0x52414E44  # "RAND": separates the random floor's streams from any other
RESET_STREAM = 0x52455354  # "REST": derived reset seeds when the data has no `seed` column
REFERENCE_ITERATIONS = 30  # spec §7.3 item 5 / P8: other values are labelled


class EvaluationError(LewmError, RuntimeError):
    """The evaluation cannot run or cannot be scored (bad data, missing hooks, no valid starts)."""


# --------------------------------------------------------------------------- pairs


@dataclass(frozen=True)
class EvalPair:
    """One (start, goal) pair of an evaluation seed."""

    index: int  # position in the seed's draw (0..n-1); the clean streams' episode id
    start_row: int  # global dataset row of the start
    goal_row: int  # start_row + goal_offset
    episode: int  # dataset episode
    start_step: int  # step_idx of the start


def valid_start_rows(
    ep_len: np.ndarray,
    ep_offset: np.ndarray,
    goal_offset: int,
    episodes: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Global rows whose state ``goal_offset`` steps later is in the same episode.

    Row ``ep_offset[e] + s`` is valid iff ``s <= ep_len[e] - goal_offset - 1``.

    Args:
        ep_len, ep_offset: (E,) episode lengths and first rows.
        goal_offset: raw steps between start and goal (>= 1).
        episodes: the episodes to draw from (default: all).
    Returns:
        int64 (K,) ascending global row indices.
    """
    if goal_offset < 1:
        raise ConfigError(f"goal_offset must be >= 1 step, got {goal_offset}")
    eps = np.arange(len(ep_len)) if episodes is None else np.unique(np.asarray(episodes))
    parts = [
        int(ep_offset[e]) + np.arange(max(0, int(ep_len[e]) - goal_offset), dtype=np.int64)
        for e in eps
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def sample_starts(valid_rows: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` rows drawn uniformly without replacement with ``default_rng(seed)``, sorted (spec §7.1)."""
    if n > len(valid_rows):
        raise EvaluationError(
            f"cannot draw {n} start states from {len(valid_rows)} valid rows; lower --episodes"
        )
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(np.asarray(valid_rows, dtype=np.int64), size=n, replace=False))


def draw_pairs(
    ep_len: np.ndarray,
    ep_offset: np.ndarray,
    goal_offset: int,
    n: int,
    seed: int,
    episodes: Sequence[int] | np.ndarray | None = None,
) -> list[EvalPair]:
    """The seed's (start, goal) pairs: :func:`valid_start_rows` then :func:`sample_starts`."""
    valid = valid_start_rows(ep_len, ep_offset, goal_offset, episodes)
    if len(valid) == 0:
        longest = int(np.max(ep_len[list(episodes)] if episodes is not None else ep_len))
        raise EvaluationError(
            f"no valid start states: every evaluation episode is at most {longest} rows long, "
            "so none has a "
            f"state {goal_offset} steps after its start; lower --goal-offset or use longer episodes"
        )
    starts = sample_starts(valid, n, seed)
    ep_of = np.searchsorted(ep_offset, starts, side="right") - 1
    return [
        EvalPair(i, int(r), int(r) + goal_offset, int(e), int(r - ep_offset[e]))
        for i, (r, e) in enumerate(zip(starts, ep_of, strict=True))
    ]


# --------------------------------------------------------------------------- held-out episodes


@dataclass(frozen=True)
class EpisodeSource:
    """Which episodes of the evaluation file may be used, and whether they are held out."""

    episodes: np.ndarray | None  # None = every episode of the file
    held_out: bool | None  # None = unknown (no training record, e.g. the authors' checkpoints)
    note: str


def choose_episodes(
    model: Any, ckpt: Path, data: Path, n_episodes: int, profile: str
) -> EpisodeSource:
    """Held-out selection (spec §4.6, §7.4, P6).

    ``clean``: if ``data`` is the run's training file, only its ``val_episodes``
    (``split.json``); another file is used whole. ``reference``: the file as it is.
    """
    meta = getattr(model, "run_meta", None)
    train_meta = (meta.get("data") or {}) if isinstance(meta, Mapping) else {}
    train_file = train_meta.get("path")
    if train_file is None:
        return EpisodeSource(
            None,
            None,
            "the checkpoint has no training record, so whether these episodes were seen in "
            "training is unknown",
        )
    same = _same_file(data, Path(train_file), train_meta)
    if not same:
        return EpisodeSource(None, True, f"a file other than the training file ({train_file})")
    if profile == "reference":
        return EpisodeSource(None, False, "the training file, all episodes (reference profile)")
    run_dir = ckpt if ckpt.is_dir() else ckpt.parent
    split_path = run_dir / "split.json"
    if not split_path.is_file():
        raise EvaluationError(
            f"{data} is the run's training file but {split_path} is missing, so the held-out "
            "episodes are unknown; pass a separate evaluation file or --profile reference"
        )
    cfg = getattr(model, "run_config", None)
    if cfg is not None and getattr(cfg.train, "split", "episode") == "clip":
        raise EvaluationError(
            f"{run_dir} was trained with the reference's clip split, so every episode of {data} "
            "was seen in training; pass a separate evaluation file or --profile reference"
        )
    split = json.loads(split_path.read_text())
    val = np.asarray(split.get("val_episodes", []), dtype=np.int64)
    if len(val) == 0 or val.max() >= n_episodes or val.min() < 0:
        raise EvaluationError(
            f"{split_path}: val_episodes {val.tolist()[:10]} do not fit {data} "
            f"({n_episodes} episodes); pass a separate evaluation file"
        )
    return EpisodeSource(
        val, True, f"the run's {len(val)} validation episodes of its training file"
    )


def _same_file(data: Path, train_file: Path, train_meta: Mapping[str, Any]) -> bool:
    """Whether ``data`` is the training file; if that path is gone (a moved run), the
    same file name with the same row and episode counts counts as the same file."""
    try:
        return os.path.samefile(data, train_file)
    except OSError:
        pass
    if train_file.exists() or data.name != train_file.name:
        return False
    from lewm.data.hdf5 import inspect_dataset

    info = inspect_dataset(data, check_actions=False)
    return (info.n_rows, info.n_episodes) == (
        train_meta.get("n_rows"),
        train_meta.get("n_episodes"),
    )


# --------------------------------------------------------------------------- environments


def make_eval_env(
    name: str,
    image_size: int,
    profile: str,
    data_meta: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Build ``ENVS[name]``'s class directly at the model's image size.

    Keyword arguments: appearance keywords recorded with the evaluation file
    (``APPEARANCE_KEYS``), ``profile`` when the class takes one (Reacher's angle
    wrapping, P10), then ``env_kwargs``. Missing evaluation hooks fail (P12).

    Returns:
        (env, the keyword arguments used).
    """
    from lewm.envs import ENVS
    from lewm.envs.collect import load_object

    spec = ENVS[name]
    try:
        cls = load_object(spec.entry_point)
    except ImportError as exc:
        hint = f" (pip install 'lewm[{spec.extra}]')" if spec.extra else ""
        raise ConfigError(f"environment {name!r} cannot be imported: {exc}{hint}") from exc
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {}
    recorded = dict((data_meta or {}).get("env_kwargs") or {})
    kwargs.update({k: v for k, v in recorded.items() if k in APPEARANCE_KEYS and k in params})
    if "profile" in params:
        kwargs["profile"] = profile
    kwargs.update(dict(env_kwargs or {}))
    try:
        env = cls(render_mode="rgb_array", image_size=int(image_size), **kwargs)
    except TypeError as exc:
        raise ConfigError(f"environment {name!r} rejects keywords {kwargs}: {exc}") from exc
    missing = [h for h in HOOKS if not callable(getattr(env, h, None))]
    if missing:
        raise EvaluationError(
            f"{cls.__name__} lacks the evaluation hook(s) {missing}; it cannot restore dataset "
            "states, so it cannot be evaluated with the paper's protocol (spec §7.2, P12)"
        )
    return env, kwargs


def success_now(env: Any) -> bool:
    """Whether the environment's success test holds in its current state (no step taken)."""
    fn = getattr(env, "is_success", None)
    if not callable(fn):
        raise EvaluationError(
            f"{type(env).__name__} has no is_success(); the environment contract requires it"
        )
    return bool(fn())


def _restore(
    env: Any, init_row: Mapping[str, np.ndarray], goal_row: Mapping[str, np.ndarray], reset_seed
):
    """reset -> load_state -> render (returned) -> load_goal."""
    env.reset(seed=reset_seed)
    try:
        env.load_state(init_row)
    except (KeyError, ValueError) as exc:
        raise EvaluationError(
            f"{type(env).__name__}.load_state cannot restore a row with columns "
            f"{sorted(init_row)}: {exc}"
        ) from exc
    frame = np.asarray(env.render())
    try:
        env.load_goal(goal_row)
    except (KeyError, ValueError) as exc:
        raise EvaluationError(
            f"{type(env).__name__}.load_goal cannot set a goal from a row with columns "
            f"{sorted(goal_row)}: {exc}"
        ) from exc
    return frame


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


def _state_columns(f, n_rows: int) -> list[str]:
    """Row-aligned columns passed to the hooks: not pixels/action, not ``goal*`` (spec §7.1)."""
    out = []
    for name, obj in f.items():
        if name in ("pixels", "action", "ep_len", "ep_offset") or name.startswith("goal"):
            continue
        if getattr(obj, "shape", None) and obj.shape[0] == n_rows:
            out.append(name)
    return out


def _read_pairs(
    path: Path,
    pairs: list[EvalPair],
    n_rows: int,
    size: int,
    seed: int,
    continuation_for: int,
) -> list[PairData]:
    from lewm.data.hdf5 import open_h5

    out = []
    with open_h5(path) as f:
        cols = _state_columns(f, n_rows)
        px = f["pixels"]
        for p in pairs:
            init = {c: np.asarray(f[c][p.start_row]) for c in cols}
            goal = {c: np.asarray(f[c][p.goal_row]) for c in cols}
            if "seed" in init:
                reset_seed = int(init["seed"])
            else:  # the reference resets unseeded; derived seeds keep runs repeatable
                ss = np.random.SeedSequence([seed, RESET_STREAM, p.index])
                reset_seed = int(ss.generate_state(1)[0])
            cont = None
            if p.index < continuation_for:
                cont = _fit_frames(px[p.start_row : p.goal_row + 1], size)
            out.append(
                PairData(
                    init,
                    goal,
                    _fit_frames(px[p.start_row], size),
                    _fit_frames(px[p.goal_row], size),
                    reset_seed,
                    cont,
                )
            )
    return out


def _fit_frames(frames: np.ndarray, size: int) -> np.ndarray:
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


# --------------------------------------------------------------------------- runs


@dataclass
class RunOutcome:
    """Per-pair outcome of one policy on one seed."""

    success: np.ndarray  # (n,) bool
    steps_to_success: list[int | None]
    final_distance: np.ndarray  # (n,)
    initial_distance: np.ndarray  # (n,)
    env_seconds: float
    frames: dict[int, list[np.ndarray]]  # pair index -> agent view (videos only)


def _check_success_info(info: Mapping, env: Any) -> bool:
    if "success" not in info:
        raise EvaluationError(
            f"{type(env).__name__}.step returned an info without 'success' (environment contract)"
        )
    return bool(info["success"])


def run_mpc(
    envs: Sequence[Any],
    pairs: Sequence[EvalPair],
    data: Sequence[PairData],
    policy: Any,
    budget: int,
    keep_frames: int = 0,
) -> RunOutcome:
    """Drive restored environments with the MPC policy for ``budget`` steps, as one batch.

    The planner sees the dataset frame first, then renders. Renders are taken only at
    block boundaries (the only frames the policy keeps) unless frames are kept for videos.
    """
    n, f = len(envs), policy.frameskip
    obs = np.stack([d.start_frame for d in data])  # (n, S, S, 3)
    goals = np.stack([d.goal_frame for d in data])  # (n, S, S, 3)
    initial = np.array([env.goal_distance() for env in envs], dtype=np.float64)
    policy.reset(n, episode_ids=[p.index for p in pairs])
    done = np.zeros(n, dtype=bool)
    success = np.zeros(n, dtype=bool)
    steps: list[int | None] = [None] * n
    frames = {i: [obs[i].copy()] for i in range(min(keep_frames, n))}
    env_seconds = 0.0
    for t in range(budget):
        alive = np.flatnonzero(~done)
        if len(alive) == 0:
            break
        actions = policy.act(obs, goals, active=~done)  # (n, A) raw
        start = time.perf_counter()
        boundary = (t + 1) % f == 0
        for i in alive:
            _, _, _, truncated, info = envs[i].step(actions[i])
            if _check_success_info(info, envs[i]):
                success[i], done[i], steps[i] = True, True, t + 1
            elif truncated:
                done[i] = True
            if boundary or i in frames:
                obs[i] = envs[i].render()
            if i in frames:
                frames[i].append(obs[i].copy())
        env_seconds += time.perf_counter() - start
    final = np.array([env.goal_distance() for env in envs], dtype=np.float64)
    return RunOutcome(success, steps, final, initial, env_seconds, frames)


def run_random(
    envs: Sequence[Any],
    pairs: Sequence[EvalPair],
    data: Sequence[PairData],
    budget: int,
    seed: int,
) -> RunOutcome:
    """The random floor: restore each pair again and apply uniform actions in the action Box.

    Pair ``i`` draws from its own generator seeded ``(seed, RANDOM_STREAM, i)``, so the
    floor of a pair does not depend on the other pairs.
    """
    from lewm.envs.policies import RandomPolicy

    n = len(envs)
    success = np.zeros(n, dtype=bool)
    steps: list[int | None] = [None] * n
    initial = np.zeros(n)
    final = np.zeros(n)
    start = time.perf_counter()
    for i, (env, pair, d) in enumerate(zip(envs, pairs, data, strict=True)):
        _restore(env, d.init_row, d.goal_row, d.reset_seed)
        initial[i] = env.goal_distance()
        policy_seed = int(
            np.random.SeedSequence([seed, RANDOM_STREAM, pair.index]).generate_state(1)[0]
        )
        policy = RandomPolicy(env, seed=policy_seed)
        for t in range(budget):
            _, _, _, truncated, info = env.step(policy())
            if _check_success_info(info, env):
                success[i], steps[i] = True, t + 1
                break
            if truncated:
                break
        final[i] = env.goal_distance()
    return RunOutcome(success, steps, final, initial, time.perf_counter() - start, {})


# --------------------------------------------------------------------------- the entry point


def evaluate(
    ckpt: str | os.PathLike,
    env: str,
    data: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    episodes: int = 50,
    seeds: Sequence[int] = (42,),
    solver: str = "cem",
    solver_settings: Mapping[str, Any] | None = None,
    horizon: int = 5,
    receding: int | None = None,
    context: int = 1,
    budget: int = 50,
    goal_offset: int = 25,
    profile: str = "clean",
    videos: int = 0,
    device: str = "auto",
    env_kwargs: Mapping[str, Any] | None = None,
    resize_frames: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the paper's evaluation protocol (spec §7) and return the results dictionary.

    Args:
        ckpt: a run directory (or the authors' checkpoint folder / ``.pt``).
        env: ``tworoom``, ``pusht``, ``reacher`` or ``cube``.
        data: the evaluation HDF5 file (reference layout).
        out: directory for ``results.json`` (written atomically at the very end, only if
            everything succeeded) and ``videos/``; None = write nothing.
        episodes: start/goal pairs per seed.
        seeds: evaluation seeds; each draws its own pairs and seeds its solver streams.
        solver, solver_settings: a solver of ``lewm.planning.SOLVERS`` and its settings.
        horizon, receding, context: MPC plan length Hp (blocks), blocks executed per
            plan (None = horizon), context frames H.
        budget: environment steps per episode; goal_offset: raw steps from start to goal.
        profile: ``clean`` (held-out episodes, per-episode solver streams) or
            ``reference`` (the file as given, the reference's single solver stream).
        videos: GIFs of the first ``videos`` pairs of the first seed (needs ``out``).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps`` for the model.
        env_kwargs: extra environment constructor keywords.
        resize_frames: accept dataset frames of another size and resize them (PIL
            bilinear) to the model's; by default a size mismatch is an error.
        log: progress callback (one line per message); default: stderr.

    Returns:
        The ``results.json`` dictionary (see ``docs/evaluation.md``).

    Raises:
        LewmError subclasses (ConfigError, DatasetError, CheckpointError,
        EvaluationError, PlanningError) for bad input; nothing is written then.
    """
    import lewm
    from lewm.data.hdf5 import inspect_dataset
    from lewm.data.transforms import frames_to_pixels
    from lewm.envs import ENVS
    from lewm.planning import MPCConfig, MPCPolicy, make_solver
    from lewm.train import resolve_device

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t_start = time.perf_counter()
    warn: list[str] = []

    def note(msg: str) -> None:
        warn.append(msg)
        log(f"warning: {msg}")

    # ---- 1. arguments, solver, data and model: all checked before anything runs
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    if env not in ENVS:
        raise ConfigError(f"unknown environment {env!r}; choose one of {sorted(ENVS)}")
    seeds = [int(seeds)] if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct non-negative integers, got {seeds}")
    for name, value, low in (
        ("episodes", episodes, 1),
        ("budget", budget, 1),
        ("goal_offset", goal_offset, 1),
        ("videos", videos, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if videos and out is None:
        raise ConfigError("videos need an output directory (out)")
    planner = make_solver(solver, **dict(solver_settings or {}))
    data_path, ckpt_path = Path(data), Path(ckpt)
    info = inspect_dataset(data_path)
    data_env = info.attrs.get("env")
    if data_env is not None and data_env != env:
        raise EvaluationError(
            f"{data_path} was collected in environment {data_env!r}, not {env!r}; pass the "
            f"matching --env or an evaluation file of {env!r}"
        )
    dev = resolve_device(device)
    model = lewm.load(ckpt_path, device=dev, stats_from=data_path, profile=profile)
    run_meta = getattr(model, "run_meta", None) or {}
    trained_env = (run_meta.get("data") or {}).get("env")
    if trained_env is not None and trained_env != env:
        raise EvaluationError(
            f"{ckpt_path} was trained on data of environment {trained_env!r}, not {env!r}"
        )
    size = int(model.image_size)
    if info.image_size != (size, size):
        if not resize_frames:
            raise EvaluationError(
                f"{data_path} holds {info.image_size[0]}x{info.image_size[1]} frames but the "
                f"checkpoint expects {size}x{size}; collect the evaluation file with "
                f"--image-size {size}, or pass --resize-frames to resize the dataset frames "
                "(PIL bilinear, the reference's resize)"
            )
        note(
            f"dataset frames resized from {info.image_size[0]}x{info.image_size[1]} to {size}x{size}"
        )
    if info.action_dim != model.action_dim:
        raise EvaluationError(
            f"{data_path} has {info.action_dim}-D actions but the checkpoint was trained on "
            f"{model.action_dim}-D actions; use a checkpoint trained on {env!r} data"
        )
    data_skip = info.attrs.get("frameskip")
    if data_skip is not None and int(data_skip) != model.frameskip:
        raise EvaluationError(
            f"{data_path} records frameskip {data_skip}, the checkpoint uses {model.frameskip}"
        )
    if model.cfg.action_input_dim != model.frameskip * model.action_dim:
        raise EvaluationError(
            f"{ckpt_path}: action encoder input {model.cfg.action_input_dim} != frameskip "
            f"{model.frameskip} x action_dim {model.action_dim}"
        )
    mpc_cfg = MPCConfig(
        horizon=horizon,
        receding_horizon=receding,
        context_frames=context,
        profile=profile,
        seed=seeds[0],
        budget=budget,
    )
    if horizon * model.frameskip != goal_offset:
        note(
            f"the plan covers {horizon} x {model.frameskip} = {horizon * model.frameskip} raw "
            f"steps but the goal is {goal_offset} steps ahead (the paper matches them: 5 x 5 = 25)"
        )
    iters = planner.settings().get("iterations")
    if iters is not None and iters != REFERENCE_ITERATIONS:
        note(f"{solver} runs {iters} iterations (the reference uses {REFERENCE_ITERATIONS}; P8)")
    source = choose_episodes(model, ckpt_path, data_path, info.n_episodes, profile)
    if source.held_out is False:
        note(f"evaluation uses training episodes: {source.note}")
    elif source.held_out is None:
        note(f"evaluation episodes are not known to be held out: {source.note}")
    # every seed's pairs, before building anything expensive (no valid starts -> error now)
    pairs_by_seed = {
        s: draw_pairs(info.ep_len, info.ep_offset, goal_offset, episodes, s, source.episodes)
        for s in seeds
    }

    # ---- 2. environments and policy
    def make_policy(seed: int, bounds: tuple[Any, Any] | None) -> MPCPolicy:
        return MPCPolicy(
            model,
            planner,
            preprocess=frames_to_pixels,
            config=replace(mpc_cfg, seed=seed),
            action_bounds=bounds,
            device=dev,
        )

    make_policy(seeds[0], None)  # horizon/budget/context checks, before building environments
    envs: list[Any] = []
    try:
        first, used_kwargs = make_eval_env(env, size, profile, info.attrs, env_kwargs)
        envs.append(first)
        space = first.action_space
        if tuple(space.shape) != (model.action_dim,):
            raise EvaluationError(
                f"environment {env!r} has actions of shape {tuple(space.shape)}, the checkpoint "
                f"plans {model.action_dim}-D actions"
            )
        bounds = (space.low, space.high)
        while len(envs) < episodes:
            envs.append(make_eval_env(env, size, profile, info.attrs, env_kwargs)[0])
        setup_seconds = time.perf_counter() - t_start

        # ---- 3. the protocol, seed by seed
        per_seed, rows, render_diffs = [], [], []
        plan_seconds, env_solves = 0.0, 0
        mpc_seconds = random_seconds = env_seconds = video_seconds = 0.0
        for k, seed in enumerate(seeds):
            pairs = pairs_by_seed[seed]
            keep = videos if k == 0 else 0
            pair_data = _read_pairs(data_path, pairs, info.n_rows, size, seed, keep)
            solved0, diffs = [], []
            for e, d in zip(envs, pair_data, strict=True):
                frame = _restore(e, d.init_row, d.goal_row, d.reset_seed)
                if frame.shape != d.start_frame.shape:
                    raise EvaluationError(
                        f"{type(e).__name__}.render() gave {frame.shape} frames, expected "
                        f"{d.start_frame.shape}"
                    )
                diffs.append(float(np.abs(frame.astype(np.int16) - d.start_frame).mean()))
                solved0.append(success_now(e))
            policy = make_policy(seed, bounds)
            t0 = time.perf_counter()
            mpc = run_mpc(envs, pairs, pair_data, policy, budget, keep_frames=keep)
            mpc_seconds += time.perf_counter() - t0
            env_seconds += mpc.env_seconds
            seed_plan = sum(r.seconds for r in policy.records)
            seed_solves = sum(len(r.env_ids) for r in policy.records)
            plan_seconds += seed_plan
            env_solves += seed_solves
            rnd = run_random(envs, pairs, pair_data, budget, seed)
            random_seconds += rnd.env_seconds
            if keep:
                from lewm.eval.video import write_episode_gif

                t0 = time.perf_counter()
                for i in range(min(keep, len(pairs))):
                    p = pairs[i]
                    tag = "success" if mpc.success[i] else "fail"
                    write_episode_gif(
                        Path(out) / "videos" / f"seed{seed}_pair{i:03d}_ep{p.episode}_{tag}.gif",
                        mpc.frames[i],
                        pair_data[i].continuation,
                        pair_data[i].goal_frame,
                        success_step=mpc.steps_to_success[i],
                    )
                video_seconds += time.perf_counter() - t0
            solved0 = np.asarray(solved0, dtype=bool)
            render_diffs += diffs
            for i, p in enumerate(pairs):
                rows.append(
                    {
                        "seed": seed,
                        **asdict(p),
                        "success": bool(mpc.success[i]),
                        "steps_to_success": mpc.steps_to_success[i],
                        "initial_distance": _finite_or_none(mpc.initial_distance[i]),
                        "final_distance": _finite_or_none(mpc.final_distance[i]),
                        "already_solved": bool(solved0[i]),
                        "random_success": bool(rnd.success[i]),
                        "random_steps_to_success": rnd.steps_to_success[i],
                        "random_initial_distance": _finite_or_none(rnd.initial_distance[i]),
                        "random_final_distance": _finite_or_none(rnd.final_distance[i]),
                        "render_diff": diffs[i],
                    }
                )
            entry = _seed_summary(seed, mpc.success, rnd.success, solved0)
            entry["plan_seconds_mean"] = seed_plan / max(seed_solves, 1)
            per_seed.append(entry)
            log(
                f"seed {seed}: success {entry['success_rate']:.1f}% "
                f"(random {entry['random_success_rate']:.1f}%, already solved "
                f"{100 * entry['already_solved_fraction']:.1f}%) over {len(pairs)} episodes"
            )
    finally:
        for e in envs:
            close = getattr(e, "close", None)
            if callable(close):
                close()

    # ---- 4. results
    render_check = {
        "mean_abs_diff": float(np.mean(render_diffs)),
        "max_abs_diff": float(np.max(render_diffs)),
        "units": "grey levels (0..255), mean over pixels and channels, render after load_state "
        "vs the dataset frame",
        "warn_above": RENDER_DIFF_WARN,
        "ok": bool(np.mean(render_diffs) <= RENDER_DIFF_WARN),
    }
    if not render_check["ok"]:
        note(
            f"renders differ from the dataset frames by {render_check['mean_abs_diff']:.2f} grey "
            "levels on average: the planner sees the dataset frame first and renders afterwards "
            "(spec §12 P13)"
        )
    rates = np.array([s["success_rate"] for s in per_seed])
    excl = [s["success_rate_excluding_solved"] for s in per_seed]
    excl = [x for x in excl if x is not None]
    results: dict[str, Any] = {
        "success_rate": float(rates.mean()),
        "success_rate_std": float(rates.std()),
        "random_success_rate": float(np.mean([s["random_success_rate"] for s in per_seed])),
        "random_success_rate_std": float(np.std([s["random_success_rate"] for s in per_seed])),
        "already_solved_fraction": float(np.mean([s["already_solved_fraction"] for s in per_seed])),
        "success_rate_excluding_solved": float(np.mean(excl)) if excl else None,
        "headline_metric": "success_rate_excluding_solved"
        if profile == "clean"
        else "success_rate",
        "per_seed": per_seed,
        "plan_seconds_mean": plan_seconds / max(env_solves, 1),
        "solves": env_solves,
        "env": env,
        "env_kwargs": used_kwargs,
        "checkpoint": str(ckpt_path.resolve()),
        "checkpoint_step": run_meta.get("step"),
        "preset": run_meta.get("preset"),
        "model": {
            "image_size": size,
            "frameskip": model.frameskip,
            "action_dim": model.action_dim,
            "history_size": model.history_size,
        },
        "data": str(data_path.resolve()),
        "profile": profile,
        "held_out": source.held_out,
        "held_out_note": source.note,
        "seeds": seeds,
        "episodes_per_seed": episodes,
        "solver": planner.settings(),
        "mpc": {
            "horizon": horizon,
            "receding": mpc_cfg.receding_horizon,
            "frameskip": model.frameskip,
            "context": context,
            "budget": budget,
            "goal_offset": goal_offset,
            "warm_start": mpc_cfg.warm_start,
            "cost_steps": mpc_cfg.cost_steps,
        },
        "render_consistency": render_check,
        "resize_frames": bool(resize_frames and info.image_size != (size, size)),
        "device": str(dev),
        "timing": {
            "total_seconds": time.perf_counter() - t_start,
            "setup_seconds": setup_seconds,
            "mpc_seconds": mpc_seconds,
            "plan_seconds": plan_seconds,
            "env_seconds": env_seconds,
            "random_seconds": random_seconds,
            "video_seconds": video_seconds,
        },
        "warnings": warn,
        "lewm_version": lewm.__version__,
        "episodes": rows,
    }
    if out is not None:
        from lewm.checkpoint import atomic_write_bytes

        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(results, indent=2, allow_nan=False) + "\n"
        atomic_write_bytes(out_dir / "results.json", text.encode())
    return results


def _finite_or_none(x: float) -> float | None:
    """JSON has no NaN/inf: a distance an environment cannot compute becomes null."""
    x = float(x)
    return x if np.isfinite(x) else None


def _seed_summary(
    seed: int, success: np.ndarray, random_success: np.ndarray, solved0: np.ndarray
) -> dict[str, Any]:
    """Rates in %, the already-solved share as a fraction (spec §7.4, P9)."""
    rest = ~solved0
    return {
        "seed": seed,
        "success_rate": 100.0 * float(success.mean()),
        "random_success_rate": 100.0 * float(random_success.mean()),
        "already_solved_fraction": float(solved0.mean()),
        "success_rate_excluding_solved": 100.0 * float(success[rest].mean())
        if rest.any()
        else None,
        "random_success_rate_excluding_solved": 100.0 * float(random_success[rest].mean())
        if rest.any()
        else None,
        "episodes": int(len(success)),
    }
