"""The goal-conditioned cost: caching, flattening, last-step default, gradients, errors."""

from __future__ import annotations

import pytest
import torch

from lewm.errors import ConfigError
from lewm.planning import GoalCost, PlanningError
from lewm.planning.interface import check_planning_model

D, F, A, W = 3, 2, 2, 3
FA = F * A


class ToyModel(torch.nn.Module):
    """A small nonlinear world model that follows the rollout semantics of spec §6.2.

    encode: per-frame linear map of channel means. predict: the last position of a
    window-dependent map, so the context, the history and every candidate block matter.
    """

    def __init__(self, nan: bool = False):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.history_size = W
        self.enc = torch.nn.Parameter(torch.randn(3, D, generator=g))
        self.act = torch.nn.Parameter(torch.randn(FA, D, generator=g) * 0.5)
        self.mix = torch.nn.Parameter(torch.randn(D, D, generator=g) * 0.3)
        self.nan = nan
        self.encode_calls: list[tuple] = []
        self.rollout_calls: list[tuple] = []

    def encode(self, pixels):  # (B, T, 3, h, w) -> (B, T, D)
        self.encode_calls.append(tuple(pixels.shape))
        return pixels.mean(dim=(-1, -2)) @ self.enc

    def predict(self, emb, act_emb):  # (B, T, D), (B, T, D) -> (B, D): the last position
        return torch.tanh(emb.mean(dim=1) @ self.mix) + emb[:, -1] + act_emb.mean(dim=1)

    def rollout(self, context_emb, candidates, action_history=None):
        self.rollout_calls.append((tuple(candidates.shape), action_history))
        h = context_emb.shape[1]
        blocks = (
            candidates if action_history is None else torch.cat([action_history, candidates], 1)
        )
        e_u = blocks @ self.act  # (B, H-1+Hp, D)
        e = list(context_emb.unbind(1))
        for t in range(candidates.shape[1]):
            n = h + t
            lo = max(0, n - self.history_size)
            e.append(self.predict(torch.stack(e[lo:n], 1), e_u[:, lo:n]))
        out = torch.stack(e, 1)  # (B, H+Hp, D)
        return out * float("nan") if self.nan else out


def pixels(n, t, seed):
    return torch.rand(n, t, 3, 5, 5, generator=torch.Generator().manual_seed(seed))


def test_toy_model_satisfies_protocol():
    check_planning_model(ToyModel())
    with pytest.raises(ConfigError, match="missing"):
        check_planning_model(object())


def test_cost_is_last_step_squared_error_summed_over_d():
    model = ToyModel()
    cost = GoalCost(model)
    ctx = cost.prepare(pixels(2, 1, 0)[:, 0], pixels(2, 1, 1)[:, 0])  # (n, 3, h, w) forms
    cand = torch.randn(2, 7, 4, FA, generator=torch.Generator().manual_seed(2))
    got = cost.cost_fn(ctx)(cand)
    assert got.shape == (2, 7) and not got.requires_grad
    for i in range(2):
        for s in range(7):
            traj = model.rollout(ctx.context_emb[i : i + 1], cand[i, s][None])
            expected = (traj[0, -1] - ctx.goal_emb[i]).pow(2).sum()
            assert torch.allclose(got[i, s], expected, atol=1e-5)
            # and not the all-steps cost: intermediate predictions are not scored
            all_steps = (traj[0, 1:] - ctx.goal_emb[i]).pow(2).sum()
            assert not torch.allclose(got[i, s], all_steps)


def test_all_steps_option_sums_every_predicted_step():
    model = ToyModel()
    cost = GoalCost(model, steps="all")
    hist = torch.randn(2, 1, FA)
    ctx = cost.prepare(pixels(2, 2, 0), pixels(2, 1, 1), hist)
    cand = torch.randn(2, 3, 4, FA)
    got = cost(ctx, cand)
    for i in range(2):
        traj = model.rollout(ctx.context_emb[i : i + 1], cand[i, 1][None], hist[i : i + 1])
        expected = (traj[0, 2:] - ctx.goal_emb[i]).pow(2).sum()  # predictions only
        assert torch.allclose(got[i, 1], expected, atol=1e-5)


def test_encoded_once_per_solve_and_one_flat_rollout_per_call():
    model = ToyModel()
    cost = GoalCost(model)
    hist = torch.randn(2, 2, FA)
    ctx = cost.prepare(pixels(2, 3, 0), pixels(2, 1, 1), hist)
    assert model.encode_calls == [(2, 3, 3, 5, 5), (2, 1, 3, 5, 5)]
    fn = cost.cost_fn(ctx)
    for _ in range(3):
        fn(torch.randn(2, 11, 5, FA))
    assert len(model.encode_calls) == 2, "no re-encoding inside the solver loop"
    assert [c[0] for c in model.rollout_calls] == [(22, 5, FA)] * 3
    # every candidate row gets its own environment's history
    rolled_hist = model.rollout_calls[0][1].reshape(2, 11, 2, FA)
    assert torch.equal(rolled_hist, hist[:, None].expand(2, 11, 2, FA))


def test_history_changes_the_cost():
    model = ToyModel()
    cost = GoalCost(model)
    px, goal = pixels(1, 2, 0), pixels(1, 1, 1)
    cand = torch.randn(1, 4, 3, FA)
    a = cost(cost.prepare(px, goal, torch.zeros(1, 1, FA)), cand)
    b = cost(cost.prepare(px, goal, torch.ones(1, 1, FA)), cand)
    assert not torch.allclose(a, b)


def test_context_is_an_explicit_detached_cache():
    model = ToyModel()
    cost = GoalCost(model)
    px, goal = pixels(3, 1, 0), pixels(3, 1, 1)
    px_before = px.clone()
    ctx = cost.prepare(px, goal)
    assert torch.equal(px, px_before)
    assert not ctx.context_emb.requires_grad and not ctx.goal_emb.requires_grad
    with pytest.raises(AttributeError):
        ctx.goal_emb = None  # frozen
    sub = ctx.select([2])
    assert torch.equal(sub.context_emb, ctx.context_emb[2:3])
    cand = torch.randn(3, 5, 2, FA)
    assert torch.allclose(cost(sub, cand[2:3])[0], cost(ctx, cand)[2], atol=1e-6)


def test_differentiable_cost_reaches_candidates_but_not_the_encoder():
    model = ToyModel()
    cost = GoalCost(model)
    ctx = cost.prepare(pixels(1, 1, 0), pixels(1, 1, 1))
    cand = torch.randn(1, 4, 2, FA, requires_grad=True)
    assert not cost.cost_fn(ctx)(cand).requires_grad  # the default runs under no_grad
    out = cost.cost_fn(ctx, differentiable=True)(cand)
    (grad,) = torch.autograd.grad(out.sum(), cand)
    assert grad.abs().sum() > 0
    out = cost.cost_fn(ctx, differentiable=True)(cand)
    out.sum().backward()
    assert model.enc.grad is None, "encodings are detached: no gradient into the encoder"


def test_model_is_put_in_eval_mode():
    model = ToyModel().train()
    GoalCost(model)
    assert not model.training


def test_non_finite_predictions_raise():
    cost = GoalCost(ToyModel(nan=True))
    ctx = cost.prepare(pixels(2, 1, 0), pixels(2, 1, 1))
    with pytest.raises(PlanningError, match="non-finite planning cost for environment rows"):
        cost(ctx, torch.randn(2, 3, 2, FA))


def test_bad_shapes_and_options():
    cost = GoalCost(ToyModel())
    with pytest.raises(ConfigError, match="steps"):
        GoalCost(ToyModel(), steps="mean")
    with pytest.raises(PlanningError, match="goal"):
        cost.prepare(pixels(2, 1, 0), pixels(3, 1, 1))
    with pytest.raises(PlanningError, match="action_history"):
        cost.prepare(pixels(2, 2, 0), pixels(2, 1, 1), torch.zeros(2, 2, FA))
    ctx = cost.prepare(pixels(2, 1, 0), pixels(2, 1, 1))
    with pytest.raises(PlanningError, match="candidate rows"):
        cost(ctx, torch.randn(3, 2, 2, FA))


class PatchModel(ToyModel):
    """ToyModel with DINO-WM-shaped embeddings (B, T, N=4, D): every patch token is the
    toy embedding scaled by 1..4."""

    def __init__(self, reduction: str | None = None):
        super().__init__()
        if reduction is not None:
            self.cost_reduction = reduction
        self.scale = torch.arange(1.0, 5.0)[:, None]  # (N, 1)

    def encode(self, pixels):  # -> (B, T, N, D)
        return super().encode(pixels)[..., None, :] * self.scale

    def rollout(self, context_emb, candidates, action_history=None):
        flat = super().rollout(context_emb[..., 0, :], candidates, action_history)
        return flat[..., None, :] * self.scale  # (B, H+Hp, N, D)


@pytest.mark.parametrize("reduction", [None, "sum", "mean"])
def test_multi_dimensional_embeddings_are_flattened(reduction):
    model = PatchModel(reduction)
    cost = GoalCost(model)
    ctx = cost.prepare(pixels(2, 1, 0), pixels(2, 1, 1))
    assert ctx.context_emb.shape == (2, 1, 4, D) and ctx.goal_emb.shape == (2, 4, D)
    cand = torch.randn(2, 3, 5, FA, generator=torch.Generator().manual_seed(4))
    got = cost(ctx, cand)
    for i in range(2):
        traj = model.rollout(ctx.context_emb[i : i + 1].expand(3, 1, 4, D), cand[i])  # (3, 6, N, D)
        err = (traj[:, -1] - ctx.goal_emb[i]).pow(2).flatten(1)  # (3, N*D)
        want = err.mean(1) if reduction == "mean" else err.sum(1)
        torch.testing.assert_close(got[i], want, rtol=1e-5, atol=1e-5)


def test_unknown_cost_reduction_is_refused():
    with pytest.raises(ConfigError, match="cost_reduction"):
        GoalCost(PatchModel("max"))


@pytest.mark.parametrize("steps", ["last", "all"])
def test_cost_step_ranks_on_an_earlier_prediction(steps):
    model = ToyModel()
    k = 3
    cost = GoalCost(model, steps=steps, cost_step=k)
    ctx = cost.prepare(pixels(2, 1, 0), pixels(2, 1, 1))
    cand = torch.randn(2, 4, 5, FA, generator=torch.Generator().manual_seed(5))
    got = cost(ctx, cand)
    assert model.rollout_calls[-1][0] == (8, k, FA)  # later blocks are not rolled out
    for i in range(2):
        traj = model.rollout(ctx.context_emb[i : i + 1].expand(4, 1, D), cand[i])  # (4, 6, D)
        scored = traj[:, k : k + 1] if steps == "last" else traj[:, 1 : k + 1]
        want = (scored - ctx.goal_emb[i]).pow(2).sum(dim=(1, 2))
        torch.testing.assert_close(got[i], want, rtol=1e-5, atol=1e-5)
    # the blocks after K cannot change the ranking
    other = cand.clone()
    other[:, :, k:] = 0
    torch.testing.assert_close(cost(ctx, other), got)
    # K = Hp is the default (the last prediction)
    torch.testing.assert_close(
        GoalCost(model, steps=steps, cost_step=5)(ctx, cand),
        GoalCost(model, steps=steps)(ctx, cand),
    )


def test_bad_cost_step():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="cost_step"):
            GoalCost(ToyModel(), cost_step=bad)
    cost = GoalCost(ToyModel(), cost_step=6)
    ctx = cost.prepare(pixels(1, 1, 0), pixels(1, 1, 1))
    with pytest.raises(ConfigError, match=r"1\.\.5"):
        cost(ctx, torch.randn(1, 2, 5, FA))
