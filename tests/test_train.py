"""The training loop: learning, metrics, resume equivalence and input checks."""

import json

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lewm.config import apply_overrides, preset
from lewm.errors import ConfigError, DatasetError, LewmError
from lewm.train import lr_factor, train


def tiny(steps=20, **overrides):
    cfg = preset("tiny")
    cfg.train.steps = steps
    return apply_overrides(cfg, [f"{k}={v}" for k, v in overrides.items()])


def read_metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_lr_schedule():
    assert lr_factor(0, 10, 100) == 0.0  # the very first update uses lr 0 (spec §4.4)
    assert lr_factor(5, 10, 100) == 0.5
    assert lr_factor(10, 10, 100) == 1.0
    assert lr_factor(55, 10, 100) == pytest.approx(0.5)
    assert lr_factor(100, 10, 100) == pytest.approx(0.0, abs=1e-12)


def test_loss_decreases_and_run_dir_is_complete(tmp_path, synthetic_h5):
    run = tmp_path / "run"
    cfg = tiny(steps=60, **{"train.log_every": 10, "train.val_every": 30})
    result = train(cfg, synthetic_h5, run, progress=False)
    assert result.step == 60
    m = read_metrics(run)
    for key in (
        "step",
        "loss",
        "pred_loss",
        "sigreg_loss",
        "lr",
        "steps_per_s",
        "z_std",
        "z_eff_rank",
        "grad_norm",
    ):
        assert key in m[0]
    assert "val_loss" in m[2] and "val_pred_loss" in m[-1]
    assert m[-1]["pred_loss"] < 0.5 * m[0]["pred_loss"]
    assert m[-1]["loss"] < m[0]["loss"]
    conf = json.loads((run / "config.json").read_text())
    assert conf["model"]["action_dim"] == 2 and conf["data"]["image_size"] == 32
    assert conf["action_normalizer"]["ddof"] == 1 and len(conf["action_normalizer"]["mean"]) == 2
    assert conf["profile"] == "clean" and conf["step"] == 60
    split = json.loads((run / "split.json").read_text())
    assert not set(split["train_episodes"]) & set(split["val_episodes"])
    assert len(load_file(run / "model.safetensors")) == len(
        torch.load(run / "train_state.pt", weights_only=True)["model"]
    )


def test_resume_gives_the_same_continuation(tmp_path, synthetic_h5):
    kw = {"train.save_every": 6, "train.log_every": 3, "train.val_every": 6}
    straight = tmp_path / "straight"
    train(tiny(steps=12, **kw), synthetic_h5, straight, progress=False)
    a = load_file(straight / "model.safetensors")
    part2 = tmp_path / "part2"
    cfg = tiny(steps=12, **kw)
    cfg.train.steps = 6  # stop at step 6 with the 12-step schedule, as a crash would
    cfg.train.schedule_steps = 12
    train(cfg, synthetic_h5, part2, progress=False)
    train(tiny(steps=12, **kw), synthetic_h5, part2, resume=True, progress=False)
    b = load_file(part2 / "model.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ma, mb = read_metrics(straight), read_metrics(part2)
    assert [r["step"] for r in mb] == [r["step"] for r in ma]
    assert mb[-1]["loss"] == ma[-1]["loss"]


def test_existing_run_dir_needs_resume(tmp_path, synthetic_h5):
    run = tmp_path / "run"
    train(tiny(steps=2), synthetic_h5, run, progress=False)
    with pytest.raises(LewmError, match="--resume"):
        train(tiny(steps=2), synthetic_h5, run, progress=False)
    with pytest.raises(LewmError, match="nothing to resume"):
        train(tiny(steps=2), synthetic_h5, tmp_path / "empty", resume=True, progress=False)


def test_image_size_mismatch(tmp_path, synthetic_h5):
    cfg = tiny(**{"model.encoder.image_size": 64})
    with pytest.raises(DatasetError, match="frames are 32x32, the model expects 64x64"):
        train(cfg, synthetic_h5, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_nan_action_in_the_middle(tmp_path, synthetic_h5):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(synthetic_h5.read_bytes())
    with h5py.File(bad, "a") as f:
        f["action"][7] = [np.nan, 0.0]
    with pytest.raises(DatasetError, match="non-terminal row 7"):
        train(tiny(), bad, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_schedule_shorter_than_run(tmp_path, synthetic_h5):
    cfg = tiny(steps=10, **{"train.schedule_steps": 5})
    with pytest.raises(ConfigError, match="schedule_steps"):
        train(cfg, synthetic_h5, tmp_path / "run", progress=False)


def test_reference_profile_records_itself(tmp_path, synthetic_h5):
    cfg = preset("tiny", "reference")
    cfg.train.steps = 2
    train(cfg, synthetic_h5, tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["profile"] == "reference"


def test_epoch_budget_is_converted_to_steps(tmp_path, synthetic_h5):
    cfg = tiny(steps=0, **{"train.epochs": 0.5, "train.schedule_epochs": 2})
    result = train(cfg, synthetic_h5, tmp_path / "run", progress=False)
    conf = json.loads((tmp_path / "run" / "config.json").read_text())
    bpe = conf["data"]["batches_per_epoch"]
    assert result.step == conf["train"]["steps"] == int(np.ceil(0.5 * bpe))
    assert conf["train"]["schedule_steps"] == 2 * bpe
