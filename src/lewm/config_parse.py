"""Reading config values from text and JSON: ``--set key=value`` overrides and ``config.json``.

Every value is converted to its field's declared type (``int``, ``float``, ``bool``, ``str``
or a ``Literal``) or refused with a :class:`~lewm.errors.ConfigError` naming the dotted key;
ranges are checked afterwards by :meth:`lewm.config.Config.validate`. Works on any config
dataclass, so it imports nothing from :mod:`lewm.config`.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Literal

from lewm.errors import ConfigError

__all__ = ["apply_overrides", "check_type", "coerce", "from_dict", "set_path"]


def apply_overrides(cfg: Any, items: list[str]) -> Any:
    """Apply ``key=value`` strings (dotted keys, JSON or bare values) with type checks."""
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        set_path(cfg, key.strip(), raw.strip())
    return cfg


def set_path(cfg: Any, key: str, raw: str) -> None:
    parts = key.split(".")
    obj = cfg
    for i, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(obj)}
        if part not in fields:
            where = ".".join(parts[:i]) or "config"
            raise ConfigError(
                f"unknown key {key!r}: {where} has no field {part!r} (fields: {sorted(fields)})"
            )
        if i < len(parts) - 1:
            obj = getattr(obj, part)
            if not dataclasses.is_dataclass(obj):
                raise ConfigError(
                    f"unknown key {key!r}: {'.'.join(parts[: i + 1])} is not a section"
                )
        else:
            hints = typing.get_type_hints(type(obj))
            setattr(obj, part, coerce(raw, hints[part], key))


def coerce(raw: Any, tp: Any, key: str) -> Any:
    """Convert a string (or JSON value) to ``tp``; raise ConfigError on a mismatch."""
    if dataclasses.is_dataclass(tp):
        raise ConfigError(f"{key} is a section; set its fields, e.g. {key}.<field>=...")
    if typing.get_origin(tp) is Literal:
        allowed = typing.get_args(tp)
        if raw not in allowed:
            raise ConfigError(f"{key}: {raw!r} is not one of {list(allowed)}")
        return raw
    convert = _SCALARS.get(tp)
    if convert is None:
        raise ConfigError(f"{key}: unsupported type {tp}")
    try:
        return convert(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {_SCALAR_NAMES[tp]}, got {raw!r}") from None


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if str(raw).lower() in ("true", "1", "yes"):
        return True
    if str(raw).lower() in ("false", "0", "no"):
        return False
    raise ValueError(raw)


def _to_int(raw: Any) -> int:
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        raise ValueError(raw)
    return int(raw, 10) if isinstance(raw, str) else int(raw)


def _to_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError(raw)
    return float(raw)


_SCALARS = {bool: _to_bool, int: _to_int, float: _to_float, str: str}
_SCALAR_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def from_dict(cls: type, d: Any, prefix: str = "") -> Any:
    """Build the dataclass ``cls`` from a JSON object, converting every value to its type."""
    if not isinstance(d, dict):
        raise ConfigError(f"{prefix or 'config'}: expected an object, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - fields
    if unknown:
        raise ConfigError(f"{prefix or 'config'}: unknown key(s) {sorted(unknown)}")
    kwargs = {}
    for name, value in d.items():
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        kwargs[name] = (
            from_dict(tp, value, key) if dataclasses.is_dataclass(tp) else coerce(value, tp, key)
        )
    return cls(**kwargs)


def check_type(value: Any, tp: Any, key: str) -> None:
    """Refuse a value that is not of the declared type ``tp`` (or a non-finite float)."""
    if typing.get_origin(tp) is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not one of {list(typing.get_args(tp))}")
        return
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
    }.get(tp, lambda v: True)
    if not ok(value):
        raise ConfigError(f"{key}: expected {_SCALAR_NAMES.get(tp, tp)}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: must be a finite number, got {value!r}")
