from pathlib import Path

import pytest
import torch

from lewm.config import preset
from lewm.model.world_model import LeWM

SPEC_TSV = Path(__file__).parent / "data" / "state_dict_keys_paper.tsv"  # copied from the spec


def paper_model(action_dim=2, device="meta"):
    cfg = preset("paper").model
    cfg.action_dim = action_dim
    with torch.device(device):
        return LeWM(cfg)


def test_paper_parameter_counts_match_spec_table():
    counts = paper_model().parameter_counts()
    assert counts == {
        "encoder": 5_501_376,
        "predictor": 10_791_360,
        "action_encoder": 156_206,
        "projector": 792_768,
        "pred_proj": 792_768,
        "total": 18_034_478,
    }
    assert sum(b.numel() for b in paper_model().buffers()) == 8_194


def test_cube_parameter_count():
    assert paper_model(action_dim=5).parameter_counts()["total"] == 18_034_628


def test_submodule_counts():
    m = paper_model()
    layer = m.encoder.encoder.layer[0]
    assert sum(p.numel() for p in layer.parameters()) == 444_864
    block = m.predictor.transformer.layers[0]
    assert sum(p.numel() for p in block.attn.parameters()) == 787_008
    assert sum(p.numel() for p in block.mlp.parameters()) == 789_056
    assert sum(p.numel() for p in block.adaLN_modulation.parameters()) == 222_336


def test_state_dict_keys_order_and_shapes_match_release(tmp_path):
    sd = paper_model().state_dict()
    assert len(sd) == 303
    rows = [line.rstrip("\n").split("\t") for line in open(SPEC_TSV) if not line.startswith("#")]
    assert [r[0] for r in rows] == list(sd)
    for key, _, shape, _ in rows:
        expect = () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))
        assert tuple(sd[key].shape) == expect, key


def test_shapes(tiny_cfg):
    torch.manual_seed(0)
    m = LeWM(tiny_cfg.model).eval()
    px = torch.randn(3, 4, 3, 32, 32)
    z = m.encode(px)
    assert z.shape == (3, 4, 32)
    a = torch.randn(3, 4, 10)
    assert m.encode_actions(a).shape == (3, 4, 32)
    assert m.predict(z[:, :3], a[:, :3]).shape == (3, 3, 32)
    out = m.rollout(z[:, :1], torch.randn(3, 5, 10))
    assert out.shape == (3, 6, 32)
    with pytest.raises(ValueError, match="window"):
        m.predict(z, a)  # 4 tokens > num_frames 3
    with pytest.raises(ValueError, match="action blocks"):
        m.encode_actions(torch.randn(3, 4, 7))


def _perturb_modulation(m):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "adaLN" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def test_predictor_is_causal(tiny_cfg):
    torch.manual_seed(0)
    m = LeWM(tiny_cfg.model).eval()
    _perturb_modulation(m)
    z, a = torch.randn(2, 3, 32), torch.randn(2, 3, 10)
    base = m.predict(z, a)
    z2, a2 = z.clone(), a.clone()
    z2[:, 2] += 5.0
    a2[:, 2] += 5.0
    out = m.predict(z2, a2)
    torch.testing.assert_close(out[:, :2], base[:, :2])
    assert not torch.allclose(out[:, 2], base[:, 2])


def test_adaln_zero_identity_at_init(tiny_cfg):
    torch.manual_seed(0)
    m = LeWM(tiny_cfg.model).eval()
    z = torch.randn(2, 3, 32)
    c = torch.randn(2, 3, 32)
    out = m.predictor(z, c)
    expected = m.predictor.transformer.norm(z + m.predictor.pos_embedding[:, :3])
    torch.testing.assert_close(out, expected)
    # independent of the actions at init ...
    torch.testing.assert_close(m.predictor(z, torch.randn(2, 3, 32)), out)
    # ... but gradients reach the modulation weights
    m.train()
    m.predictor(z, c).pow(2).sum().backward()
    grad = m.predictor.transformer.layers[0].adaLN_modulation[1].weight.grad
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize("h", [1, 2, 3])
def test_rollout_matches_step_by_step_predict(tiny_cfg, h):
    torch.manual_seed(0)
    m = LeWM(tiny_cfg.model).eval()
    _perturb_modulation(m)
    ctx, cand = torch.randn(4, h, 32), torch.randn(4, 5, 10)
    hist = torch.randn(4, h - 1, 10) if h > 1 else None
    with torch.no_grad():
        out = m.rollout(ctx, cand, hist)
        tokens = list(ctx.unbind(1))
        blocks = cand if hist is None else torch.cat([hist, cand], 1)
        for t in range(5):
            n = h + t
            lo = max(0, n - 3)
            tokens.append(m.predict(torch.stack(tokens[lo:n], 1), blocks[:, lo:n])[:, -1])
    torch.testing.assert_close(out, torch.stack(tokens, 1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[:, :h], ctx)


def test_rollout_requires_history_for_longer_context(tiny_cfg):
    m = LeWM(tiny_cfg.model).eval()
    with pytest.raises(ValueError, match="action_history"):
        m.rollout(torch.randn(2, 2, 32), torch.randn(2, 5, 10))


def test_encode_follows_input_dtype(tiny_cfg):
    m = LeWM(tiny_cfg.model).double().eval()
    z = m.encode(torch.randn(1, 2, 3, 32, 32, dtype=torch.float64))
    assert z.dtype == torch.float64
    out = m.rollout(z[:, :1], torch.randn(1, 2, 10, dtype=torch.float64))
    assert out.dtype == torch.float64


def test_position_embedding_interpolation(tiny_cfg):
    m = LeWM(tiny_cfg.model).eval()
    z = m.encode(torch.randn(1, 1, 3, 48, 48))  # 6x6 grid instead of 4x4
    assert z.shape == (1, 1, 32) and torch.isfinite(z).all()
