"""The MPC policy: action order and de-normalisation, replanning, warm start, random-stream
layout per profile, bounds, and a toy world planned to its goal (the context window:
``test_mpc_history.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mpc_helpers import FakeSolver, PointEnv, PointWorld, frames_of, preprocess

from lewm.errors import ConfigError
from lewm.planning import GoalCost, MPCConfig, MPCPolicy, make_solver


def test_executes_raw_actions_step_major_and_denormalised():
    f, a, hp = 3, 2, 2
    model = PointWorld(frameskip=f, mu=(1.0, 2.0), sigma=(2.0, 3.0))
    solver = FakeSolver()
    policy = MPCPolicy(model, solver, preprocess, MPCConfig(horizon=hp, receding_horizon=hp))
    policy.reset(1)
    got = np.stack([policy.act(frames_of([t]), frames_of([0]))[0] for t in range(2 * hp * f)])
    expected = []
    for call in range(2):
        for t in range(hp * f):
            k, j = divmod(t, f)  # block k, raw step j inside it
            norm = 100 * k + np.arange(j * a, (j + 1) * a) + 1000 * call
            expected.append(norm * np.array([2.0, 3.0]) + np.array([1.0, 2.0]))
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-6)
    assert [r.step for r in policy.records] == [0, hp * f]  # whole plan executed, then replan
    assert [r.solve_indices for r in policy.records] == [(0,), (1,)]


def test_replans_every_receding_horizon_with_shifted_warm_start():
    f, hp, r = 2, 4, 1
    solver = FakeSolver()
    policy = MPCPolicy(
        PointWorld(frameskip=f), solver, preprocess, MPCConfig(horizon=hp, receding_horizon=r)
    )
    policy.reset(1)
    for t in range(4 * r * f):
        policy.act(frames_of([t]), frames_of([0]))
    assert [rec.step for rec in policy.records] == [0, 2, 4, 6]
    assert torch.equal(solver.calls[0]["init"], torch.zeros(1, hp, 2 * f))
    for prev, nxt in zip(solver.calls, solver.calls[1:], strict=False):
        assert torch.equal(nxt["init"][0, : hp - r], prev["plan"][0, r:])  # the unexecuted tail
        assert torch.equal(nxt["init"][0, hp - r :], torch.zeros(r, 2 * f))  # padded with zeros


@pytest.mark.parametrize("warm_start", [True, False])
def test_warm_start_is_a_no_op_when_receding_equals_horizon(warm_start):
    solver = FakeSolver()
    config = MPCConfig(horizon=2, receding_horizon=2, warm_start=warm_start)
    policy = MPCPolicy(PointWorld(frameskip=2), solver, preprocess, config)
    policy.reset(1)
    for t in range(8):
        policy.act(frames_of([t]), frames_of([0]))
    assert len(solver.calls) == 2
    assert all(torch.equal(c["init"], torch.zeros(1, 2, 4)) for c in solver.calls)


def run_point_episodes(policy, start, goal, steps, episode_ids=None):
    env = PointEnv(start)
    goals = PointEnv.render(np.asarray(goal))
    policy.reset(len(start), episode_ids)
    frames, actions, dists = PointEnv.render(env.pos), [], []
    for _ in range(steps):
        act = policy.act(frames, goals)
        actions.append(act)
        frames = env.step(act)
        dists.append(np.linalg.norm(env.pos - goal, axis=1))
    return np.stack(actions), np.stack(dists)


START = np.array([[0.3, 0.4], [0.6, 0.7], [0.5, 0.5], [0.7, 0.3]])
GOAL = np.array([[0.6, 0.5], [0.3, 0.4], [0.5, 0.8], [0.4, 0.6]])


def point_policy(profile="clean", **solver_kw):
    solver = make_solver("cem", **{"samples": 30, "iterations": 3, "topk": 5, **solver_kw})
    config = MPCConfig(horizon=2, receding_horizon=1, profile=profile)
    return MPCPolicy(
        PointWorld(), solver, preprocess, config, action_bounds=(PointEnv.LOW, PointEnv.HIGH)
    )


def test_clean_profile_batched_equals_one_env_at_a_time():
    batched, _ = run_point_episodes(point_policy(), START[:3], GOAL[:3], steps=10)
    for i in range(3):
        single, _ = run_point_episodes(point_policy(), START[i : i + 1], GOAL[i : i + 1], 10, [i])
        np.testing.assert_allclose(batched[:, i], single[:, 0], atol=1e-6)
    other_ids, _ = run_point_episodes(point_policy(), START[:3], GOAL[:3], 10, [7, 8, 9])
    assert not np.allclose(batched, other_ids)  # the episode id seeds the stream


def test_reference_profile_solves_one_at_a_time_with_one_stream():
    solver = FakeSolver()
    policy = MPCPolicy(PointWorld(), solver, preprocess, MPCConfig(profile="reference"))
    policy.reset(3)
    policy.act(frames_of([1, 2, 3]), frames_of([0, 0, 0]), active=np.array([True, False, True]))
    assert [c["n"] for c in solver.calls] == [1, 1]
    assert [r.env_ids for r in policy.records] == [(0,), (2,)]  # alive envs, index order
    assert solver.calls[0]["generators"] is solver.calls[1]["generators"]

    # the plans are exactly CEM run env by env on one generator seeded 42
    model, hp, fa = PointWorld(), 2, 10
    policy = MPCPolicy(
        model,
        make_solver("cem", samples=20, iterations=2, topk=4),
        preprocess,
        MPCConfig(horizon=hp, profile="reference"),
    )
    start, goal = PointEnv.render(START[:2]), PointEnv.render(GOAL[:2])
    policy.reset(2)
    policy.act(start, goal)
    gen, cost = torch.Generator().manual_seed(42), GoalCost(model)
    for i in range(2):
        ctx = cost.prepare(preprocess(start[i : i + 1]), preprocess(goal[i : i + 1]))
        plan = (
            make_solver("cem", samples=20, iterations=2, topk=4)
            .solve(cost.cost_fn(ctx), 1, hp, fa, generators=gen)
            .plan
        )
        np.testing.assert_allclose(policy.records[i].plan, plan.numpy(), atol=1e-6)


def test_linear_world_is_planned_to_its_goal_with_cem():
    config = MPCConfig(horizon=5, receding_horizon=5, budget=50)
    solver = make_solver("cem", samples=100, iterations=10, topk=10)
    policy = MPCPolicy(
        PointWorld(), solver, preprocess, config, action_bounds=(PointEnv.LOW, PointEnv.HIGH)
    )
    _, dists = run_point_episodes(policy, START, GOAL, steps=50)
    assert (np.linalg.norm(START - GOAL, axis=1) > 0.25).all()
    assert (dists[24] < 0.02).all(), dists[24]  # the goal is reached after the first plan
    assert (dists.min(axis=0) < 0.02).all()
    assert [r.step for r in policy.records] == [0, 25]  # two solves per 50-step episode
    assert len(policy.plan_seconds) == 2 and all(s > 0 for s in policy.plan_seconds)


def test_bounds_are_mapped_to_normalised_space_per_profile():
    bounds = (np.array([-0.05, -1.0]), np.array([0.05, 1.0]))
    mu, sigma = np.array([0.01, -0.01]), np.array([0.03, 0.03])
    lo_n, hi_n = (bounds[0] - mu) / sigma, (bounds[1] - mu) / sigma

    def solver_bounds(profile, solver, clamp=None):
        config = MPCConfig(profile=profile, clamp_to_bounds=clamp)
        return MPCPolicy(PointWorld(), solver, preprocess, config, action_bounds=bounds).bounds

    lo, hi = solver_bounds("clean", make_solver("cem"))
    np.testing.assert_allclose(lo.numpy(), np.tile(lo_n, 5), rtol=1e-6)  # (f*A,), step-major
    np.testing.assert_allclose(hi.numpy(), np.tile(hi_n, 5), rtol=1e-6)
    assert solver_bounds("reference", make_solver("cem")) is None  # the reference never clips
    lo, _ = solver_bounds("reference", make_solver("icem"))  # ...except iCEM, in raw units
    np.testing.assert_allclose(lo.numpy(), np.tile(bounds[0], 5), rtol=1e-6)
    assert solver_bounds("clean", make_solver("cem"), clamp=False) is None
    lo, _ = solver_bounds("reference", make_solver("cem"), clamp=True)
    np.testing.assert_allclose(lo.numpy(), np.tile(lo_n, 5), rtol=1e-6)


def test_inactive_envs_are_not_planned_or_advanced():
    solver = FakeSolver()
    policy = MPCPolicy(
        PointWorld(frameskip=1), solver, preprocess, MPCConfig(horizon=1, receding_horizon=1)
    )
    policy.reset(2)
    out = policy.act(frames_of([1, 2]), frames_of([0, 0]), active=np.array([False, True]))
    assert np.all(out[0] == 0) and policy.steps.tolist() == [0, 1]
    assert policy.records[0].env_ids == (1,)


def test_configuration_errors():
    with pytest.raises(ConfigError, match="exceeds the episode budget"):
        MPCPolicy(
            PointWorld(frameskip=5), FakeSolver(), preprocess, MPCConfig(horizon=5, budget=20)
        )
    MPCPolicy(PointWorld(frameskip=5), FakeSolver(), preprocess, MPCConfig(horizon=5, budget=25))
    with pytest.raises(ConfigError, match="predictor window"):
        MPCPolicy(PointWorld(), FakeSolver(), preprocess, MPCConfig(context_frames=4))
    with pytest.raises(ConfigError, match="receding_horizon"):
        MPCConfig(horizon=2, receding_horizon=3)
    with pytest.raises(ConfigError, match="profile"):
        MPCConfig(profile="fast")
    model = PointWorld()
    del model.frameskip
    with pytest.raises(ConfigError, match="frameskip"):
        MPCPolicy(model, FakeSolver(), preprocess)
    policy = MPCPolicy(PointWorld(), FakeSolver(), preprocess)
    with pytest.raises(ValueError, match="reset"):
        policy.act(frames_of([1]), frames_of([1]))


def test_clamp_mode_is_reported():
    bounds = (PointEnv.LOW, PointEnv.HIGH)

    def mode(profile, solver, clamp=None, action_bounds=bounds):
        config = MPCConfig(profile=profile, clamp_to_bounds=clamp)
        return MPCPolicy(
            PointWorld(), solver, preprocess, config, action_bounds=action_bounds
        ).clamp_mode

    assert mode("clean", make_solver("cem")) == "normalised"
    assert mode("reference", make_solver("cem")) == "none"
    assert mode("reference", make_solver("icem")) == "raw"
    assert mode("clean", make_solver("cem"), clamp=False) == "none"
    assert mode("clean", make_solver("cem"), action_bounds=None) == "none"


def test_a_proposer_gives_the_initial_plan_and_initial_plan_executes_it():
    """The proposer's plan (from the solve's context) replaces the warm start; with
    InitialPlan it is executed as is, de-normalised; with CEM it is the initial mean."""
    from lewm.planning.solvers import InitialPlan

    seen = []

    def proposer(context, horizon):  # the right blocks of the point world, from z and goal
        seen.append(context)
        need = (context.goal_emb - context.context_emb[:, -1]) / horizon  # (n, 2) per block
        raw = need[:, None, None, :].expand(-1, horizon, 5, 2) / 5  # (n, Hp, f, A)
        mu, sigma = torch.tensor([0.01, -0.01]), torch.tensor([0.03, 0.03])
        return ((raw - mu) / sigma).reshape(-1, horizon, 10)

    config = MPCConfig(horizon=5, budget=50)
    policy = MPCPolicy(PointWorld(), InitialPlan(), preprocess, config, proposer=proposer)
    start, goal = START[:2], GOAL[:2]
    actions, dists = run_point_episodes(policy, start, goal, steps=25)
    assert len(seen) == 1 and seen[0].n_envs == 2
    assert (dists[-1] < 0.01).all(), dists[-1]  # the proposal reaches the goal by itself
    np.testing.assert_allclose(actions[0], (goal - start) / 25, atol=1e-3)
    assert all(np.isfinite(c) for r in policy.records for c in r.cost)  # its cost, evaluated
    # CEM starts from it: candidate 0 of the first iteration is the proposal
    solver = FakeSolver()
    policy = MPCPolicy(PointWorld(), solver, preprocess, config, proposer=proposer)
    run_point_episodes(policy, start, goal, steps=1)
    torch.testing.assert_close(solver.calls[0]["init"], proposer(seen[-1], 5))


def test_cost_step_is_checked_and_passed_to_the_cost():
    with pytest.raises(ConfigError, match="cost_step"):
        MPCConfig(horizon=5, cost_step=6)
    policy = MPCPolicy(PointWorld(), FakeSolver(), preprocess, MPCConfig(cost_step=2))
    assert policy.objective.cost_step == 2


def test_initial_plan_is_the_init_within_bounds():
    from lewm.planning.solvers import InitialPlan

    init = torch.tensor([[[-3.0, 0.5], [2.0, -0.2]]])  # (1, Hp=2, fA=2)
    calls = []

    def cost(c):
        calls.append(c.shape)
        return c.pow(2).sum(dim=(-1, -2))

    res = InitialPlan().solve(
        cost, 1, 2, 2, init=init, bounds=(torch.tensor(-1.0), torch.tensor(1.0))
    )
    torch.testing.assert_close(res.plan, init.clamp(-1, 1))
    assert calls == [(1, 1, 2, 2)] and float(res.cost) == pytest.approx(1 + 0.25 + 1 + 0.04)
