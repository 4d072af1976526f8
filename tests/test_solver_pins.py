"""Solver plans pinned bit-for-bit (to 1e-6) across refactors of the shared sampling loop."""

from __future__ import annotations

import pytest
import torch

from lewm.planning.solvers import make_generator, make_solver

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
