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


# -- regression: plans pinned from the solvers before the base-loop refactor (issue 9) --------
# Recorded with the per-solver loops of commit cb8c896; the shared SampleSolver loop must
# reproduce them (same random draws in the same order). Plans are flattened (2, 3, 2).

_PIN_TARGETS_SEED, _PIN_GEN_SEED = 123, 11
_PIN_SOLVERS = {
    "cem": ("cem", dict(samples=12, iterations=3, topk=4)),
    "icem": ("icem", dict(samples=12, iterations=3, topk=4, keep_elites=2)),
    "mppi": ("mppi", dict(samples=12, iterations=3, topk=4)),
    "mppi_all": ("mppi", dict(samples=12, iterations=3, topk=None)),
    "gradient": ("gradient", dict(samples=4, steps=3)),
    "gradient_noisy": ("gradient", dict(samples=4, steps=3, grad_clip=0.5, action_noise=0.05)),
}
_PINNED = {
    ("cem", "plain"): (
        [
            -0.32026201,
            0.27670065,
            -0.88975906,
            -0.17051861,
            -0.81518126,
            0.049986303,
            -0.024266653,
            -0.67096126,
            0.015127592,
            -0.23316246,
            -0.13916411,
            0.040930502,
        ],
        [1.5500383, 2.1118789],
    ),
    ("cem", "warm_bounded"): (
        [
            -0.2414452,
            -0.018525023,
            -0.52521241,
            0.21954376,
            -0.45818216,
            0.010763578,
            -0.50176346,
            -0.29795346,
            -0.14579435,
            -0.32511869,
            -0.11155452,
            -0.14224795,
        ],
        [0.64423007, 1.1785483],
    ),
    ("icem", "plain"): (
        [
            -0.2834141,
            0.31431097,
            -0.27872261,
            0.41242784,
            -0.52978116,
            0.4304418,
            -0.27336913,
            -0.67390615,
            -0.16659668,
            0.16231535,
            0.20949914,
            0.15973562,
        ],
        [0.891114, 1.429895],
    ),
    ("icem", "warm_bounded"): (
        [
            -0.38393554,
            0.049547616,
            -0.51050735,
            0.33213511,
            -0.58208603,
            0.38927791,
            -0.53242964,
            -0.35577703,
            -0.58303916,
            0.30952594,
            0.10862151,
            -0.054805152,
        ],
        [0.24277022, 0.59615588],
    ),
    ("mppi", "plain"): (
        [
            0.0025823668,
            -0.0019859485,
            -0.0072626467,
            0.07387653,
            -0.1459455,
            0.1673366,
            -0.012625076,
            -0.28470758,
            0.10977197,
            -0.19382192,
            -0.16700184,
            0.10750867,
        ],
        [3.1541057, 4.3049293],
    ),
    ("mppi", "warm_bounded"): (
        [
            -0.17091793,
            -0.12594929,
            -0.42851228,
            0.35356933,
            -0.49863315,
            0.40407977,
            -0.45290464,
            -0.34475112,
            -0.15336213,
            -0.33691901,
            -0.14528856,
            -0.030807685,
        ],
        [0.8444863, 1.5966046],
    ),
    ("mppi_all", "plain"): (
        [
            0.0015276344,
            -0.0021541908,
            -0.0070586945,
            0.073583901,
            -0.14511222,
            0.1680575,
            -0.012757774,
            -0.28432462,
            0.10996177,
            -0.19359563,
            -0.16608952,
            0.10837501,
        ],
        [6.1814995, 9.2750454],
    ),
    ("mppi_all", "warm_bounded"): (
        [
            -0.15655006,
            -0.1399423,
            -0.40858597,
            0.33297125,
            -0.47880742,
            0.38208315,
            -0.40896964,
            -0.32000011,
            -0.1022322,
            -0.30470088,
            -0.12969419,
            0.0036367103,
        ],
        [2.1742074, 3.1477001],
    ),
    ("gradient", "plain"): (
        [
            -0.29484683,
            -0.18565732,
            -0.29595661,
            0.2808463,
            -0.29784554,
            0.29666173,
            -0.29742485,
            -0.2976734,
            -0.2969707,
            0.28954613,
            -0.29417622,
            0.28029549,
        ],
        [0.47435814, 0.42523956],
    ),
    ("gradient", "warm_bounded"): (
        [
            -0.50572819,
            0.2009432,
            -0.43410954,
            0.20030044,
            -0.60000002,
            -0.1013592,
            -0.60000002,
            0.19934347,
            -0.60000002,
            0.32337514,
            -0.33906505,
            0.26659495,
        ],
        [0.62232912, 0.96587467],
    ),
    ("gradient_noisy", "plain"): (
        [
            -0.34005967,
            -0.27348647,
            -0.23067683,
            0.30032721,
            -0.051603049,
            0.26249135,
            -0.27647579,
            -0.34208804,
            -0.36651549,
            0.35559928,
            -0.12960447,
            0.23591423,
        ],
        [0.94903696, 0.43083358],
    ),
    ("gradient_noisy", "warm_bounded"): (
        [
            -0.50670695,
            0.25919676,
            -0.45887598,
            0.26831761,
            -0.60000002,
            -0.076183282,
            -0.60000002,
            0.077885017,
            -0.60000002,
            0.22350459,
            -0.38790077,
            0.29023764,
        ],
        [0.61674291, 0.71429086],
    ),
}


@pytest.mark.parametrize("key, variant", sorted(_PINNED))
def test_plans_are_pinned(key, variant):
    n, hp, fa = 2, 3, 2
    targets = torch.rand(n, hp, fa, generator=torch.Generator().manual_seed(_PIN_TARGETS_SEED))
    targets = targets * 2 - 1

    def cost(c):
        d = c - targets[:, None]
        return d.pow(2).sum(dim=(-1, -2)) + 0.1 * torch.sin(3 * c).sum(dim=(-1, -2))

    extra = {}
    if variant == "warm_bounded":
        init = torch.tensor([[[0.5, -0.25]], [[-0.5, 0.75]]])  # (n, 1, fA) warm-start prefix
        extra = dict(init=init, bounds=(torch.tensor([-0.6, -0.4]), torch.tensor([0.7, 0.5])))
    name, settings = _PIN_SOLVERS[key]
    gens = [make_generator(_PIN_GEN_SEED, i, 0) for i in range(n)]
    res = make_solver(name, **settings).solve(cost, n, hp, fa, generators=gens, **extra)
    plan, final_cost = _PINNED[(key, variant)]
    assert torch.allclose(res.plan.flatten(), torch.tensor(plan), rtol=0, atol=1e-6)
    assert torch.allclose(res.cost, torch.tensor(final_cost), rtol=0, atol=1e-6)


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
