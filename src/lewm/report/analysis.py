"""Analysis directories (``probe.json``, ``surprise.json``, PNGs) and the paper's values beside them.

``probe.json`` (issue 11): ``{"env", "features": "projector" | "cls",
"quantities": {NAME: {"linear": {"mse_mean", "mse_std", "pearson_r", "r2"}, "mlp": {...}}}}``,
or both feature kinds nested one level down (``{"projector": {...}, "cls": {...}}`` or
``{"features": {"projector": {...}, ...}}``). ``surprise.json``: ``{"env", "kinds":
{KIND: {"t", "p", "auroc", "relative_accuracy", "pairs"}}}``.

Paper values are LeWM's rows of spec §9.1 (Tables 1, 3, 4: linear | MLP, MSE mean ± std
and Pearson r). For surprise the paper gives findings, not numbers (spec §9.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lewm.report.loading import read_json_object

# (mse_mean, mse_std or None, pearson_r) for the linear and the MLP probe.
Probe = tuple[float, float | None, float]
PAPER_PROBE: dict[str, dict[str, tuple[Probe, Probe]]] = {
    "tworoom": {"agent position": ((0.008, 0.018, 0.996), (0.000, None, 1.000))},
    "pusht": {
        "agent position": ((0.052, 0.149, 0.974), (0.004, 0.056, 0.998)),
        "block position": ((0.029, 0.073, 0.986), (0.001, 0.006, 0.999)),
        "block angle": ((0.187, 0.359, 0.902), (0.021, 0.139, 0.990)),
    },
    "cube": {
        "joint position": ((0.352, 1.173, 0.706), (0.330, 1.157, 0.742)),
        "joint velocity": ((1.021, 0.902, 0.095), (0.818, 0.899, 0.386)),
        "end effector position": ((0.018, 0.025, 0.991), (0.003, 0.004, 0.998)),
        "end effector yaw": ((0.980, 0.295, 0.124), (0.952, 0.369, 0.213)),
        "gripper": ((0.121, 0.111, 0.938), (0.048, 0.079, 0.976)),
        "block position": ((0.007, 0.010, 0.997), (0.002, 0.003, 0.999)),
        "block quaternion": ((1.019, 12.596, 0.087), (0.963, 11.450, 0.224)),
        "block yaw": ((0.996, 0.094, 0.062), (0.973, 0.199, 0.164)),
    },
}
PAPER_SURPRISE = {
    "teleport": "sharp spike, significant (p < 0.01) in all three environments",
    "colour": "weaker response, not significant",
}
_ENV_ALIASES = {
    "ogbench_cube": "cube",
    "ogbench-cube": "cube",
    "push_t": "pusht",
    "two_room": "tworoom",
}
_TOKENS = {
    "pos": ["position"],
    "location": ["position"],
    "loc": ["position"],
    "ee": ["end", "effector"],
    "eef": ["end", "effector"],
    "quat": ["quaternion"],
    "vel": ["velocity"],
    "qpos": ["joint", "position"],
    "qvel": ["joint", "velocity"],
    "color": ["colour"],
}


def canonical(name: str) -> str:
    """A quantity name normalised for matching: ``agent_pos`` -> ``agent position``."""
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    return " ".join(t for w in words for t in _TOKENS.get(w, [w]))


def canonical_env(env: object) -> str:
    e = str(env or "").lower()
    return _ENV_ALIASES.get(e, e)


def paper_probe(env: object, quantity: str, kind: str) -> Probe | None:
    """The paper's LeWM value for (environment, quantity, ``linear`` | ``mlp``), if it has one."""
    row = PAPER_PROBE.get(canonical_env(env), {}).get(canonical(quantity))
    if row is None or kind not in ("linear", "mlp"):
        return None
    return row[0] if kind == "linear" else row[1]


def paper_surprise(kind: str) -> str:
    c = canonical(kind)
    for key, finding in PAPER_SURPRISE.items():
        if key in c:
            return finding
    return "—"


@dataclass
class AnalysisData:
    path: Path
    probe_env: str | None = None
    probes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (features, quantities)
    surprise_env: str | None = None
    surprise: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> statistics
    pngs: list[Path] = field(default_factory=list)
    checkpoint: str | None = None

    @property
    def valid(self) -> bool:
        return bool(self.probes or self.surprise or self.pngs)


def probe_blocks(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(feature kind, quantities) pairs from a probe.json, flat or nested one level."""
    blocks = []
    if isinstance(obj.get("quantities"), dict):
        feats = obj.get("features")
        blocks.append((feats if isinstance(feats, str) else "projector", obj["quantities"]))
    nested = obj.get("features") if isinstance(obj.get("features"), dict) else obj
    for key, value in nested.items():
        if isinstance(value, dict) and isinstance(value.get("quantities"), dict):
            blocks.append((str(key), value["quantities"]))
    return blocks


def load_analysis(path: str | Path, problems: list[str]) -> AnalysisData | None:
    """Read one analysis directory; None (with a problem) when it holds nothing usable."""
    path = Path(path)
    if not path.is_dir():
        problems.append(f"{path}: analysis directory not found")
        return None
    data = AnalysisData(path, pngs=sorted(path.glob("*.png"))[:12])
    if (path / "probe.json").exists():
        obj = read_json_object(path / "probe.json", problems)
        if obj is not None:
            data.probes = probe_blocks(obj)
            data.probe_env = obj.get("env")
            data.checkpoint = obj.get("checkpoint")
            if not data.probes:
                problems.append(f"{path / 'probe.json'}: no 'quantities' table")
    if (path / "surprise.json").exists():
        obj = read_json_object(path / "surprise.json", problems)
        if obj is not None:
            kinds = obj.get("kinds")
            data.surprise = {k: v for k, v in (kinds or {}).items() if isinstance(v, dict)}
            data.surprise_env = obj.get("env")
            data.checkpoint = data.checkpoint or obj.get("checkpoint")
            if not data.surprise:
                problems.append(f"{path / 'surprise.json'}: no 'kinds' table")
    if not data.valid:
        problems.append(f"{path}: no probe.json, surprise.json or PNG to show")
        return None
    return data
