"""The README's command block, run through the console script at tiny sizes.

The block under "## Use" is the documentation users copy; this test runs every
``lewm ...`` line of it in order (collect -> train -> resume -> collect -> eval ->
inspect -> report), with sizes shrunk by the rewrites below, so the README cannot
drift from the code. A rewrite that no longer matches fails the test.
"""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEWM = shutil.which("lewm", path=str(Path(sys.executable).parent)) or "lewm"

# (pattern, replacement): full-size arguments -> seconds-sized ones.
SHRINK = [
    (r"--episodes 2000\b", "--episodes 12"),
    (r"--episodes 200\b", "--episodes 10"),  # the probe's 80/10/10 episode split needs 10
    (r"--pairs 50\b", "--pairs 2"),
    (r"--image-size 64\b", "--image-size 32"),
    (r"--workers 2\b", "--workers 1"),
    (r"--preset small\b", "--preset tiny"),
    (r"--steps 2000\b", "--steps 4"),
    (r"--steps 6000\b", "--steps 8"),
    (r"train\.schedule_steps=6000\b", "train.schedule_steps=8"),
    (r"(lewm bench plan) --preset paper\b", r"\1 --preset tiny --samples 8 --iters 1 --repeats 1"),
]
# Appended to a subcommand so it finishes in seconds (its full-size settings stay in the README).
EXTRA = {
    "eval": ["--episodes", "2", "--samples", "8", "--iters", "1", "--budget", "25"],
    "probe": ["--no-mlp", "--split-seeds", "0"],
    "surprise": ["--frames", "8"],
    "policy": ["--steps", "20"],
}


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    use = text.split("\n## Use\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", use, re.S).group(1)
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line.startswith("lewm ")]


def test_readme_block_is_found_and_every_rewrite_applies():
    joined = "\n".join(readme_commands())
    assert len(readme_commands()) >= 10
    for pattern, _ in SHRINK:
        assert re.search(pattern, joined), f"README no longer contains {pattern!r}"


def test_readme_commands_run(tmp_path):
    for line in readme_commands():
        for pattern, repl in SHRINK:
            line = re.sub(pattern, repl, line)
        args = shlex.split(line)[1:]
        args += EXTRA.get(args[0], [])
        if args[0] == "train":
            args.append("--no-progress")
        proc = subprocess.run(
            [LEWM, *args], cwd=tmp_path, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert (tmp_path / "runs" / "tworoom" / "model.safetensors").is_file()
    assert (tmp_path / "eval" / "results.json").is_file()
    assert (tmp_path / "report.html").is_file()
