"""SIGReg against the spec's reference values (§3.2) and its structural properties."""

import math

import numpy as np
import pytest
import torch

from lewm.losses import (
    lewm_loss,
    sigreg,
    sigreg_combine,
    sigreg_directions,
    sigreg_knots,
    sigreg_null_expectation,
    sigreg_partial_sums,
    step_generator,
)


def gauss(seed=0, t=4, n=128, d=192):
    return torch.randn(t, n, d, generator=torch.Generator().manual_seed(seed))


def value(z, seed=1):
    return sigreg(z, generator=torch.Generator().manual_seed(seed)).item()


def test_knot_weights_match_spec():
    s, w = sigreg_knots()
    assert torch.allclose(s, torch.arange(17) * 0.1875)
    expected = [0.1875, 0.36847, 0.34954, 0.32013, 0.28306, 0.24165, 0.19916, 0.15848, 0.12174,
                0.09030, 0.06466, 0.04470, 0.02983, 0.01923, 0.01196, 0.00718, 0.00208]  # fmt: skip
    assert np.allclose(w.numpy(), expected, atol=1e-5)


def test_null_expectation():
    assert sigreg_null_expectation() == pytest.approx(1.053, abs=1e-3)
    # numerical integral of (1 - e^{-s^2}) e^{-s^2/2} on [-3, 3]
    from scipy.integrate import quad

    num, _ = quad(lambda s: (1 - math.exp(-(s**2))) * math.exp(-(s**2) / 2), -3, 3)
    assert sigreg_null_expectation() == pytest.approx(num, rel=1e-9)


@pytest.mark.parametrize("n", [32, 128, 512])
def test_gaussian_input_is_at_the_floor(n):
    assert value(gauss(n=n)) == pytest.approx(1.06, abs=0.1)


def test_reference_values():
    z = gauss()
    assert value(torch.zeros(4, 128, 192)) == pytest.approx(51.5, rel=0.01)
    assert value(0.3 * z) == pytest.approx(36.6, rel=0.05)
    assert value(3 * z) == pytest.approx(67.1, rel=0.05)


def test_shifted_gaussian_row():
    """N(0, I) + 1: the spec lists 48.5 (one draw). The statistic's spread across direction draws is
    large here (the shift along direction a is sum(a), ~N(0, 1)), so compare the mean over draws with the
    analytic expectation and check 48.5 lies inside the draw-to-draw spread."""
    z = gauss()
    draws = np.array([value(z + 1, seed) for seed in range(16)])
    s, w = (x.double().numpy() for x in sigreg_knots())
    rng = np.random.default_rng(0)
    g = rng.standard_normal((192, 20000))
    mu = (g / np.linalg.norm(g, axis=0)).sum(0)  # shift along uniform directions
    bias = 128 * (w * 2 * np.exp(-(s**2)) * (1 - np.cos(np.outer(mu, s)))).sum(1).mean()
    expected = bias + sigreg_null_expectation()
    assert draws.mean() == pytest.approx(expected, rel=0.05)
    assert abs(draws.mean() - 48.5) < 3 * draws.std()


def test_collapse_and_scale_score_high():
    z = gauss()
    base = value(z)
    for bad in (torch.zeros_like(z), 0.3 * z, 3 * z, z + 1, z[:, :1].expand_as(z)):
        assert value(bad) > 10 * base


def test_scipy_epps_pulley_agreement_1d():
    """The per-direction statistic equals N * trapezoid integral of |ECF - phi|^2 w(s) on [-3, 3]."""
    from scipy.integrate import trapezoid

    x = np.random.default_rng(0).standard_normal(200) * 1.3 + 0.2
    z = torch.tensor(x, dtype=torch.float32).view(1, -1, 1)
    stat = sigreg(z, directions=torch.ones(1, 1)).item()
    s = np.linspace(-3, 3, 33)
    ecf = np.exp(1j * np.outer(s, x)).mean(1)
    integrand = np.abs(ecf - np.exp(-(s**2) / 2)) ** 2 * np.exp(-(s**2) / 2)
    assert stat == pytest.approx(200 * trapezoid(integrand, s), rel=1e-4)


def test_fresh_directions_per_call_and_seeded():
    z = gauss()
    g = torch.Generator().manual_seed(3)
    a, b = sigreg(z, generator=g), sigreg(z, generator=g)
    assert a != b  # fresh directions on every call
    assert sigreg(z, generator=step_generator(0, 5)) == sigreg(z, generator=step_generator(0, 5))
    assert sigreg(z, generator=step_generator(0, 5)) != sigreg(z, generator=step_generator(0, 6))


def test_partial_sums_combine_like_one_big_batch():
    """What a multi-device all-reduce would do: summing per-shard sums gives the global statistic."""
    z = gauss(n=256)
    s, w = sigreg_knots()
    dirs = sigreg_directions(192, 256, torch.Generator().manual_seed(0))
    full = sigreg_combine(sigreg_partial_sums(z, dirs, s), s, w)
    a, b = sigreg_partial_sums(z[:, :100], dirs, s), sigreg_partial_sums(z[:, 100:], dirs, s)
    a.cos_sum, a.sin_sum, a.n = a.cos_sum + b.cos_sum, a.sin_sum + b.sin_sum, a.n + b.n
    torch.testing.assert_close(sigreg_combine(a, s, w), full)


def test_fp32_under_autocast():
    z = gauss(n=64).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sigreg(z, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32


def test_loss_terms_and_gradients_reach_target():
    z = torch.randn(8, 4, 16, requires_grad=True)
    pred = torch.randn(8, 3, 16, requires_grad=True)
    out = lewm_loss(
        z, pred, sigreg_weight=0.09, generator=torch.Generator().manual_seed(0), num_projections=32
    )
    assert set(out) == {"loss", "pred_loss", "sigreg_loss"}
    torch.testing.assert_close(out["loss"], out["pred_loss"] + 0.09 * out["sigreg_loss"])
    out["pred_loss"].backward()
    assert z.grad[:, 1:].abs().sum() > 0  # the target is not detached
    assert z.grad[:, 0].abs().sum() == 0


def test_a_world_of_one_process_changes_nothing():
    """The reduce seam with one process (the sum over processes is the identity) gives the
    same statistic and loss terms as without it; the N it carries is the batch's."""
    from lewm.losses import all_reduce_sums

    z = gauss(n=64)
    s, w = sigreg_knots()
    dirs = sigreg_directions(192, 64, torch.Generator().manual_seed(0))
    sums = all_reduce_sums(sigreg_partial_sums(z, dirs, s), lambda t: t)
    assert float(sums.n) == 64
    torch.testing.assert_close(
        sigreg_combine(sums, s, w), sigreg(z, directions=dirs), rtol=0, atol=1e-6
    )
    emb, pred = torch.randn(8, 4, 16), torch.randn(8, 3, 16)
    kw = dict(sigreg_weight=0.09, num_projections=32)
    one = lewm_loss(emb, pred, generator=step_generator(0, 1), **kw)
    seam = lewm_loss(emb, pred, generator=step_generator(0, 1), reduce=lambda t: t, **kw)
    for k in one:
        torch.testing.assert_close(seam[k], one[k], rtol=1e-6, atol=1e-6)


def test_shards_summed_like_an_all_reduce_give_the_global_statistic_and_gradient():
    """Two shards whose sums are added (what the all-reduce does, in one process): the value is
    the whole batch's, and each shard's gradient is the whole batch's gradient on its rows."""
    z = gauss(n=96).requires_grad_()
    s, w = sigreg_knots()
    dirs = sigreg_directions(192, 128, torch.Generator().manual_seed(1))
    whole = sigreg_combine(sigreg_partial_sums(z, dirs, s), s, w)
    (g_whole,) = torch.autograd.grad(whole, z)
    a, b = sigreg_partial_sums(z[:, :40], dirs, s), sigreg_partial_sums(z[:, 40:], dirs, s)
    a.cos_sum, a.sin_sum, a.n = a.cos_sum + b.cos_sum, a.sin_sum + b.sin_sum, a.n + b.n
    split = sigreg_combine(a, s, w)
    (g_split,) = torch.autograd.grad(split, z)
    torch.testing.assert_close(split, whole)
    torch.testing.assert_close(g_split, g_whole)
