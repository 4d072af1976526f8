"""Collect episodes from any environment of ``lewm.envs.ENVS`` into the reference HDF5 layout.

One code path for every environment: it relies only on the contract written
at the top of ``docs/environments.md`` (``reset(seed)``, ``render()``,
``record()``, ``step()``, ``action_space``, and a policy class
``Policy(env, seed)`` with ``reset()`` and ``__call__(obs, info)``).
Environments are built by :func:`lewm.envs.factory.build_env`, the project's one
factory, with the registry's ``collect_kwargs`` under the caller's ``env_kwargs``.

Episode ``i`` of a run with seed ``K`` draws its environment and policy seeds
from ``np.random.SeedSequence(K, spawn_key=(i,))``, so the file is identical
for any number of workers. Workers return whole episodes to the parent, which
writes them in episode order through :class:`lewm.data.hdf5.DatasetWriter`
(temporary file, atomic rename; deleted on error, Ctrl-C or SIGTERM). The worker
pool and its lifecycle (every worker joined, workers exit when the collector is
killed) live in :mod:`lewm.envs.collect_pool`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from lewm.config import check_seed
from lewm.envs.collect_pool import pool_episodes
from lewm.envs.factory import build_env, load_object
from lewm.errors import ConfigError, DatasetError
from lewm.paths import check_output_file

__all__ = ["RESERVED_COLUMNS", "EpisodeRunner", "collect", "episode_seeds", "load_object"]

RESERVED_COLUMNS = frozenset(
    {"pixels", "action", "reward", "terminated", "truncated", "goal"}
    | {"ep_idx", "episode_idx", "step_idx", "ep_len", "ep_offset"}
)


def episode_seeds(seed: int, index: int) -> tuple[int, int]:
    """(environment reset seed, policy seed) of episode ``index`` in a run seeded ``seed``."""
    env_seed, policy_seed = np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(2)
    return int(env_seed), int(policy_seed)


class EpisodeRunner:
    """Runs single episodes of one (environment, policy) pair; one per worker process.

    Takes import paths rather than registry names, so a worker process needs
    nothing from the parent's ``ENVS`` table.
    """

    def __init__(
        self,
        entry_point: str,
        policy_path: str,
        image_size: int,
        seed: int,
        max_steps: int,
        env_kwargs: Mapping[str, Any] | None = None,
        policy_kwargs: Mapping[str, Any] | None = None,
        goal_pixels: bool = False,
        extra: str | None = None,
    ):
        self.env, _ = build_env(entry_point, image_size, extra=extra, env_kwargs=env_kwargs)
        self.policy_cls = load_object(policy_path)
        self.policy_kwargs = dict(policy_kwargs or {})
        self.seed = seed
        self.max_steps = max_steps
        self.goal_pixels = goal_pixels
        self.action_shape = tuple(self.env.action_space.shape)

    def run(self, index: int) -> dict[str, np.ndarray]:
        """Episode ``index``: columns stacked over its rows (spec §5 alignment)."""
        env = self.env
        env_seed, policy_seed = episode_seeds(self.seed, index)
        obs, info = env.reset(seed=env_seed)
        try:
            policy = self.policy_cls(env, seed=policy_seed, **self.policy_kwargs)
        except (TypeError, ValueError) as exc:  # a bad --policy-set keyword or value
            raise ConfigError(
                f"policy {self.policy_cls.__name__} rejects keywords {self.policy_kwargs}: {exc}"
            ) from exc
        policy.reset()
        frames = [env.render()]
        rows = [env.record()]
        actions: list[np.ndarray] = []
        rewards, terms, truncs = [0.0], [False], [False]
        for _ in range(self.max_steps):
            action = np.asarray(policy(obs, info), dtype=np.float32)
            if action.shape != self.action_shape:
                raise ValueError(
                    f"{type(policy).__name__} returned an action of shape {action.shape}, "
                    f"the action space is {self.action_shape}"
                )
            obs, reward, terminated, truncated, info = env.step(action)
            actions.append(action)
            frames.append(env.render())
            rows.append(env.record())
            rewards.append(float(reward))
            terms.append(bool(terminated))
            truncs.append(bool(truncated))
            if terminated or truncated:
                break
        n = len(frames)
        action = np.full((n, *self.action_shape), np.nan, dtype=np.float32)
        action[:-1] = np.stack(actions)
        episode = {
            "pixels": np.stack(frames),
            "action": action,
            "reward": np.asarray(rewards, dtype=np.float32),
            "terminated": np.asarray(terms, dtype=bool),
            "truncated": np.asarray(truncs, dtype=bool),
        }
        clash = RESERVED_COLUMNS & set(rows[0])
        if clash:
            raise DatasetError(
                f"{type(env).__name__}.record() returns reserved column name(s) {sorted(clash)}"
            )
        for key in rows[0]:
            episode[key] = np.stack([np.asarray(r[key]) for r in rows])
        if self.goal_pixels:
            episode["goal"] = np.repeat(env.render_goal()[None], n, axis=0)
        return episode


# -- public API -------------------------------------------------------------------


def collect(
    env: str,
    policy: str,
    episodes: int,
    image_size: int,
    seed: int,
    out: str | os.PathLike,
    workers: int = 1,
    *,
    max_steps: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    policy_kwargs: Mapping[str, Any] | None = None,
    compression: str = "gzip",
    goal_pixels: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    first_episode: int = 0,
) -> Path:
    """Collect ``episodes`` episodes of ``env`` driven by ``policy`` into ``out``.

    Args:
        env: a key of ``lewm.envs.ENVS`` (``tworoom``, ``pusht``, ``reacher``, ``cube``).
        policy: a key of that environment's policies (``expert``, ``random``).
        episodes: number of episodes (> 0).
        image_size: side of the square frames (> 0).
        seed: run seed; episode seeds derive from (seed, episode index).
        out: destination ``.h5``; its directory must exist.
        workers: worker processes (1 = in this process). Output does not depend on it.
        max_steps: episode step limit (default: the environment's ``max_episode_steps``).
        env_kwargs / policy_kwargs: extra constructor keywords.
        compression: ``gzip`` (default), ``blosc`` or ``none`` for image columns.
        goal_pixels: add a ``goal`` image column (``env.render_goal()`` at reset).
        overwrite: replace an existing ``out``.
        progress: show a tqdm progress bar on stderr.
        first_episode: index of the first episode: the file holds episodes
            ``first_episode .. first_episode + episodes - 1`` of the run seeded ``seed``
            (a shard of a longer collection, :mod:`lewm.envs.collect_shards`).

    Returns:
        The path of the finished file.

    Raises:
        ConfigError: unknown environment/policy, or a non-positive count or size.
        OutputPathError: ``out`` is empty, a directory, under a file, or in a missing or
            read-only folder (all checked before any episode runs).
        DatasetError: ``out`` exists without ``overwrite``.
        OSError: the disk filled up or another write failed (the partial file is removed).
    """
    from lewm.data.hdf5 import DatasetWriter

    spec = _check_request(env, policy, episodes, image_size, workers, seed)
    if (
        isinstance(first_episode, bool)
        or not isinstance(first_episode, (int, np.integer))
        or (first_episode < 0)
    ):
        raise ConfigError(f"first_episode must be a non-negative integer, got {first_episode!r}")
    max_steps = _check_max_steps(spec.max_episode_steps if max_steps is None else max_steps)
    out = _check_output(out, overwrite)
    runner_kwargs = dict(
        entry_point=spec.entry_point,
        policy_path=spec.policies[policy],
        extra=spec.extra,
        image_size=int(image_size),
        seed=int(seed),
        max_steps=max_steps,
        env_kwargs={**spec.collect_kwargs, **dict(env_kwargs or {})},
        policy_kwargs=dict(policy_kwargs or {}),
        goal_pixels=bool(goal_pixels),
    )
    meta = _meta(env, spec, policy, episodes, runner_kwargs, first_episode)
    source = _episodes(
        runner_kwargs, int(episodes), int(workers), progress, env, int(first_episode)
    )
    with closing(source), DatasetWriter(out, compression=compression, meta=meta) as writer:
        for episode in source:
            writer.add_episode(episode)
    return out


def _meta(env: str, spec, policy: str, episodes: int, runner_kwargs: dict, first: int) -> dict:
    """The file's ``lewm_meta``: what a user needs to collect the same episodes again."""
    meta = {
        "collector": "lewm.envs.collect",
        "env": env,
        "gym_id": spec.gym_id,
        "policy": policy,
        "episodes": int(episodes),
        "image_size": runner_kwargs["image_size"],
        "seed": runner_kwargs["seed"],
        "max_steps": runner_kwargs["max_steps"],
        "env_kwargs": runner_kwargs["env_kwargs"],
        "policy_kwargs": runner_kwargs["policy_kwargs"],
        "episode_seeds": "np.random.SeedSequence(seed, spawn_key=(episode,)).generate_state(2)",
    }
    if first:
        meta["first_episode"] = int(first)
    return meta


def _check_request(env: str, policy: str, episodes, image_size, workers, seed):
    """The registry entry of ``env``, after checking the policy name and the counts."""
    from lewm.envs import ENVS

    if env not in ENVS:
        raise ConfigError(f"unknown environment {env!r}; choose one of {sorted(ENVS)}")
    spec = ENVS[env]
    if policy not in spec.policies:
        raise ConfigError(
            f"unknown policy {policy!r} for environment {env!r}; choose one of {sorted(spec.policies)}"
        )
    for name, value in (("episodes", episodes), ("image_size", image_size), ("workers", workers)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    check_seed(seed)
    return spec


def _check_max_steps(max_steps) -> int:
    if (
        isinstance(max_steps, bool)
        or not isinstance(max_steps, (int, np.integer))
        or max_steps <= 0
    ):
        raise ConfigError(f"max_steps must be a positive integer, got {max_steps!r}")
    return int(max_steps)


def _check_output(out: str | os.PathLike, overwrite: bool) -> Path:
    """Before any work: a file name (not a directory) in a writable, existing folder."""
    out = check_output_file(out, parent_must_exist=True)
    if out.exists() and not overwrite:
        raise DatasetError(f"{out}: file exists; pass overwrite=True (--overwrite) to replace it")
    return out


def _episodes(
    runner_kwargs: dict, episodes: int, workers: int, progress: bool, label: str, first: int = 0
):
    """Yield episodes first..first+episodes-1 in order, from this process or a worker pool."""
    from tqdm import tqdm

    bar = tqdm(
        total=episodes, unit="ep", desc=f"collect {label}", disable=not progress, file=sys.stderr
    )
    try:
        if workers == 1:
            runner = EpisodeRunner(**runner_kwargs)
            for i in range(first, first + episodes):
                ep = runner.run(i)
                bar.update(1)
                bar.set_postfix(rows=len(ep["pixels"]), refresh=False)
                yield ep
        else:
            # Build one environment here first: a construction error (missing extra, no rendering
            # backend, bad keyword) is then reported as itself, not as a crashed worker, and the
            # MuJoCo backend is chosen once for every worker.
            probe, _ = build_env(
                runner_kwargs["entry_point"],
                runner_kwargs["image_size"],
                extra=runner_kwargs["extra"],
                env_kwargs=runner_kwargs["env_kwargs"],
            )
            if hasattr(probe, "close"):
                probe.close()
            for ep in pool_episodes(runner_kwargs, episodes, workers, label, first):
                bar.update(1)
                bar.set_postfix(rows=len(ep["pixels"]), refresh=False)
                yield ep
    finally:
        bar.close()
