"""The one-command demo, at smoke-test size, through the console script."""

import json
import shutil
import subprocess
import sys
from pathlib import Path


def test_quick_demo_writes_everything(tmp_path):
    lewm = shutil.which("lewm", path=str(Path(sys.executable).parent)) or "lewm"
    out = tmp_path / "demo"
    proc = subprocess.run(
        [lewm, "demo", "--quick", "--out", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    for key in (
        "success_rate",
        "success_rate_std",
        "per_seed",
        "random_success_rate",
        "episodes",
        "plan_seconds_mean",
        "solver",
        "checkpoint",
        "demo",
    ):
        assert key in results
    assert results["held_out"] is True
    assert set(results["demo"]) >= {
        "collect_seconds",
        "train_seconds",
        "eval_seconds",
        "total_seconds",
    }
    assert (out / "training_curve.png").stat().st_size > 1000
    assert (out / "run" / "model.safetensors").exists()
    assert any((out / "videos").glob("*.gif"))
    assert "random-policy floor" in proc.stdout
    again = subprocess.run(
        [lewm, "demo", "--quick", "--out", str(out)], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 2 and "already holds" in again.stderr
