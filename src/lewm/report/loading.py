"""Reading a training run directory for the report, tolerating damage.

Nothing here raises on a bad file: each problem becomes a sentence in
``problems`` (shown on the page) and whatever is valid is kept. A truncated
``metrics.jsonl`` keeps its valid records and names the bad line numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class MetricsLog:
    """The valid records of ``metrics.jsonl`` (numeric values only) and what was wrong."""

    path: Path
    records: list[dict[str, float]] = field(default_factory=list)
    bad_lines: list[tuple[int, str]] = field(default_factory=list)  # (1-based line, reason)
    missing: bool = False

    def keys(self) -> list[str]:
        """Every numeric key, in order of first appearance."""
        seen: dict[str, None] = {}
        for r in self.records:
            seen.update(dict.fromkeys(r))
        return list(seen)

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(steps, values) of the records that carry ``key``."""
        rows = [r for r in self.records if key in r]
        return [r["step"] for r in rows], [r[key] for r in rows]


@dataclass
class RunData:
    path: Path
    config: dict[str, Any] | None
    metrics: MetricsLog
    params: int | None
    problems: list[str]  # sentences naming the file, shown on the page

    @property
    def valid(self) -> bool:
        return self.config is not None or bool(self.metrics.records)

    def weights_sha256(self) -> str | None:
        """sha256 of ``model.safetensors`` (None if absent); computed on demand."""
        weights = self.path / WEIGHTS_FILE
        if not weights.is_file():
            return None
        h = hashlib.sha256()
        with weights.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()


def read_json_object(path: Path, problems: list[str]) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None with a problem recorded."""
    if not path.is_file():
        problems.append(f"{path}: not found")
        return None
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{path}: unreadable JSON ({exc})")
        return None
    if not isinstance(obj, dict):
        problems.append(f"{path}: expected a JSON object, found {type(obj).__name__}")
        return None
    return obj


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_metrics(text: str, path: Path) -> MetricsLog:
    """Valid records of a metrics.jsonl text; each bad line is named with its number."""
    log = MetricsLog(path)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            log.bad_lines.append((lineno, f"not valid JSON ({exc.msg}; truncated?)"))
            continue
        if not isinstance(rec, dict) or not _is_number(rec.get("step")):
            log.bad_lines.append((lineno, "not a record with a numeric 'step'"))
            continue
        log.records.append({k: float(v) for k, v in rec.items() if _is_number(v)})
    return log


def read_metrics(path: Path, problems: list[str]) -> MetricsLog:
    if not path.is_file():
        problems.append(f"{path}: not found; no training curves")
        return MetricsLog(path, missing=True)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        problems.append(f"{path}: unreadable ({exc})")
        return MetricsLog(path, missing=True)
    log = parse_metrics(text, path)
    for lineno, reason in log.bad_lines:
        problems.append(f"{path}: line {lineno} skipped: {reason}")
    if not log.records:
        problems.append(f"{path}: no valid record")
    return log


def parameter_count(config: dict[str, Any]) -> int | None:
    """Trainable parameters of the model the config describes (built on the meta device)."""
    try:
        import torch

        from lewm.checkpoint import config_from_metadata
        from lewm.checkpoint.ours import model_from_metadata

        cfg = config_from_metadata(config)
        with torch.device("meta"):  # shapes only: no memory, instant at any size
            model = model_from_metadata(config, cfg, None, Path("config.json"))  # the objective's
            return sum(p.numel() for p in model.parameters() if p.requires_grad)
    except Exception:  # noqa: BLE001 - a config we cannot build still gets a report
        return None


def load_run(run_dir: str | Path) -> RunData:
    """Read ``config.json`` and ``metrics.jsonl`` of a run; never raises on bad content."""
    path = Path(run_dir)
    problems: list[str] = []
    if not path.is_dir():
        problems.append(f"{path}: run directory not found")
        return RunData(path, None, MetricsLog(path / METRICS_FILE, missing=True), None, problems)
    config = read_json_object(path / CONFIG_FILE, problems)
    metrics = read_metrics(path / METRICS_FILE, problems)
    params = parameter_count(config) if config is not None else None
    if config is not None and params is None:
        problems.append(f"{path / CONFIG_FILE}: cannot rebuild the model; parameter count unknown")
    return RunData(path, config, metrics, params, problems)


def training_seconds(run: RunData, recorded: float | None = None) -> tuple[float | None, str]:
    """Training time and where it comes from.

    Order: the last ``elapsed_seconds`` of the metrics (cumulative, recorded by
    training); ``recorded`` (e.g. the demo's ``train_seconds``); an estimate summing
    each log interval's steps / ``steps_per_s``; else nothing.
    """
    elapsed = [r["elapsed_seconds"] for r in run.metrics.records if "elapsed_seconds" in r]
    if elapsed and math.isfinite(elapsed[-1]):
        return elapsed[-1], "recorded in metrics.jsonl"
    if recorded is not None:
        return recorded, "recorded by the demo"
    total, prev = 0.0, 0.0
    for r in run.metrics.records:
        rate = r.get("steps_per_s")
        if rate is None or not math.isfinite(rate) or rate <= 0:
            return None, "not recorded"
        total += max(0.0, r["step"] - prev) / rate
        prev = r["step"]
    if not run.metrics.records:
        return None, "not recorded"
    return total, "estimated: sum of log-interval steps / steps_per_s (excludes validation)"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"
