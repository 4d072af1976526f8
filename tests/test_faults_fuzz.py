"""Property-based fuzzing (Hypothesis) of HDF5 layouts and ``--set`` values (issue 16).

The property, for every generated input: the command exits 0 with valid output, or
exits 2 with exactly one ``error:`` line, no traceback, and nothing that looks valid
left behind. Bounded example counts keep the file well under a minute.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import typing
from pathlib import Path

import h5py
import numpy as np
from cli_helpers import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lewm.config import Config

# LEWM_FUZZ_EXAMPLES=2000 fuzzes deeper (with fresh random examples each run).
_EXAMPLES = int(os.environ.get("LEWM_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_EXAMPLES or 30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=not _EXAMPLES,  # by default the same examples every run: reproducible
)


def assert_ok_or_one_error(rc: int, err: str) -> None:
    assert "Traceback" not in err, err
    if rc != 0:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert rc == 2 and len(errors) == 1, err


# --------------------------------------------------------------------------- HDF5 layouts


@st.composite
def layouts(draw) -> dict:
    """A description of a (possibly broken) file in or near the reference layout."""
    lengths = draw(st.lists(st.integers(-1, 6), min_size=0, max_size=4))
    return {
        "lengths": lengths,
        "size": draw(st.sampled_from([0, 1, 4])),
        "channels": draw(st.sampled_from([3, 3, 3, 1, 4])),
        "pixel_dtype": draw(st.sampled_from(["uint8", "uint8", "float32", "int16"])),
        "pixel_ndim_delta": draw(st.sampled_from([0, 0, 0, -1, 1])),
        "action_dim": draw(st.integers(0, 3)),
        "action_dtype": draw(st.sampled_from(["float32", "float32", "float64", "int32"])),
        "nan_rows": draw(st.sampled_from(["last", "last", "none", "first", "all"])),
        "row_shift": draw(st.sampled_from([0, 0, 0, -1, 1])),
        "offset_shift": draw(st.sampled_from([0, 0, 0, 1])),
        "ep_len_dtype": draw(st.sampled_from(["int32", "int32", "float64", "int64"])),
        "drop": draw(st.sampled_from([None, None, None, "pixels", "action", "ep_len"])),
        "pixels_as_group": draw(st.booleans()),
        "compression": draw(st.sampled_from([None, "gzip"])),
        "extra_rows": draw(st.sampled_from([None, 0, -1])),
        "meta": draw(st.sampled_from([None, '{"env": "tworoom"}', "[1, 2]", "not json"])),
    }


def write_layout(path: Path, spec: dict) -> None:
    lengths = spec["lengths"]
    n = max(0, sum(lengths))
    shape = [max(0, n + spec["row_shift"]), spec["size"], spec["size"], spec["channels"]]
    if spec["pixel_ndim_delta"] < 0:
        shape = shape[:-1]
    elif spec["pixel_ndim_delta"] > 0:
        shape = [*shape, 1]
    action = np.random.default_rng(0).uniform(-1, 1, (max(0, n), spec["action_dim"]))  # (N, A)
    ends = np.cumsum(lengths) - 1 if lengths else np.zeros(0, int)
    if spec["nan_rows"] == "last":
        action[ends[(ends >= 0) & (ends < n)]] = np.nan
    elif spec["nan_rows"] == "first" and n:
        action[0] = np.nan
    elif spec["nan_rows"] == "all":
        action[:] = np.nan
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) + spec["offset_shift"]
    if spec["action_dtype"] == "int32":
        action = np.nan_to_num(action)  # integers hold no NaN
    action = action.astype(spec["action_dtype"])
    with h5py.File(path, "w") as f:
        columns = {
            "pixels": np.zeros(shape, dtype=spec["pixel_dtype"]),
            "action": action,
            "ep_len": np.asarray(lengths, dtype=spec["ep_len_dtype"]),
            "ep_offset": np.asarray(offsets, dtype=np.int64)[: len(lengths)],
        }
        for name, data in columns.items():
            if name == spec["drop"]:
                continue
            if name == "pixels" and spec["pixels_as_group"]:
                f.create_group("pixels").create_dataset("0", data=data)
                continue
            chunked = spec["compression"] and data.ndim and data.size
            f.create_dataset(name, data=data, compression=spec["compression"] if chunked else None)
        if spec["extra_rows"] is not None:
            f.create_dataset("proprio", data=np.zeros((max(0, n + spec["extra_rows"]), 2)))
        if spec["meta"] is not None:
            f.attrs["lewm_meta"] = spec["meta"]


@FUZZ
@given(spec=layouts())
def test_fuzz_hdf5_layouts_data_info_and_preview(capsys, spec):
    with tempfile.TemporaryDirectory() as tmp:
        path, gif = Path(tmp) / "f.h5", Path(tmp) / "p.gif"
        write_layout(path, spec)
        rc, out, err = run_cli(capsys, "data", "info", path)
        assert_ok_or_one_error(rc, err)
        if rc == 0:
            assert "episodes:" in out
        rc, out, err = run_cli(capsys, "data", "preview", path, "--out", gif)
        assert_ok_or_one_error(rc, err)
        if rc == 0:
            from PIL import Image

            with Image.open(gif) as img:
                assert img.format == "GIF"
        else:
            assert not gif.exists()
        assert sorted(p.name for p in Path(tmp).iterdir()) in (["f.h5"], ["f.h5", "p.gif"])


# --------------------------------------------------------------------------- --set values


def _scalar_keys(obj, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(type(obj))
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += _scalar_keys(value, f"{prefix}{f.name}.")
        elif hints[f.name] is not str:
            keys.append(prefix + f.name)
    return keys


KEYS = _scalar_keys(Config())
VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["0", "1", "-1", "2", "0.5", "1e-9", "1e9", "nan", "inf", "-inf"]),
    st.sampled_from(["true", "false", "yes", "", "abc", "1,2", "[1]", "null", "3.0", "2.5"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@FUZZ
@given(items=st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=3))
def test_fuzz_set_values_info(capsys, items):
    sets = [a for key, value in items for a in ("--set", f"{key}={value}")]
    rc, out, err = run_cli(capsys, "info", "--preset", "tiny", *sets, "--json")
    assert_ok_or_one_error(rc, err)
    if rc == 0:  # valid output: the JSON config holds a config that validates
        config = json.loads(out)["config"]
        sections = ("preset", "profile", "model", "loss", "optim", "train")
        Config.from_dict({k: config[k] for k in sections}).validate()
    else:
        assert out == ""
