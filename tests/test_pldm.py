"""The PLDM baseline (spec §10.1): its loss terms on constructed inputs, its training run,
its inverse-dynamics head, its checkpoints and its bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import lewm
from lewm.cli import main
from lewm.config import PLDMConfig, apply_overrides, preset
from lewm.errors import ConfigError
from lewm.losses_pldm import (
    covariance_penalty,
    inverse_dynamics_loss,
    pldm_loss,
    temporal_covariance,
    temporal_similarity,
    temporal_variance,
    variance_hinge,
)
from lewm.train import train

EPS = 1e-4
TERMS = ("pred_loss", "var_loss", "cov_loss", "time_sim_loss", "time_var_loss", "time_cov_loss")


def hadamard(n: int) -> torch.Tensor:
    h = torch.ones(1, 1)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def decorrelated(b: int = 16, t: int = 4, d: int = 5, scale: float = 1.0) -> torch.Tensor:
    """(B, T, D): per frame, the columns are distinct non-constant Hadamard columns (zero
    mean, mutually orthogonal), scaled: covariance exactly diagonal, variance scale^2 * B/(B-1)."""
    cols = hadamard(b)[:, 1 : d + 1] * scale  # (B, D)
    return cols[:, None].expand(b, t, d).clone()


# --------------------------------------------------------------------------- the terms


def test_variance_hinge_is_zero_for_unit_variance_and_known_below():
    z = decorrelated(scale=1.0)  # var = 16/15 >= 1 per dimension
    assert variance_hinge(z, EPS) == 0.0
    half = decorrelated(scale=0.5)  # var = 0.25 * 16/15
    expected = 1 - np.sqrt(0.25 * 16 / 15 + EPS)
    assert variance_hinge(half, EPS).item() == pytest.approx(expected, rel=1e-6)
    collapsed = torch.zeros(8, 4, 3)
    assert variance_hinge(collapsed, EPS).item() == pytest.approx(1 - np.sqrt(EPS), rel=1e-6)


def test_covariance_is_zero_for_decorrelated_and_var_squared_for_copies():
    assert covariance_penalty(decorrelated()).item() == pytest.approx(0.0, abs=1e-12)
    x = torch.randn(32, 1, generator=torch.Generator().manual_seed(0))
    copies = x[:, None].expand(32, 2, 6)  # every dimension the same: C[i, j] = var for all i, j
    var = x.var().item()
    assert covariance_penalty(copies).item() == pytest.approx(var**2, rel=1e-5)


def test_batch_terms_match_an_independent_numpy_computation():
    z = torch.randn(24, 3, 7, generator=torch.Generator().manual_seed(1)) * 0.7 + 0.2
    zn = z.double().numpy()
    var_ref, cov_ref = [], []
    for t in range(3):
        c = np.cov(zn[:, t], rowvar=False, ddof=1)  # (D, D)
        var_ref.append(np.mean(np.maximum(0, 1 - np.sqrt(np.diag(c) + EPS))))
        off = c - np.diag(np.diag(c))
        cov_ref.append((off**2).sum() / (7 * 6))
    assert variance_hinge(z, EPS).item() == pytest.approx(np.mean(var_ref), rel=1e-5)
    assert covariance_penalty(z).item() == pytest.approx(np.mean(cov_ref), rel=1e-4)
    tcov = [np.cov(zn[b], rowvar=False, ddof=1) for b in range(24)]  # over time, per clip
    tvar = np.mean([np.mean(np.maximum(0, 1 - np.sqrt(np.diag(c) + EPS))) for c in tcov])
    toff = np.mean([((c - np.diag(np.diag(c))) ** 2).sum() / 42 for c in tcov])
    assert temporal_variance(z, EPS).item() == pytest.approx(tvar, rel=1e-5)
    assert temporal_covariance(z).item() == pytest.approx(toff, rel=1e-4)
    sim = np.mean((zn[:, 1:] - zn[:, :-1]) ** 2)
    assert temporal_similarity(z).item() == pytest.approx(sim, rel=1e-5)


def test_temporal_terms_on_constant_and_moving_trajectories():
    g = torch.Generator().manual_seed(2)
    constant = torch.randn(6, 1, 4, generator=g).expand(6, 5, 4)  # (B, T, D), still in time
    assert temporal_similarity(constant) == 0.0
    assert temporal_covariance(constant) == 0.0
    # the variance hinge is the one that fights a still trajectory: maximal there
    assert temporal_variance(constant, EPS).item() == pytest.approx(1 - np.sqrt(EPS), rel=1e-6)
    step = torch.randn(6, 1, 4, generator=g)
    line = step * torch.arange(5.0)[None, :, None]  # z_t = t * v
    assert temporal_similarity(line).item() == pytest.approx(step.pow(2).mean().item(), rel=1e-6)
    # +-2 alternating in time: std over time >= 1, so no variance penalty; opposite signs in
    # two dimensions are perfectly anti-correlated: C = [[v, -v], [-v, v]] -> 2 v^2 / 2
    sign = torch.tensor([1.0, -1.0, 1.0, -1.0])
    wiggle = torch.stack([2 * sign, -2 * sign], dim=-1)[None].expand(3, 4, 2)
    assert temporal_variance(wiggle, EPS) == 0.0
    v = (2 * sign).var().item()
    assert temporal_covariance(wiggle).item() == pytest.approx(v**2, rel=1e-6)


def test_inverse_dynamics_loss_is_the_action_mse():
    a = torch.randn(4, 3, 10, generator=torch.Generator().manual_seed(3))
    assert inverse_dynamics_loss(a, a) == 0.0
    assert inverse_dynamics_loss(a + 0.5, a).item() == pytest.approx(0.25, rel=1e-6)


def test_total_is_the_weighted_sum_and_every_term_is_returned():
    g = torch.Generator().manual_seed(4)
    z, z_pred = torch.randn(8, 4, 6, generator=g), torch.randn(8, 3, 6, generator=g)
    a_pred, a = torch.randn(8, 3, 10, generator=g), torch.randn(8, 3, 10, generator=g)
    cfg = PLDMConfig(alpha=2.0, beta=3.0, gamma=0.5, zeta=0.7, nu=0.3, mu=1.5)
    out = pldm_loss(z, z_pred, cfg, a_pred=a_pred, a_target=a)
    assert set(out) == {"loss", "idm_loss", *TERMS}
    weights = dict(zip(TERMS[1:], (2.0, 3.0, 0.5, 0.7, 0.3), strict=True))
    total = out["pred_loss"] + sum(w * out[k] for k, w in weights.items()) + 1.5 * out["idm_loss"]
    torch.testing.assert_close(out["loss"], total)
    off = pldm_loss(
        z, z_pred, PLDMConfig(**{k: 0.0 for k in "alpha beta gamma zeta nu mu".split()})
    )
    assert "idm_loss" not in off and off["loss"] == off["pred_loss"]
    seam = pldm_loss(z, z_pred, cfg, a_pred=a_pred, a_target=a, reduce=lambda t: t)
    for k in out:  # one process through the reduce seam computes the same numbers
        torch.testing.assert_close(seam[k], out[k], rtol=1e-6, atol=1e-7)


def _pldm_worker(rank: int, world_size: int, init_file: str) -> None:
    """In each of 2 processes: the shard's PLDM loss under a summing reduce is the global
    batch's, value and gradient (x world size, DDP's averaging)."""
    import torch.distributed as dist

    from lewm.distributed import Launch, World

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        world = World(Launch(world_size, rank, 0))
        g = torch.Generator().manual_seed(0)
        z = torch.randn(8, 4, 5, generator=g).requires_grad_()
        z_pred, a_pred, a = (torch.randn(8, 3, k, generator=g) for k in (5, 10, 10))
        cfg = PLDMConfig(nu=0.5, mu=0.5)
        one = pldm_loss(z, z_pred, cfg, a_pred=a_pred, a_target=a)
        (grad_one,) = torch.autograd.grad(one["loss"], z)
        shard = world.shard(8)
        part = z[shard].detach().requires_grad_()
        many = pldm_loss(
            part, z_pred[shard], cfg, a_pred=a_pred[shard], a_target=a[shard], reduce=world.sum
        )
        (grad_many,) = torch.autograd.grad(many["loss"], part)
        for k in one:
            torch.testing.assert_close(many[k], one[k], rtol=1e-5, atol=1e-6, msg=k)
        torch.testing.assert_close(grad_many / world_size, grad_one[shard], rtol=1e-4, atol=1e-6)
    finally:
        dist.destroy_process_group()


def test_two_processes_compute_the_global_batch_loss(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_pldm_worker, args=(2, str(tmp_path / "store")), nprocs=2, join=True)


# --------------------------------------------------------------------------- config and CLI


@pytest.mark.parametrize("name", ["alpha", "beta", "gamma", "zeta", "nu", "mu"])
def test_every_coefficient_is_a_checked_config_key(name):
    cfg = apply_overrides(preset("tiny", objective="pldm"), [f"loss.pldm.{name}=0.5"])
    assert getattr(cfg.loss.pldm, name) == 0.5
    bad = apply_overrides(preset("tiny", objective="pldm"), [f"loss.pldm.{name}=-1"])
    with pytest.raises(ConfigError, match=f"loss.pldm.{name}: must be >= 0"):
        bad.validate()


def test_the_paper_coefficients_are_the_defaults():
    c = preset("paper", objective="pldm").loss.pldm
    assert (c.alpha, c.beta, c.gamma, c.zeta, c.nu, c.mu) == (18.0, 12.0, 0.2, 0.7, 0.0, 0.0)
    same = preset("paper", objective="pldm")
    same.loss = preset("paper").loss  # PLDM trains LeWM's recipe: only the loss differs
    assert same.to_dict() == preset("paper").to_dict()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--objective", "vicreg"], "unknown objective 'vicreg'"),
        (["--objective", "pldm", "--set", "loss.pldm.beta=-2"], "loss.pldm.beta: must be >= 0"),
        (["--set", "loss.objective=jepa"], "loss.objective: 'jepa' is not one of"),
        (["--encoder-weights", "x"], "--encoder-weights is the DINOv2 of --objective dinowm"),
    ],
)
def test_bad_objective_input_is_one_line_and_writes_nothing(
    tmp_path, synthetic_h5, capsys, args, message
):
    out = tmp_path / "run"
    rc = main(["train", "--data", str(synthetic_h5), "--out", str(out), "--preset", "tiny", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and message in err and "\n" not in err
    assert not out.exists()


# --------------------------------------------------------------------------- training


def read_metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def pldm(steps: int, *items: str):
    cfg = preset("tiny", objective="pldm")
    cfg.train.steps = steps
    return apply_overrides(cfg, list(items))


def test_a_tiny_pldm_run_trains_logs_every_term_and_loads_as_lewm(tmp_path, synthetic_h5):
    run = tmp_path / "run"
    cfg = pldm(40, "train.log_every=10", "train.val_every=20")
    train(cfg, synthetic_h5, run, progress=False)
    m = read_metrics(run)
    for key in ("loss", *TERMS, "grad_norm", "z_std"):
        assert key in m[0], key
    assert "sigreg_loss" not in m[0] and "idm_loss" not in m[0]
    assert all(f"val_{k}" in m[1] for k in ("loss", *TERMS, "straightness"))
    assert -1.0 <= m[1]["val_straightness"] <= 1.0
    assert m[-1]["loss"] < 0.8 * m[0]["loss"]
    conf = json.loads((run / "config.json").read_text())
    assert conf["loss"]["objective"] == "pldm" and conf["loss"]["pldm"]["alpha"] == 18.0
    model = lewm.load(run)  # PLDM's model is LeWM's: planning and evaluation work unchanged
    assert type(model).__name__ == "LeWM" and model.provenance.config.loss.objective == "pldm"
    saved = load_file(run / "model.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    assert not (run / "idm_head.safetensors").exists()


def test_the_inverse_dynamics_head_trains_and_resumes_exactly(tmp_path, synthetic_h5):
    from lewm.baselines.pldm import load_idm_head

    kw = ("loss.pldm.mu=1.0", "train.log_every=2", "train.val_every=4", "train.save_every=4")
    straight, part = tmp_path / "straight", tmp_path / "part"
    train(pldm(8, *kw), synthetic_h5, straight, progress=False)
    train(pldm(4, *kw, "train.schedule_steps=8"), synthetic_h5, part, progress=False)
    first = load_idm_head(part)
    train(pldm(8, *kw), synthetic_h5, part, resume=True, progress=False)
    a, b = load_idm_head(straight), load_idm_head(part)
    assert any(
        not torch.equal(x, y) for x, y in zip(first.parameters(), b.parameters(), strict=True)
    )
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name  # the head's weights and Adam state were restored
    ma, mb = read_metrics(straight), read_metrics(part)
    assert "idm_loss" in ma[0] and mb[-1]["idm_loss"] == ma[-1]["idm_loss"]
    assert (
        load_file(straight / "model.safetensors").keys() == lewm.load(straight).state_dict().keys()
    )


def test_resume_refuses_another_objective(tmp_path, synthetic_h5, capsys):
    run = tmp_path / "run"
    argv = ["train", "--data", str(synthetic_h5), "--out", str(run), "--preset", "tiny"]
    assert main([*argv, "--objective", "pldm", "--steps", "2"]) == 0
    capsys.readouterr()
    assert main([*argv, "--resume", "--objective", "lewm", "--steps", "4"]) == 2
    err = capsys.readouterr().err
    assert "loss.objective is 'pldm'" in err and "'lewm' was requested" in err
