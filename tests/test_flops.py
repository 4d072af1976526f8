"""The analytic FLOP count of a solve: a hand count for the tiny model, and torch's counter."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from lewm.bench import random_model, reference_rollout
from lewm.model.flops import encode_flops, rollout_flops, solve_flops, token_passes


def test_tiny_rollout_hand_count():
    """tiny: D 32, 2 layers of 2 heads x 16, MLP 64, window 3, pred_proj hidden 64, action
    blocks of 10 -> smoothed 10 -> 64 -> 32. Per candidate, H = 1, Hp = 5 (2 FLOP per MAC):

    action encoder 5 tokens x 2(10*10 + 10*64 + 64*32)         =  27,880
    modulations    5 tokens x 2 layers x 2(32 * 192)           = 122,880
    pred_proj      5 calls x 2(32*64 + 64*32)                  =  40,960
    per layer and output row: out 2(32*32) = 2,048, MLP 2(2 * 32*64) = 8,192;
    q/k/v 2(32*32) = 2,048 each; attention 4 * 32 = 128 per (query, key)
    call 1 (1 token, 1 key: no query)   2 x (2*2,048 + 2,048 + 8,192)       =  28,672
    calls 2, 3 (1 token, 2 and 3 keys)  2 x 2 x (3*2,048 + 2,048 + 8,192)   =  65,536
    calls 4, 5 (window of 3, relabelled): layer 1: k/v x3, q x2 (the first token
      has one key), out + MLP x3 = 16,384 + 30,720; layer 2 (last): k/v x3, q x1,
      out + MLP x1 = 14,336 + 10,240                  2 x 71,680            = 143,360
    linear total                                                            = 429,288
    attention: call 2: 2 x 256; call 3: 2 x 384; calls 4, 5: (256 + 384) + 384 each = 3,328
    """
    cfg = random_model("tiny").cfg
    assert rollout_flops(cfg, 1, 5).to_dict() == {
        "linear": 429_288,
        "attention": 3_328,
        "total": 432_616,
    }
    # the reference: windows of 1, 2, 3, 3, 3 tokens, everything on every token:
    # 12 x (5,576 + 24,576 + 8,192 + 2 layers x (6,144 + 2,048 + 8,192)) = 853,344;
    # attention 2 layers x (128 + 384 + 3 x 768) = 5,632
    assert rollout_flops(cfg, 1, 5, fast=False).to_dict() == {
        "linear": 853_344,
        "attention": 5_632,
        "total": 858_976,
    }
    assert token_passes(1, 5, 3) == 9 and token_passes(1, 5, 3, fast=False) == 12


def test_tiny_encode_and_solve_hand_count():
    """tiny encoder: 32x32 frames, patch 8 -> 16 patches + CLS = 17 tokens, width 32, 2 layers,
    MLP 64; projector 32 -> 64 -> 32.
    patch conv 2 * 16 * 32 * 192 = 196,608; per layer 2*17*32*32*4 + 2*17*32*64*2 = 278,528;
    projector 2*32*64 + 2*64*32 = 8,192 -> linear 761,856; attention 2 x 4*17*17*32 = 73,984."""
    cfg = random_model("tiny").cfg
    assert encode_flops(cfg).to_dict() == {"linear": 761_856, "attention": 73_984, "total": 835_840}
    solve = solve_flops(cfg, samples=300, iterations=30, horizon=5)
    assert solve.total == 2 * 835_840 + 9000 * 432_616


@pytest.mark.parametrize("name", ["tiny", "small"])
@pytest.mark.parametrize("h", [1, 2, 3])
def test_linear_part_matches_torch_flop_counter(name, h):
    m = random_model(name)
    cfg, b = m.cfg, 3
    ctx, cand = torch.randn(b, h, cfg.embed_dim), torch.randn(b, 5, cfg.action_input_dim)
    hist = torch.randn(b, h - 1, cfg.action_input_dim) if h > 1 else None
    for fast, fn in ((True, m.rollout), (False, lambda *a: reference_rollout(m, *a))):
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            fn(ctx, cand, hist)
        counts = counter.get_flop_counts()["Global"]
        linear = sum(v for op, v in counts.items() if "scaled_dot_product" not in str(op))
        assert linear == rollout_flops(cfg, h, 5, fast).linear * b


def test_paper_ratio():
    """Per candidate the fast rollout does 63 % of the reference's work (spec §6.7 setting)."""
    cfg = random_model("paper").cfg
    fast, ref = rollout_flops(cfg, 1, 5), rollout_flops(cfg, 1, 5, fast=False)
    assert fast.total == 177_180_648 and ref.total == 281_483_616
    assert ref.total / fast.total == pytest.approx(1.589, abs=1e-3)
