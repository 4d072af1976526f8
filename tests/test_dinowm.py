"""The DINO-WM baseline (spec §10.2) with a tiny random DINOv2: the frozen encoder, the
patch predictor, the planning interface, training, checkpoints and bad encoder folders."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

import lewm  # noqa: E402
from lewm.baselines.dinowm import DinoWM, bench_model  # noqa: E402
from lewm.baselines.dinowm.checkpoint import match_dinov2_keys  # noqa: E402
from lewm.baselines.dinowm.encoder import load_dinov2  # noqa: E402
from lewm.baselines.dinowm.predictor import PatchPredictor  # noqa: E402
from lewm.cli import main  # noqa: E402
from lewm.config import PredictorConfig, preset  # noqa: E402
from lewm.errors import ConfigError  # noqa: E402
from lewm.train import train  # noqa: E402

TINY_DINO = dict(
    hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, patch_size=8,
    image_size=32,
)  # fmt: skip


def save_quietly(model, folder) -> None:
    transformers.utils.logging.disable_progress_bar()
    model.save_pretrained(folder)
    transformers.utils.logging.enable_progress_bar()


@pytest.fixture(scope="session")
def dino_dir(tmp_path_factory):
    """A tiny random DINOv2 (16 wide, patch 8: 16 patches of a 32x32 frame), HF format."""
    folder = tmp_path_factory.mktemp("dinov2")
    torch.manual_seed(0)
    save_quietly(transformers.Dinov2Model(transformers.Dinov2Config(**TINY_DINO)), folder)
    return folder


def dinowm_cfg(dino_dir, steps=20):
    cfg = preset("tiny", objective="dinowm")
    cfg.train.steps = steps
    cfg.model.dinowm.encoder_weights = str(dino_dir)
    return cfg


def tiny_model(dino_dir, seed=0) -> DinoWM:
    from lewm.train_objective import resolve_objective

    cfg = resolve_objective(dinowm_cfg(dino_dir))
    cfg.model.action_dim = 2
    torch.manual_seed(seed)
    return DinoWM(cfg.validate().model, load_dinov2(dino_dir))


def read_metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------- the parts


def test_the_latent_is_the_normalised_patch_tokens(dino_dir):
    model = tiny_model(dino_dir)
    reference = transformers.Dinov2Model.from_pretrained(dino_dir).eval()
    pixels = torch.randn(2, 3, 3, 32, 32)
    z = model.encode(pixels)  # (B, T, N*d)
    assert z.shape == (2, 3, 16 * 16) and model.embed_dim == 256
    want = reference(pixel_values=pixels.flatten(0, 1)).last_hidden_state[:, 1:]  # CLS dropped
    torch.testing.assert_close(z.view(6, 16, 16), want)
    # after the final LayerNorm (affine at its init: weight 1, bias 0): zero mean, unit variance
    torch.testing.assert_close(z.view(6, 16, 16).mean(-1), torch.zeros(6, 16), atol=1e-5, rtol=0)


def test_predictor_is_causal_per_frame():
    cfg = PredictorConfig(num_frames=3, depth=2, heads=2, dim_head=8, mlp_dim=32, dropout=0.0)
    pred = PatchPredictor(dim=12, num_patches=4, cfg=cfg).eval()
    x = torch.randn(2, 3, 4, 12)
    out = pred(x)
    assert out.shape == x.shape
    y = x.clone()
    y[:, 2] += torch.randn(2, 4, 12)  # perturb the last frame: outputs 0 and 1 must not move
    out2 = pred(y)
    torch.testing.assert_close(out2[:, :2], out[:, :2])
    assert not torch.allclose(out2[:, 2], out[:, 2])
    z = x.clone()
    z[:, 0, 1] += torch.randn(2, 12)  # one patch of frame 0 reaches every later token
    assert not torch.allclose(pred(z)[:, 1:], out[:, 1:])
    with pytest.raises(ValueError, match="up to 3 frames"):
        pred(torch.randn(1, 4, 4, 12))


# --------------------------------------------------------------------------- planning


def test_it_satisfies_the_planning_interface_and_plans(dino_dir):
    from lewm.planning import GoalCost, check_planning_model, make_solver

    model = tiny_model(dino_dir).eval()
    check_planning_model(model)
    assert model.history_size == 3 and model.cost_reduction == "mean"
    g = torch.Generator().manual_seed(0)
    ctx, blocks = torch.randn(2, 1, 256, generator=g), torch.randn(2, 5, 10, generator=g)
    traj = model.rollout(ctx, blocks)  # (B, H+Hp, N*d), window 3 sliding over 6 positions
    assert traj.shape == (2, 6, 256) and torch.equal(traj[:, 0], ctx[:, 0])
    manual = [ctx[:, 0]]
    for t in range(5):
        lo = max(0, t + 1 - 3)
        manual.append(model.predict(torch.stack(manual[lo:], 1), blocks[:, lo : t + 1])[:, -1])
    torch.testing.assert_close(traj, torch.stack(manual, 1))
    hist = model.rollout(torch.randn(2, 2, 256), blocks, action_history=torch.randn(2, 1, 10))
    assert hist.shape == (2, 7, 256)
    # one CEM solve through lewm.planning: encode current and goal frames once, plan 5 blocks
    cost = GoalCost(model)
    frames, goal = torch.randn(2, 3, 32, 32, generator=g), torch.randn(2, 3, 32, 32, generator=g)
    context = cost.prepare(frames, goal)
    solver = make_solver("cem", samples=16, iterations=3, topk=4)
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    result = solver.solve(cost.cost_fn(context), 2, 5, 10, generators=gens)
    assert result.plan.shape == (2, 5, 10) and torch.isfinite(result.cost).all()
    zero = cost(context, torch.zeros(2, 1, 5, 10))
    assert (result.cost <= zero[:, 0] + 1e-6).all()  # CEM found no worse than doing nothing


def test_bench_model_has_the_papers_sizes():
    model = bench_model(image_size=224, action_dim=2, seed=0)
    assert (model.num_patches, model.token_dim, model.embed_dim) == (256, 384, 256 * 384)
    assert model.history_size == 3 and model.frameskip == 5 and model.cost_reduction == "mean"
    assert len(model.predictor.layers) == 6 and not model.training
    assert model.parameter_counts()["encoder"] == 22_056_576  # DINOv2 ViT-S/14
    assert all(not p.requires_grad for p in model.encoder.parameters())
    with pytest.raises(ConfigError, match="not a multiple of patch_size 14"):
        bench_model(image_size=100)


# --------------------------------------------------------------------------- training


def test_the_frozen_encoder_gets_no_gradient(dino_dir):
    from lewm.data.clips import ClipBatch
    from lewm.losses import step_generator
    from lewm.train import batch_loss, train_step
    from lewm.train_setup import build_optimizer, build_scheduler

    model = tiny_model(dino_dir).train()
    assert not model.encoder.training  # train() keeps the encoder in inference mode
    cfg = dinowm_cfg(dino_dir)
    cfg.model, cfg.train.schedule_steps = model.cfg, 10
    opt = build_optimizer(model, cfg, torch.device("cpu"))
    trainable = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not trainable & {id(p) for p in model.encoder.parameters()}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    batch = ClipBatch(
        torch.randint(0, 256, (4, 4, 32, 32, 3), dtype=torch.uint8, generator=g),
        torch.randn(4, 4, 10, generator=g),
    )
    loss_fn = batch_loss(model, cfg, torch.device("cpu"), contextlib.nullcontext)
    sched = build_scheduler(opt, cfg)
    for step in range(2):  # the first step has lr 0 (warm-up)
        result = train_step(model, opt, sched, loss_fn, batch, step_generator(0, step), 1.0)
    assert set(result.losses) == {"loss", "pred_loss"}
    assert all(p.grad is None for p in model.encoder.parameters())
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items() if k.startswith("encoder."))
    assert not torch.equal(after["predictor.pos_embedding"], before["predictor.pos_embedding"])


def test_a_tiny_run_trains_and_its_checkpoint_round_trips(tmp_path, synthetic_h5, dino_dir):
    run = tmp_path / "run"
    argv = ["train", "--data", str(synthetic_h5), "--out", str(run), "--preset", "tiny"]
    argv += ["--objective", "dinowm", "--encoder-weights", str(dino_dir), "--steps", "30"]
    assert main([*argv, "--no-progress", "--set", "train.log_every=10"]) == 0
    m = read_metrics(run)
    assert m[-1]["pred_loss"] < 0.8 * m[0]["pred_loss"] and "val_straightness" in m[-1]
    conf = json.loads((run / "config.json").read_text())
    assert conf["loss"]["objective"] == "dinowm" and conf["dinov2"]["model_type"] == "dinov2"
    assert conf["model"]["encoder"]["patch_size"] == 8 and conf["optim"]["weight_decay"] == 0.0
    model = lewm.load(run)
    assert isinstance(model, DinoWM) and model.provenance.config.loss.objective == "dinowm"
    original = load_dinov2(dino_dir)  # the frozen encoder's weights travelled in the checkpoint
    for k, v in original.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[k], v), k
    pixels = torch.randn(1, 2, 3, 32, 32)
    again = lewm.load(run)
    torch.testing.assert_close(again.rollout(again.encode(pixels)[:, :1], torch.ones(1, 2, 10)),
                               model.rollout(model.encode(pixels)[:, :1], torch.ones(1, 2, 10)))  # fmt: skip
    code = main(["info", "--ckpt", str(run), "--json"])
    assert code == 0


def test_resume_rebuilds_the_encoder_from_the_run(tmp_path, synthetic_h5, dino_dir):
    kw = ["train.log_every=2", "train.val_every=4", "train.save_every=4"]
    straight, part = tmp_path / "straight", tmp_path / "part"
    from lewm.config import apply_overrides

    train(apply_overrides(dinowm_cfg(dino_dir, 8), kw), synthetic_h5, straight, progress=False)
    cfg = apply_overrides(dinowm_cfg(dino_dir, 4), [*kw, "train.schedule_steps=8"])
    train(cfg, synthetic_h5, part, progress=False)
    moved = tmp_path / "gone"
    dino_dir.rename(moved)  # a resume does not need the original folder
    try:
        train(dinowm_cfg(dino_dir, 8), synthetic_h5, part, resume=True, progress=False)
    finally:
        moved.rename(dino_dir)
    a, b = lewm.load(straight).state_dict(), lewm.load(part).state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_checkpoints_load_across_transformers_key_namings(dino_dir):
    model = tiny_model(dino_dir)
    state = model.state_dict()
    v5 = any(".attention.q_proj." in k for k in state)
    pairs = [
        ("attention.q_proj.", "attention.attention.query."),
        ("attention.o_proj.", "attention.output.dense."),
    ]
    pairs += [
        ("attention.k_proj.", "attention.attention.key."),
        ("attention.v_proj.", "attention.attention.value."),
    ]
    if not v5:
        pairs = [(b, a) for a, b in pairs]
    other = {}
    for k, v in state.items():
        for a, b in pairs:
            k = k.replace(a, b) if k.startswith("encoder.") else k
        other[k] = v
    assert set(other) != set(state)
    assert match_dinov2_keys(other, set(state)).keys() == state.keys()


# --------------------------------------------------------------------------- bad folders


def vit_dir(tmp_path):
    folder = tmp_path / "vit"
    cfg = transformers.ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32, image_size=32, patch_size=8)  # fmt: skip
    save_quietly(transformers.ViTModel(cfg), folder)
    return folder


def mismatched_dir(tmp_path, dino_dir):
    """A DINOv2 config.json beside a ViT's weights: the architecture check alone passes."""
    folder = vit_dir(tmp_path)
    (folder / "config.json").write_text((dino_dir / "config.json").read_text())
    return folder


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp, dino: tmp / "nowhere", "no such folder"),
        (lambda tmp, dino: vit_dir(tmp), "model_type 'vit', not 'dinov2'"),
        (mismatched_dir, "the weights do not match the DINOv2 of its config.json"),
        (None, "needs its frozen encoder: pass --encoder-weights PATH"),
    ],
)
def test_bad_encoder_folders_are_one_line_and_write_nothing(
    tmp_path, synthetic_h5, dino_dir, capsys, make, message
):
    out = tmp_path / "run"
    argv = ["train", "--data", str(synthetic_h5), "--out", str(out), "--preset", "tiny"]
    argv += ["--objective", "dinowm", "--steps", "2"]
    if make is not None:
        argv += ["--encoder-weights", str(make(tmp_path, dino_dir))]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err
    assert not out.exists()
