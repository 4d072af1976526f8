"""The two policies driven on restored pairs: the MPC planner and the random floor (spec §7.1, §7.3).

Both count a success when the environment's success test fires at any of steps
1..budget (``info["success"]``); an environment that succeeded is frozen.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lewm.eval.config import EvaluationError
from lewm.eval.pairs import EvalPair
from lewm.eval.restore import PairData, restore

RANDOM_STREAM = 0x52414E44  # "RAND": separates the random floor's streams from any other


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

    The planner sees the dataset frame first, then renders; a pair read with its past
    (``PairData.past_frames``) primes the policy's context with it. Renders are taken only at
    block boundaries (the only frames the policy keeps) unless frames are kept for videos.
    """
    n, f = len(envs), policy.frameskip
    obs = np.stack([d.start_frame for d in data])  # (n, S, S, 3)
    goals = np.stack([d.goal_frame for d in data])  # (n, S, S, 3)
    initial = np.array([env.goal_distance() for env in envs], dtype=np.float64)
    policy.reset(n, episode_ids=[p.index for p in pairs])
    for i, d in enumerate(data):
        if d.past_frames is not None:  # --dataset-history: what preceded the start
            policy.prime(i, d.past_frames, d.past_actions)
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
        restore(env, d.init_row, d.goal_row, d.reset_seed)
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
