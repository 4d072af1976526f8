"""The fast planning rollout gives the straightforward rollout's predictions and plans.

Random models with non-zero AdaLN layers (an untrained predictor ignores its actions),
every window length W and every history size H (up to past the window): float64 to
rounding (1e-12), float32 to float tolerance; CEM plans the same; gradients the same.
"""

from __future__ import annotations

import pytest
import torch

from lewm.bench import _ReferenceModel, reference_rollout
from lewm.config import preset
from lewm.model.fast_rollout import rollout_schedule
from lewm.model.world_model import LeWM
from lewm.planning import GoalCost, make_generator, make_solver

FA = 10  # frameskip 5 x action_dim 2


def model_for(window: int, dtype=torch.float64, heads: int = 2, seed: int = 0) -> LeWM:
    cfg = preset("tiny").model
    cfg.action_dim = 2
    cfg.predictor.num_frames = window
    cfg.predictor.heads = heads
    torch.manual_seed(seed)
    m = LeWM(cfg).to(dtype).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "adaLN" in name:  # zero at init: make every block act, and depend on actions
                p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.3)
        m.pred_proj.net[1].running_mean.normal_(0, 0.5, generator=g)
    return m


def inputs(h: int, hp: int, dtype, seed: int = 0, batch: int = 5):
    g = torch.Generator().manual_seed(seed)
    ctx = torch.randn(batch, h, 32, generator=g, dtype=dtype)
    cand = torch.randn(batch, hp, FA, generator=g, dtype=dtype)
    hist = torch.randn(batch, h - 1, FA, generator=g, dtype=dtype) if h > 1 else None
    return ctx, cand, hist


@pytest.mark.parametrize("window", [1, 2, 3, 4])
def test_float64_predictions_equal_the_reference(window):
    m = model_for(window)
    for h in range(1, window + 2):  # window + 1: a context longer than the window
        for hp in (1, 2, 5):
            ctx, cand, hist = inputs(h, hp, torch.float64, seed=h * 10 + hp)
            with torch.no_grad():
                fast = m.rollout(ctx, cand, hist)
                ref = reference_rollout(m, ctx, cand, hist)
            assert fast.shape == (5, h + hp, 32)
            torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)
            assert torch.equal(fast[:, :h], ctx)  # the context comes back unchanged


@pytest.mark.parametrize("window", [1, 3])
def test_float32_predictions_within_float_tolerance(window):
    m = model_for(window, torch.float32, heads=4)
    for h in range(1, window + 1):
        ctx, cand, hist = inputs(h, 5, torch.float32, seed=h)
        with torch.no_grad():
            fast, ref = m.rollout(ctx, cand, hist), reference_rollout(m, ctx, cand, hist)
        torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)


def cem_plan(model, dtype, h: int):
    """A CEM solve of 2 environments with ``h`` context frames through ``model``."""
    g = torch.Generator().manual_seed(3)
    frames = torch.randn(2, h, 3, 32, 32, generator=g, dtype=dtype)
    goal = torch.randn(2, 3, 32, 32, generator=g, dtype=dtype)
    hist = torch.randn(2, h - 1, FA, generator=g) if h > 1 else None
    cost = GoalCost(model)
    with torch.no_grad():
        ctx = cost.prepare(frames, goal, hist)
    solver = make_solver("cem", samples=48, iterations=4, topk=6)
    gens = [make_generator(0, i, 0) for i in range(2)]
    return solver.solve(cost.cost_fn(ctx), 2, 5, FA, generators=gens).plan


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("h", [1, 3])
def test_cem_plans_equal_the_reference_rollout(dtype, tol, h):
    m = model_for(3, dtype)
    fast, ref = cem_plan(m, dtype, h), cem_plan(_ReferenceModel(m), dtype, h)
    torch.testing.assert_close(fast, ref, rtol=tol, atol=tol)


def test_gradients_equal_the_reference():
    """The gradient solver differentiates through the rollout: the same gradients."""
    m = model_for(3)
    ctx, cand, hist = inputs(2, 5, torch.float64)
    grads = []
    for fn in (m.rollout, lambda c, x, y: reference_rollout(m, c, x, y)):
        x = cand.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fn(ctx, x, hist)[:, -1].pow(2).sum(), x)
        grads.append(g)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-12)


def test_schedule_reuses_keys_while_the_window_grows():
    # paper: H = 1, Hp = 5, W = 3 -> 1 + 1 + 1 + 3 + 3 = 9 token passes instead of 12
    assert rollout_schedule(1, 5, 3) == [(0, 1, 0), (1, 2, 0), (2, 3, 0), (1, 4, 1), (2, 5, 2)]
    assert rollout_schedule(3, 2, 3) == [(0, 3, 0), (1, 4, 1)]
    assert rollout_schedule(2, 3, 4) == [(0, 2, 0), (2, 3, 0), (3, 4, 0)]


def test_train_mode_runs_the_cached_path_with_dropout():
    """In train mode the rollout keeps dropout (the cached path); eval mode is deterministic."""
    m = model_for(3, torch.float32)
    m.train()
    ctx, cand, _ = inputs(1, 5, torch.float32, batch=8)
    with torch.no_grad():
        a, b = m.rollout(ctx, cand), m.rollout(ctx, cand)
    assert not torch.equal(a, b)  # dropout 0.1 in the predictor
    m.eval()
    with torch.no_grad():
        assert torch.equal(m.rollout(ctx, cand), m.rollout(ctx, cand))


def test_compiled_rollout_equals_the_fast_one_and_leaves_gradients_to_the_eager_path():
    """LeWM.compile_rollout: torch.compile with frozen weights, for calls without gradients."""
    from torch._dynamo.utils import counters

    from lewm.model.fast_rollout import fast_rollout

    m = model_for(3, torch.float32)
    ctx, cand, hist = inputs(2, 5, torch.float32)
    with torch.no_grad():
        eager = fast_rollout(m, ctx, cand, hist)
    m.compile_rollout()
    with torch.no_grad():
        compiled = m.rollout(ctx, cand, hist)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # frozen: the weights are graph constants (what lets inductor pack them)
        m.pred_proj.net[-1].weight.mul_(2.0)
        assert torch.equal(m.rollout(ctx, cand, hist), compiled)
        assert not torch.allclose(fast_rollout(m, ctx, cand, hist), eager)
        m.pred_proj.net[-1].weight.div_(2.0)
    graphs = counters["stats"]["unique_graphs"]
    with torch.no_grad():  # the batch shrinks as episodes finish: not one graph per size
        for batch in (3, 2, 5):
            c, a = ctx.repeat(batch, 1, 1), cand.repeat(batch, 1, 1)
            h = hist.repeat(batch, 1, 1)
            torch.testing.assert_close(
                m.rollout(c, a, h), fast_rollout(m, c, a, h), rtol=1e-5, atol=1e-5
            )
    # at most one: dynamo remembers per function that the batch was dynamic (an earlier test's)
    assert counters["stats"]["unique_graphs"] <= graphs + 1
    cand = cand.clone().requires_grad_(True)  # the gradient solver's call: the eager path
    out = m.rollout(ctx, cand, hist)
    assert torch.equal(out.detach(), fast_rollout(m, ctx, cand, hist).detach())
    out[:, -1].sum().backward()
    assert cand.grad is not None and cand.grad.abs().sum() > 0
