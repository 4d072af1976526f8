"""benchmarks/gpu_train.sh, the script that trained checkpoints/pusht-gpu, run end to end on the
CPU at tiny size: it collects, probes the step rate, trains to the steps that fit the budget with
the schedule ending there, and ships every variant."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lewm

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_train.sh"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_gpu_script_fits_the_run_to_its_budget_and_ships_it(tmp_path):
    env = {
        **os.environ,
        "COLLECT": "--env tworoom --policy expert --episodes 8 --image-size 32 --seed 0",
        "PRESET": "tiny",
        "DEVICE": "cpu",
        "WORKERS": "1",
        "THREADS": "1",
        "RESERVE": "5",  # seconds kept for shipping: a tiny model ships in one
        "LEWM": f"{sys.executable} -m lewm",
        "PYTHONPATH": str(ROOT / "src"),
    }
    variants = ["a=optim.lr=1e-3,train.batch_size=4"]
    cmd = ["bash", str(SCRIPT), str(tmp_path / "work"), str(tmp_path / "out"), "30", *variants]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    planned = int(re.search(r"s left: (\d+) steps", proc.stdout).group(1))
    assert f"a: trained {planned} of {planned} steps" in proc.stdout
    assert "stopped at the deadline" not in proc.stdout
    shipped = tmp_path / "out" / "a"
    assert sorted(p.name for p in shipped.iterdir()) == [
        "config.json", "metrics.jsonl", "model.safetensors", "training.json"
    ]  # fmt: skip
    info = json.loads((shipped / "training.json").read_text())
    assert info["steps"] == planned >= 200  # the run trained every step the probe planned
    cfg = json.loads((shipped / "config.json").read_text())
    assert cfg["train"]["schedule_steps"] == planned and cfg["train"]["batch_size"] == 4
    assert cfg["optim"]["lr"] == 1e-3 and cfg["trained_on"]["device"] == "cpu"
    last = json.loads((shipped / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == planned and last["lr"] == 0.0  # the cosine ended where the run did
    assert lewm.load(shipped).provenance.config.model.encoder.image_size == 32
