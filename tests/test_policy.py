"""The amortised goal-conditioned policy: hindsight pairs, a fit that finds a known right
action, the policy folder and its world-model check, and `lewm eval --policy` on the
protocol's own pairs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lewm.policy import PolicyTrainConfig, fit
from lewm.policy.samples import Anchors, hindsight_pairs

LEWM = shutil.which("lewm", path=str(Path(sys.executable).parent)) or "lewm"


def point_world(episodes=40, length=30, d=8, width=4, seed=0):
    """An embedding-space world z' = z + B a with random actions: the right block to reach
    a goal one step ahead is known, a = pinv(B) (g - z)."""
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(d, width, generator=g)
    z, eps, steps, target = [], [], [], []
    for e in range(episodes):
        pos = torch.randn(d, generator=g)
        for t in range(length):
            a = torch.randn(width, generator=g)
            z.append(pos)
            target.append(a if t < length - 1 else torch.full((width,), float("nan")))
            eps.append(e)
            steps.append(t)
            pos = pos + b @ a
    anchors = Anchors(torch.stack(z), np.array(eps), np.array(steps), torch.stack(target)[:, None])
    return anchors, b


def test_hindsight_pairs_stay_in_the_episode_and_need_a_target():
    anchors, _ = point_world(episodes=3, length=5)
    pairs = hindsight_pairs(anchors, max_ahead=2)
    i, j = pairs[:, 0], pairs[:, 1]
    assert (anchors.episode[i] == anchors.episode[j]).all()
    assert set((anchors.step[j] - anchors.step[i]).tolist()) == {1, 2}
    assert torch.isfinite(anchors.target[i]).all()  # the last step has no action
    assert len(pairs) == 3 * (4 + 3)  # per episode: 4 one-ahead and 3 two-ahead pairs


def test_fit_finds_the_known_action_and_reaches_the_goal():
    anchors, b = point_world()
    pairs = hindsight_pairs(anchors, max_ahead=1)
    cfg = PolicyTrainConfig(blocks=1, max_ahead=1, hidden=64, steps=600, lr=3e-3, seed=0)
    policy, metrics = fit(anchors.z, anchors.target, pairs, pairs[:50], cfg)
    g = torch.Generator().manual_seed(1)
    z0 = torch.randn(200, 8, generator=g)
    a_true = torch.randn(200, 4, generator=g)
    goal = z0 + a_true @ b.T
    with torch.no_grad():
        a = policy(z0, goal)[:, 0]  # (200, 4)
    before = (goal - z0).norm(dim=1)
    after = (z0 + a @ b.T - goal).norm(dim=1)
    assert (after / before).median() < 0.1, (after / before).median()
    assert metrics["train_loss"] < 0.05 and metrics["train_pairs"] == len(pairs)
    again, _ = fit(anchors.z, anchors.target, pairs, pairs[:50], cfg)  # seeded: repeatable
    with torch.no_grad():
        assert torch.equal(again(z0, goal), policy(z0, goal))


def test_cli_defaults_are_the_config_defaults():
    from lewm.cli.policy import _OPTIONS

    defaults = PolicyTrainConfig()
    for _, dest, kind, default, _ in _OPTIONS:
        assert getattr(defaults, dest) == default and isinstance(default, kind), dest


def test_bad_training_settings():
    from lewm.errors import ConfigError

    for bad in ({"steps": 0}, {"blocks": 0}, {"lr": 0.0}, {"val_fraction": 1.0}):
        with pytest.raises(ConfigError):
            PolicyTrainConfig(**bad)


# --------------------------------------------------------------------------- end to end


def lewm(*args, cwd=None, check=True):
    proc = subprocess.run(
        [LEWM, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"lewm {args} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_run import make_tiny_run

    root = tmp_path_factory.mktemp("policy")
    run, data = make_tiny_run(root)
    out = root / "pol"
    lewm("policy", "train", "--ckpt", run, "--data", data, "--out", out, "--steps", "30",
         "--hidden", "32", "--device", "cpu")  # fmt: skip
    return run, data, out


EVAL = ("--env", "tworoom", "--episodes", "2", "--seeds", "42,43", "--device", "cpu")


def test_policy_folder(trained):
    run, data, out = trained
    meta = json.loads((out / "policy.json").read_text())
    assert meta["format"] == "lewm-policy" and (out / "policy.safetensors").is_file()
    split = json.loads((run / "split.json").read_text())
    # trained on the run's training file: its validation episodes (lewm eval's) are left out
    assert meta["data"]["episodes_left_out"] == sorted(split["val_episodes"])
    assert not set(meta["data"]["episodes_used"]) & set(split["val_episodes"])
    assert meta["net"]["blocks"] == 5 and meta["net"]["block_width"] == 10
    assert "model.safetensors" in meta["world_model"]["weights_sha256"]


def test_policy_eval_uses_the_protocols_pairs(trained, tmp_path):
    run, data, pol = trained
    lewm("eval", "--ckpt", run, "--data", data, *EVAL, "--policy", pol, "--out", tmp_path / "p")
    lewm("eval", "--ckpt", run, "--data", data, *EVAL, "--samples", "8", "--iters", "1",
         "--out", tmp_path / "c")  # fmt: skip
    lewm("eval", "--ckpt", run, "--data", data, *EVAL, "--samples", "8", "--iters", "1",
         "--policy", pol, "--policy-init", "--out", tmp_path / "h")  # fmt: skip
    res = {k: json.loads((tmp_path / k / "results.json").read_text()) for k in "pch"}
    pairs = [[(e["seed"], e["start_row"]) for e in res[k]["episodes"]] for k in "pch"]
    assert pairs[0] == pairs[1] == pairs[2]  # same pairs and seeds as CEM
    assert res["p"]["solver"] == {"solver": "initial"} and res["p"]["policy"]["mode"] == "policy"
    assert res["h"]["solver"]["solver"] == "cem" and res["h"]["policy"]["mode"] == "policy-init"
    assert res["c"]["policy"] is None
    assert res["p"]["decision_ms_mean"] == pytest.approx(1000 * res["p"]["plan_seconds_mean"])
    assert res["p"]["solves"] >= 4 and res["c"]["solves"] >= 4  # a solve per pair and seed
    # the random floor, the restored starts: the same protocol
    for key in ("random_success_rate", "already_solved_fraction"):
        assert res["p"][key] == res["c"][key]
    assert not any("trained on episodes" in w for w in res["p"]["warnings"])


def test_bad_input_is_one_error_line(trained, tmp_path):
    from safetensors.torch import load_file, save_file

    run, data, pol = trained
    other = tmp_path / "other"
    shutil.copytree(run, other)
    state = load_file(str(other / "model.safetensors"))
    state["pred_proj.net.0.bias"] += 1.0
    save_file(state, str(other / "model.safetensors"))
    cases = [
        (("--ckpt", other, "--policy", pol), "another world model"),
        (("--ckpt", run, "--policy", tmp_path), "not a policy folder"),
        (("--ckpt", run, "--policy-init"), "needs --policy"),
        (("--ckpt", run, "--samples", "0"), "samples must be"),
        (("--ckpt", run, "--iters", "0"), "iterations"),
        (("--ckpt", run, "--solver-set", "steps=3"), "has no setting"),
        (("--ckpt", run, "--cost-step", "9"), "cost_step"),
    ]
    for args, message in cases:
        out = tmp_path / "bad"
        proc = lewm("eval", *args, "--data", data, *EVAL, "--out", out, check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and lines[-1].startswith("error: "), (args, proc.stderr)
        assert message in lines[-1], (message, lines[-1])
        assert not (out / "results.json").exists()
    proc = lewm("policy", "train", "--ckpt", run, "--data", data, "--out", data, check=False)
    assert proc.returncode == 2 and "error:" in proc.stderr
