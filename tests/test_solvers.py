"""Solvers in normalised action space: semantics, convergence and random-stream layout."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from lewm.errors import ConfigError
from lewm.planning.interface import PlanningError
from lewm.planning.solvers import SOLVERS, default_topk, make_generator, make_solver
from lewm.planning.solvers.base import SampleSolver, SampleState, Solver
from lewm.planning.solvers.icem import colored_noise

HP, FA = 4, 6

# Small settings per solver so every test stays fast.
SMALL = {
    "cem": dict(samples=40, iterations=6, topk=8),
    "icem": dict(samples=40, iterations=6, topk=8, keep_elites=3),
    "mppi": dict(samples=40, iterations=6, topk=8),
    "gradient": dict(samples=8, steps=6),
}


def quadratic(targets: torch.Tensor):
    """cost(c)[i, s] = ||c[i, s] - targets[i]||^2 plus a bumpy term; (n, S, Hp, fA) -> (n, S)."""

    def cost(c: torch.Tensor) -> torch.Tensor:
        diff = c - targets[:, None]
        return diff.pow(2).sum(dim=(-1, -2)) + 0.1 * torch.sin(3 * c).sum(dim=(-1, -2))

    return cost


class Recorder:
    """Wraps a cost function and keeps every candidate batch and cost it saw."""

    def __init__(self, cost):
        self.cost, self.cands, self.costs = cost, [], []

    def __call__(self, c):
        out = self.cost(c)
        self.cands.append(c.detach().clone())
        self.costs.append(out.detach().clone())
        return out


def targets_for(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, HP, FA, generator=g) * 2 - 1


def test_cem_converges_to_quadratic_optimum():
    targets = targets_for(2)

    def cost(c):
        return (c - targets[:, None]).pow(2).sum(dim=(-1, -2))

    res = make_solver("cem").solve(
        cost, 2, HP, FA, generators=[make_generator(1, i) for i in range(2)]
    )
    assert res.plan.shape == (2, HP, FA) and res.cost.shape == (2,)
    assert torch.allclose(res.plan, targets, atol=1e-3)
    assert float(res.cost.max()) < 1e-4
    assert res.stats["cost_history"].shape == (2, 30)


def test_cem_reference_semantics_reproduced_step_by_step():
    """Candidates = N(0,1)*std + mean with candidate 0 = mean, unbiased elite std, final mean."""
    s, k, iters = 20, 5, 4
    targets = targets_for(1, seed=3)
    rec = Recorder(quadratic(targets))
    init = torch.full((1, 2, FA), 0.5)  # warm-start prefix, padded with zeros
    solver = make_solver("cem", samples=s, topk=k, iterations=iters)
    res = solver.solve(rec, 1, HP, FA, init=init, generators=torch.Generator().manual_seed(42))

    gen = torch.Generator().manual_seed(42)
    mean = torch.zeros(HP, FA)
    mean[:2] = 0.5
    std = torch.ones(HP, FA)
    for t in range(iters):
        noise = torch.randn(s, HP, FA, generator=gen)
        cand = rec.cands[t][0]
        assert torch.equal(cand[0], mean), "candidate 0 must be the current mean"
        assert torch.allclose(cand[1:], noise[1:] * std + mean, atol=1e-6)
        order = torch.argsort(rec.costs[t][0])[:k]
        elites = cand[order]
        mean = elites.mean(0)
        biased = elites.std(0, correction=0)
        std = elites.std(0, correction=1)
        assert not torch.allclose(std, biased)  # the check below can tell them apart
        elite_cost = rec.costs[t][0][order].mean()
    assert torch.allclose(res.plan[0], mean, atol=1e-6), "the plan is the final mean"
    assert torch.allclose(res.cost[0], elite_cost)
    assert torch.allclose(res.stats["std"][0], std, atol=1e-6)


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_batched_equals_one_at_a_time(name):
    n = 4
    targets = targets_for(n, seed=5)
    init = torch.randn(n, 2, FA, generator=torch.Generator().manual_seed(9)) * 0.3
    solver = make_solver(name, **SMALL[name])

    def gens(rows):
        return [make_generator(7, episode=i, solve=3) for i in rows]

    batched = solver.solve(quadratic(targets), n, HP, FA, init=init, generators=gens(range(n)))
    for i in range(n):
        single = solver.solve(
            quadratic(targets[i : i + 1]), 1, HP, FA, init=init[i : i + 1], generators=gens([i])
        )
        assert torch.allclose(batched.plan[i], single.plan[0], atol=1e-5), (name, i)
        assert torch.allclose(batched.cost[i], single.cost[0], atol=1e-5), (name, i)
    # and the rows really differ (a solver ignoring its generators would still pass above)
    assert not torch.allclose(batched.plan[0], batched.plan[1])


def test_reference_stream_continues_across_environments():
    s, iters = 10, 2
    solver = make_solver("cem", samples=s, topk=3, iterations=iters)
    shared = torch.Generator().manual_seed(42)
    first, second = Recorder(quadratic(targets_for(1, 1))), Recorder(quadratic(targets_for(1, 2)))
    solver.solve(first, 1, HP, FA, generators=shared)
    solver.solve(second, 1, HP, FA, generators=shared)

    gen = torch.Generator().manual_seed(42)
    for _ in range(iters):  # the first environment's draws
        torch.randn(s, HP, FA, generator=gen)
    expected = torch.randn(s, HP, FA, generator=gen)
    expected[0] = 0.0  # candidate 0 = initial mean
    assert torch.allclose(second.cands[0][0], expected)
    assert not torch.allclose(second.cands[0][0], first.cands[0][0])


def test_single_generator_cannot_drive_many_envs():
    with pytest.raises(ValueError, match="one generator per environment"):
        make_solver("cem", **SMALL["cem"]).solve(
            quadratic(targets_for(2)), 2, HP, FA, generators=torch.Generator().manual_seed(0)
        )


def test_generators_are_per_episode_and_solve():
    draws = {
        (e, s): torch.randn(3, generator=make_generator(42, e, s))
        for e in range(3)
        for s in range(3)
    }
    assert torch.equal(draws[(1, 2)], torch.randn(3, generator=make_generator(42, 1, 2)))
    values = [tuple(v.tolist()) for v in draws.values()]
    assert len(set(values)) == len(values)


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_bounds_are_respected(name):
    lo, hi = torch.full((FA,), -0.2), torch.full((FA,), 0.3)
    rec = Recorder(quadratic(targets_for(2) * 3))  # optimum mostly outside the box
    res = make_solver(name, **SMALL[name]).solve(rec, 2, HP, FA, bounds=(lo, hi))
    for cand in rec.cands:
        assert cand.min() >= -0.2 - 1e-6 and cand.max() <= 0.3 + 1e-6
    assert res.plan.min() >= -0.2 - 1e-6 and res.plan.max() <= 0.3 + 1e-6


def test_mppi_std_is_never_updated():
    s = 16
    rec = Recorder(quadratic(targets_for(1)))
    res = make_solver("mppi", samples=s, topk=4, iterations=3).solve(
        rec, 1, HP, FA, generators=torch.Generator().manual_seed(0)
    )
    gen = torch.Generator().manual_seed(0)
    for t in range(3):
        noise = torch.randn(s, HP, FA, generator=gen)
        mean = rec.cands[t][0][0]
        assert torch.allclose(rec.cands[t][0][1:] - mean, noise[1:], atol=1e-6)
    # the mean is the softmax(-(c - min)/T)-weighted mean of the top-k
    costs, cand = rec.costs[-1][0], rec.cands[-1][0]
    top = torch.argsort(costs)[:4]
    w = torch.softmax(-(costs[top] - costs[top].min()) / 0.5, dim=0)
    assert torch.allclose(res.plan[0], (w[:, None, None] * cand[top]).sum(0), atol=1e-6)


def test_icem_carries_best_elites_and_uses_momentum():
    rec = Recorder(quadratic(targets_for(1)))
    make_solver("icem", samples=30, topk=6, iterations=3, keep_elites=4).solve(rec, 1, HP, FA)
    for t in range(2):
        best = rec.cands[t][0][torch.argsort(rec.costs[t][0])[:4]]
        assert torch.equal(rec.cands[t + 1][0][1:5], best)
    # momentum: the next mean is 0.1 * old + 0.9 * elite mean
    elites = rec.cands[0][0][torch.argsort(rec.costs[0][0])[:6]]
    assert torch.allclose(rec.cands[1][0][0], 0.9 * elites.mean(0), atol=1e-6)


def test_colored_noise_is_unit_std_and_low_frequency():
    white = torch.randn(4000, 16, generator=torch.Generator().manual_seed(0))
    red = colored_noise(white, 2.0)
    assert torch.allclose(red.std(dim=-1), torch.ones(4000), atol=1e-4)

    def lag1(x):
        return (x[:, 1:] * x[:, :-1]).mean() / x.pow(2).mean()

    assert lag1(red) > 0.5 and abs(lag1(white)) < 0.05
    assert torch.equal(colored_noise(white[:, :1], 2.0), white[:, :1])  # horizon 1: white


def test_gradient_solver_starts_at_init_and_returns_argmin():
    targets = targets_for(2)
    rec = Recorder(quadratic(targets))
    init = torch.full((2, HP, FA), 0.25)
    res = make_solver("gradient", samples=6, steps=40).solve(rec, 2, HP, FA, init=init)
    assert torch.equal(rec.cands[0][:, 0], init)  # sample 0 = the initial plan
    assert not torch.allclose(rec.cands[0][:, 1], init)
    final_costs, final_cands = rec.costs[-1], rec.cands[-1]  # the re-evaluation
    best = final_costs.argmin(dim=1)
    assert torch.equal(res.plan, final_cands[torch.arange(2), best])
    assert torch.allclose(res.cost, final_costs.min(dim=1).values)
    assert (res.stats["cost_history"][:, -1] < res.stats["cost_history"][:, 0]).all()
    assert torch.allclose(res.plan, targets, atol=0.35)


def test_gradient_solver_needs_a_differentiable_cost():
    def cost(c):
        with torch.no_grad():
            return c.pow(2).sum(dim=(-1, -2))

    with pytest.raises(PlanningError, match="differentiable"):
        make_solver("gradient", samples=2, steps=1).solve(cost, 1, HP, FA)


def test_non_finite_cost_is_a_clear_error():
    def cost(c):
        out = c.pow(2).sum(dim=(-1, -2))
        out[1, 3] = float("nan")
        return out

    with pytest.raises(PlanningError, match=r"non-finite planning cost .*rows \[1\]"):
        make_solver("cem", **SMALL["cem"]).solve(cost, 2, HP, FA)


def test_cost_shape_is_checked():
    with pytest.raises(PlanningError, match="shape"):
        make_solver("cem", **SMALL["cem"]).solve(lambda c: c.sum(dim=(-1, -2, -3)), 2, HP, FA)


def test_make_solver_errors_and_defaults():
    with pytest.raises(ConfigError, match="unknown solver 'nope'"):
        make_solver("nope")
    with pytest.raises(ConfigError, match="no setting"):
        make_solver("cem", lr=0.1)
    with pytest.raises(ConfigError, match="topk"):
        make_solver("cem", samples=10, topk=20)
    with pytest.raises(ConfigError, match="optimizer"):
        make_solver("gradient", optimizer="lbfgs")
    assert make_solver("cem").settings() == {
        "solver": "cem",
        "samples": 300,
        "iterations": 30,
        "topk": 30,
        "init_std": 1.0,
    }
    grad = make_solver("gradient")
    assert (grad.samples, grad.steps, grad.lr, grad.optimizer) == (100, 30, 0.1, "adamw")
    mppi = make_solver("mppi")
    assert (mppi.samples, mppi.iterations, mppi.topk, mppi.temperature) == (300, 30, 30, 0.5)
    icem = make_solver("icem")
    assert (icem.noise_beta, icem.alpha, icem.keep_elites) == (2.0, 0.1, 5)


# -- the one top-k rule ------------------------------------------------------------------------


def test_default_topk_rule():
    assert [default_topk(s) for s in (1, 2, 19, 20, 29, 30, 35, 300, 1000)] == [
        1,
        2,
        2,
        2,
        2,
        3,
        3,
        30,
        100,
    ]
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="samples"):
            default_topk(bad)


def test_cem_and_icem_default_topk_follow_the_rule():
    assert make_solver("cem").topk == 30 and make_solver("icem").topk == 30  # the paper's
    assert make_solver("cem", samples=120).topk == 12
    assert make_solver("cem", samples=120, topk=7).topk == 7  # a given topk wins
    assert make_solver("icem", samples=120).topk == 12
    # iCEM re-inserts keep_elites elites, so it keeps at least that many
    assert make_solver("icem", samples=20).topk == 5
    assert make_solver("icem", samples=20, keep_elites=0).topk == 2
    assert make_solver("mppi", samples=120).topk == 30  # MPPI: topk None = every candidate
    assert make_solver("mppi", topk=None).n_elites == 300
    with pytest.raises(ConfigError, match="samples must be >= 2"):
        make_solver("cem", samples=0)  # the solver's error, not default_topk's


def test_solver_settings_are_unchanged_by_the_refactor():
    assert make_solver("icem").settings() == {
        "solver": "icem",
        "samples": 300,
        "iterations": 30,
        "topk": 30,
        "init_std": 1.0,
        "noise_beta": 2.0,
        "alpha": 0.1,
        "keep_elites": 5,
    }
    assert list(make_solver("mppi").settings()) == [
        "solver",
        "samples",
        "iterations",
        "topk",
        "temperature",
        "init_std",
    ]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(init=torch.zeros(2, 1, FA + 1)), "init must have shape"),
        (dict(init=torch.zeros(2, HP + 1, FA)), "more than the horizon"),
        (dict(generators=[make_generator(0)]), "expected 2 generators"),
    ],
)
def test_solve_arguments_are_checked_once_for_every_solver(kwargs, match):
    for name in sorted(SOLVERS):
        with pytest.raises(ValueError, match=match):
            make_solver(name, **SMALL[name]).solve(quadratic(targets_for(2)), 2, HP, FA, **kwargs)


def test_a_new_sampling_solver_only_states_its_update_rule():
    @dataclass
    class Greedy(SampleSolver):
        """Move the mean to the best candidate; keep the std."""

        name = "greedy"
        init_std: float = 0.5

        def update(self, state, elites, elite_cost):
            return SampleState(elites[:, 0], state.std, elites)  # (n, Hp, fA)

    rec = Recorder(quadratic(targets_for(2)))
    res = Greedy(samples=20, iterations=4, topk=3).solve(rec, 2, HP, FA)
    assert res.plan.shape == (2, HP, FA) and res.stats["cost_history"].shape == (2, 4)
    best = rec.costs[-1].argmin(dim=1)
    assert torch.equal(res.plan, rec.cands[-1][torch.arange(2), best])  # the loop selected it
    spread = rec.cands[1][:, 1:] - rec.cands[1][:, :1]  # candidates minus the mean (candidate 0)
    assert abs(float(spread.std()) - 0.5) < 0.05  # its init_std, kept by update


def test_a_solver_without_search_says_what_to_implement():
    @dataclass
    class Nothing(Solver):
        name = "nothing"

    with pytest.raises(NotImplementedError, match="search"):
        Nothing().solve(quadratic(targets_for(1)), 1, HP, FA)
