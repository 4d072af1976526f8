"""The checkpoints shipped in ``checkpoints/`` (issue 10): they load, match their config and their
committed evaluation, and plan.

``SHIPPED`` lists what the repository ships; a folder missing or extra fails, so the table in
``RESULTS.md`` and this list cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import lewm
from lewm.planning import GoalCost, make_generator, make_solver

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "checkpoints"
# name -> (environment, preset, image size, trainable parameters)
SHIPPED = {
    "tworoom": ("tworoom", "small", 64, 5_918_126),
    "tworoom-pldm": ("tworoom", "small", 64, 5_918_126),  # the PLDM baseline, same recipe
    "pusht": ("pusht", "small", 64, 5_816_750),  # patch 8: a smaller patch embedding
    "pusht-gpu": ("pusht", "small", 64, 5_816_750),  # the same model, trained longer on a GPU
    "pusht-pldm": ("pusht", "small", 64, 5_816_750),  # the PLDM baseline, the pusht recipe
    "reacher": ("reacher", "small", 64, 5_918_126),
    "cube": ("cube", "small", 64, 5_918_276),  # 25-d action blocks (5-d actions x frameskip 5)
    "cube-2000ep": ("cube", "small", 64, 5_918_276),  # the cube recipe now: 4x the data
    "cube-patch8": ("cube", "small", 64, 5_816_900),  # patch 8: the cube covers more of a patch
}


def test_the_shipped_folders_are_the_listed_ones():
    assert sorted(p.name for p in CHECKPOINTS.iterdir() if p.is_dir()) == sorted(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_checkpoint_loads_and_plans_one_step(name):
    env, preset, size, params = SHIPPED[name]
    folder = CHECKPOINTS / name
    assert (folder / "model.safetensors").stat().st_size <= 15e6
    model = lewm.load(folder)
    cfg = model.provenance.config
    assert (cfg.preset, cfg.model.encoder.image_size, model.provenance.env) == (preset, size, env)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == params
    g = torch.Generator().manual_seed(0)
    frame, goal = (torch.randn(1, 1, 3, size, size, generator=g) for _ in range(2))
    cost = GoalCost(model)
    ctx = cost.prepare(frame, goal)
    fa = model.cfg.action_input_dim
    res = make_solver("cem", samples=16, iterations=2, topk=4).solve(
        cost.cost_fn(ctx), 1, 5, fa, generators=[make_generator(0, 0, 0)]
    )
    assert res.plan.shape == (1, 5, fa) and torch.isfinite(res.plan).all()


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_committed_evaluation_is_of_these_weights_and_portable(name):
    folder = CHECKPOINTS / name
    text = (folder / "results.json").read_text()
    res = json.loads(text)
    assert res["held_out"] is True and res["seeds"] == [42, 43, 44]
    assert res["episodes_per_seed"] == 50 and len(res["episodes"]) == 150
    assert res["command"][:3] == ["lewm", "eval", "--ckpt"] or "eval" in res["command"]
    weights = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert weights in res["files"].values()
    for machine_path in ("/work/", "/tmp/", "/root/", "/home/"):
        assert machine_path not in text


# checkpoints with an amortised policy
POLICIES = ("cube", "cube-2000ep", "cube-patch8", "pusht", "pusht-gpu", "reacher", "tworoom")
POLICY_EVALS = {"policy": "policy", "policy-cem": "policy-init"}  # subfolder -> mode
# the same policies' rows with other planning settings: (checkpoint, subfolder) -> mode, context
POLICY_VARIANTS = {("pusht-gpu", "policy-cem-context3-history"): ("policy-init", 3)}


def test_the_shipped_policies_are_the_listed_ones():
    found = {p.parent.parent.name for p in CHECKPOINTS.glob("*/policy/policy.json")}
    assert found == set(POLICIES)


POLICY_ROWS = sorted(
    [(name, sub, mode, 1) for name in POLICIES for sub, mode in POLICY_EVALS.items()]
    + [(name, sub, mode, context) for (name, sub), (mode, context) in POLICY_VARIANTS.items()]
)


def test_the_policy_evaluations_are_the_listed_ones():
    found = {
        (p.parent.parent.name, p.parent.name)
        for p in CHECKPOINTS.glob("*/*/results.json")
        if json.loads(p.read_text()).get("policy") is not None
    }
    assert found == {(name, sub) for name, sub, _, _ in POLICY_ROWS}


@pytest.mark.parametrize("name, sub, mode, context", POLICY_ROWS)
def test_the_shipped_policy_evaluations_are_of_these_files(name, sub, mode, context):
    """``checkpoints/NAME/{policy,policy-cem,...}``: the amortised policy's rows in RESULTS.md."""
    res = json.loads((CHECKPOINTS / name / sub / "results.json").read_text())
    assert res["held_out"] is True and len(res["episodes"]) == 150
    assert res["policy"]["mode"] == mode and res["mpc"]["context"] == context
    policy = CHECKPOINTS / name / "policy"
    for file in ("policy.json", "policy.safetensors"):
        digest = hashlib.sha256((policy / file).read_bytes()).hexdigest()
        assert res["policy"]["files"][f"checkpoints/{name}/policy/{file}"] == digest
    weights = hashlib.sha256((CHECKPOINTS / name / "model.safetensors").read_bytes())
    assert res["weights_sha256"] == weights.hexdigest()


SOLVER_EVALS = {  # other planners' rows in RESULTS.md: solver, samples, iterations, ranking
    # step, context frames, first context from the dataset's past
    ("tworoom", "icem"): ("icem", 100, 10, None, 1, False),
    ("reacher", "icem"): ("icem", 150, 15, None, 1, False),
    ("reacher", "step4"): ("cem", 300, 30, 4, 1, False),
    ("reacher", "icem-step4"): ("icem", 100, 10, 4, 1, False),
    ("reacher", "mppi-step4"): ("mppi", 150, 15, 4, 1, False),
    ("reacher", "step4-context3"): ("cem", 300, 30, 4, 3, False),
    ("reacher", "step4-context3-history"): ("cem", 300, 30, 4, 3, True),
    ("reacher", "cem100x10-step4-context3"): ("cem", 100, 10, 4, 3, False),
    ("reacher", "cem100x10-step4-context3-history"): ("cem", 100, 10, 4, 3, True),
    ("pusht-gpu", "context3-history"): ("cem", 300, 30, None, 3, True),
    ("cube", "icem"): ("icem", 150, 15, None, 1, False),
    ("cube", "context3-history"): ("cem", 300, 10, None, 3, True),
}


def test_the_solver_evaluations_are_the_listed_ones():
    found = {
        (p.parent.parent.name, p.parent.name)
        for p in CHECKPOINTS.glob("*/*/results.json")
        if json.loads(p.read_text()).get("policy") is None
    }
    assert found == set(SOLVER_EVALS)


@pytest.mark.parametrize("name, sub", sorted(SOLVER_EVALS))
def test_the_solver_evaluations_are_of_these_weights_with_their_solver(name, sub):
    res = json.loads((CHECKPOINTS / name / sub / "results.json").read_text())
    assert res["held_out"] is True and res["seeds"] == [42, 43, 44] and len(res["episodes"]) == 150
    solver = res["solver"]
    mpc = res["mpc"]
    setting = (solver["solver"], solver["samples"], solver["iterations"], mpc["cost_step"])
    setting += (mpc["context"], mpc.get("dataset_history", False))
    assert setting == SOLVER_EVALS[name, sub]
    assert res["command"][-2:] == ["--out", f"checkpoints/{name}/{sub}"]
    weights = hashlib.sha256((CHECKPOINTS / name / "model.safetensors").read_bytes())
    assert res["weights_sha256"] == weights.hexdigest()
