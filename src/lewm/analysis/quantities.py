"""Physical quantities to probe, per environment, and where each lives in a dataset file.

The table follows spec §9.1 (Reacher, which the paper does not probe, adds its joint
angles and velocities). Each quantity lists the columns it can be read from, first
match wins, so the same name works on our files and on the authors'
(``privileged/block_0_pos`` is stored as ``privileged_block_0_pos``, OFFICIAL_FORMAT §6).
A ``--quantities`` entry that is not in the table may name any numeric column, whole
or sliced: ``state`` or ``state[2:4]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lewm.errors import ConfigError, DatasetError

Source = tuple[str, int, int]  # (column, first dim, end dim); end -1 = to the last dim


@dataclass(frozen=True)
class Quantity:
    """One probed quantity: a name, candidate sources, whether it is an angle (radians)."""

    name: str
    sources: tuple[Source, ...]
    angle: bool = False


def _q(name: str, *sources: Source, angle: bool = False) -> Quantity:
    return Quantity(name, tuple(sources), angle)


_ALL = -1
QUANTITIES: dict[str, tuple[Quantity, ...]] = {
    "tworoom": (_q("agent_position", ("pos_agent", 0, 2), ("proprio", 0, 2), ("state", 0, 2)),),
    "pusht": (
        _q("agent_position", ("state", 0, 2), ("pos_agent", 0, 2)),
        _q("block_position", ("state", 2, 4), ("block_pose", 0, 2)),
        _q("block_angle", ("state", 4, 5), angle=True),
    ),
    "cube": (
        _q("joint_position", ("proprio_joint_pos", 0, _ALL)),
        _q("joint_velocity", ("proprio_joint_vel", 0, _ALL)),
        _q("end_effector_position", ("proprio_effector_pos", 0, _ALL)),
        _q("end_effector_yaw", ("proprio_effector_yaw", 0, _ALL), angle=True),
        _q("gripper", ("proprio_gripper_opening", 0, _ALL)),
        _q("block_position", ("privileged_block_0_pos", 0, _ALL)),
        _q("block_quaternion", ("privileged_block_0_quat", 0, _ALL)),
        _q("block_yaw", ("privileged_block_0_yaw", 0, _ALL), angle=True),
    ),
    "reacher": (
        _q("joint_angles", ("qpos", 0, 2), angle=True),
        _q("joint_velocities", ("qvel", 0, 2)),
    ),
    "synthetic-dot": (_q("agent_position", ("proprio", 0, 2)),),  # lewm.data.synthetic
}
_SLICE = re.compile(r"^(?P<col>[^\[\]]+?)(\[(?P<lo>\d*):(?P<hi>\d*)\])?$")


def detect_env(columns: Mapping[str, object], recorded: str | None) -> str | None:
    """The environment a file comes from: its recorded name, else a guess from its columns."""
    if recorded:
        return str(recorded)
    if "privileged_block_0_pos" in columns:
        return "cube"
    if "block_pose" in columns or "n_contacts" in columns:
        return "pusht"
    if "qpos" in columns and "finger_pos" in columns:
        return "reacher"
    if "pos_agent" in columns or "distance_to_target" in columns:
        return "tworoom"
    return None


def resolve(env: str | None, names: Sequence[str] | None, columns: Mapping) -> list[Quantity]:
    """The quantities to probe: ``names`` (table names of ``env`` or column specs) or the table.

    Raises:
        ConfigError: no names and an environment without a table; a malformed column spec.
        DatasetError: a quantity whose columns the file does not have.
    """
    table = {q.name: q for q in QUANTITIES.get(env or "", ())}
    if not names:
        if not table:
            raise ConfigError(
                f"no probe quantities are defined for environment {env!r}; name columns with "
                f"--quantities (e.g. --quantities state[0:2]); known environments: "
                f"{sorted(QUANTITIES)}"
            )
        names = list(table)
    out = [table.get(n) or _column_quantity(n, env, table) for n in names]
    for q in out:
        source_for(q, columns)  # every column must exist before any work
    return out


def _column_quantity(spec: str, env: str | None, table: Mapping[str, Quantity]) -> Quantity:
    m = _SLICE.match(spec.strip())
    if not m:
        known = f"; known for {env!r}: {sorted(table)}" if table else ""
        raise ConfigError(
            f"--quantities: {spec!r} is neither a quantity name nor COLUMN[a:b]{known}"
        )
    lo = int(m["lo"]) if m["lo"] else 0
    hi = int(m["hi"]) if m["hi"] else _ALL
    if hi != _ALL and hi <= lo:
        raise ConfigError(f"--quantities: {spec!r} selects no dimension")
    return Quantity(spec.strip(), ((m["col"], lo, hi),))


def source_for(q: Quantity, columns: Mapping[str, tuple]) -> Source:
    """The first of ``q``'s sources the file has (``columns``: name -> (shape, dtype))."""
    for col, lo, hi in q.sources:
        if col not in columns:
            continue
        shape = tuple(columns[col][0])
        width = 1 if len(shape) == 1 else int(np.prod(shape[1:]))
        end = width if hi == _ALL else hi
        if len(shape) > 2 or end > width:
            raise DatasetError(
                f"quantity {q.name!r}: column {col!r} has shape {shape}, cannot take dims "
                f"{lo}:{end}"
            )
        return (col, lo, end)
    wanted = " or ".join(repr(c) for c, _, _ in q.sources)
    raise DatasetError(f"quantity {q.name!r} needs column {wanted}; the file has {sorted(columns)}")


def read_targets(f, q: Quantity, columns: Mapping, rows: np.ndarray) -> np.ndarray:
    """The quantity's values at ``rows`` (sorted file rows) -> float64 (N, k)."""
    col, lo, hi = source_for(q, columns)
    raw = np.asarray(f[col][()])
    if raw.dtype.kind not in "fiub":
        raise DatasetError(f"quantity {q.name!r}: column {col!r} is not numeric ({raw.dtype})")
    values = raw.reshape(len(raw), -1)[rows, lo:hi].astype(np.float64)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).any(axis=1).sum())
        raise DatasetError(f"quantity {q.name!r}: column {col!r} has {bad} non-finite row(s)")
    return values


def cos_sin(angles: np.ndarray) -> np.ndarray:
    """Angles (N, k) -> (N, 2k): cos of each, then sin of each."""
    return np.concatenate([np.cos(angles), np.sin(angles)], axis=1)
