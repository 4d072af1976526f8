"""Fault injection, bad files: every malformed HDF5 file and checkpoint ends in one
``error:`` line and exit 2 (issue 16, groups 8 and 9), and nothing that looks valid is left.
Bad values and output pipes: ``test_faults_values.py``.

Commands run in-process through :func:`lewm.cli.main` (the same error boundary as the
console script, much faster).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from cli_helpers import (
    assert_one_error,
    eval_args,
    no_eval_output,
    run_cli,
)

# --------------------------------------------------------------------------- files


def _edit(f: h5py.File, name: str, data) -> None:
    del f[name]
    f.create_dataset(name, data=data)


def _pixels_group(f):
    del f["pixels"]
    f.create_group("pixels").create_dataset("0", data=np.zeros((2, 2)))


def _zero_episodes(f):
    for name in list(f):
        shape = (0, *f[name].shape[1:])
        dtype = f[name].dtype
        del f[name]
        f.create_dataset(name, shape=shape, dtype=dtype)


def _actions_n0(f):
    _edit(f, "action", np.zeros((f["action"].shape[0], 0), np.float32))


def _float_ep_len(f):
    _edit(f, "ep_len", f["ep_len"][()].astype(np.float64) + 0.5)


def _newer_format(f):
    f.attrs["lewm_format_version"] = 999


def _corrupt_chunks(path: Path) -> None:
    """Overwrite the middle of the first compressed pixel chunk with noise."""
    with h5py.File(path, "r") as f:
        info = f["pixels"].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    start, size = info.byte_offset + 16, info.size - 32
    data[start : start + size] = np.random.default_rng(0).bytes(size)
    path.write_bytes(bytes(data))


H5_EDITS: dict[str, tuple[Callable, str]] = {  # name -> (edit, expected in the error line)
    "pixels_group": (_pixels_group, "'pixels' is an HDF5 group"),
    "zero_episodes": (_zero_episodes, "no episodes"),
    "actions_n0": (_actions_n0, "no action dimension"),
    "float_ep_len": (_float_ep_len, "must hold integers"),
    "newer_format": (_newer_format, "format version 999"),
}
H5_CLASSES = [*H5_EDITS, "corrupt_chunks", "not_hdf5", "empty_file"]


@pytest.fixture(scope="module")
def bad_h5(fault_root, good_h5) -> dict[str, Path]:
    out = {}
    for name in H5_CLASSES:
        path = fault_root / f"{name}.h5"
        shutil.copy(good_h5, path)
        if name in H5_EDITS:
            with h5py.File(path, "r+") as f:
                H5_EDITS[name][0](f)
        elif name == "corrupt_chunks":
            _corrupt_chunks(path)
        elif name == "not_hdf5":
            path.write_text("episode,action\n0,1\n")
        else:
            path.write_bytes(b"")
        out[name] = path
    return out


def _h5_expected(name: str) -> str:
    if name in H5_EDITS:
        return H5_EDITS[name][1]
    return {"corrupt_chunks": "damaged", "not_hdf5": "not a readable HDF5 file"}.get(
        name, "not a readable HDF5 file"
    )


# --------------------------------------------------------------------------- checkpoints


def _weights(fn):
    return lambda d: (d / "model.safetensors").write_bytes(
        fn((d / "model.safetensors").read_bytes())
    )


def _config(fn):
    def edit(d):
        meta = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps(fn(meta)))

    return edit


def _norm(**changes):
    return _config(lambda m: {**m, "action_normalizer": {**m["action_normalizer"], **changes}})


def _authors(fn):
    def edit(d):
        from lewm.checkpoint import export_reference
        from lewm.checkpoint.ours import load_ours

        model = load_ours(d, "cpu")
        for f in d.iterdir():
            f.unlink()
        export_reference(model, d)
        rc = json.loads((d / "config.json").read_text())
        fn(rc)
        (d / "config.json").write_text(json.dumps(rc))

    return edit


def _pickle_payload(d):
    _authors(lambda rc: None)(d)
    torch.save({"weights": _Payload()}, d / "weights.pt")


class _Payload:
    """Unpickling this would call print: the classic pickle attack stand-in."""

    def __reduce__(self):
        return (print, ("pwned",))


CKPT_CLASSES: dict[str, tuple[Callable, str]] = {  # name -> (edit, expected in the error line)
    "weights_empty": (_weights(lambda b: b""), "too short"),
    "weights_truncated": (_weights(lambda b: b[: len(b) // 2]), "safetensors"),
    "weights_text": (_weights(lambda b: b"just some text, not tensors\n"), "not a safetensors"),
    "weights_absurd_header": (
        _weights(lambda b: (2**62).to_bytes(8, "little") + b[8:]),
        "header claims",
    ),
    "config_null": (_config(lambda m: None), "got null"),
    "config_list": (_config(lambda m: [1, 2]), "got list"),
    "config_null_section": (_config(lambda m: {**m, "model": None}), "model: expected an object"),
    "config_typed_section": (_config(lambda m: {**m, "optim": "fast"}), "optim"),
    "config_bad_value": (
        _config(lambda m: {**m, "optim": {**m["optim"], "beta1": 2}}),
        "optim.beta1",
    ),
    "format_version_newer": (_config(lambda m: {**m, "format_version": 999}), "version 999"),
    "action_std_zero": (_norm(std=[0.0, 1.0]), "std must be finite and > 0"),
    "action_stats_length": (_norm(mean=[0.0] * 3, std=[1.0] * 3), "3 dimension(s)"),
    "action_stats_null": (_config(lambda m: {**m, "action_normalizer": None}), "action stat"),
    "authors_negative_image_size": (
        _authors(lambda rc: rc["encoder"].update(image_size=-32)),
        "image_size",
    ),
    "authors_fractional_num_frames": (
        _authors(lambda rc: rc["predictor"].update(num_frames=2.5)),
        "num_frames must be an integer",
    ),
    "authors_null_block": (_authors(lambda rc: rc.update(encoder=None)), "'encoder' must be"),
    "pickle_payload": (_pickle_payload, "lewm refused it because"),
}


@pytest.fixture(scope="module")
def bad_ckpt(fault_root, good_ckpt) -> dict[str, Path]:
    out = {}
    for name, (edit, _) in CKPT_CLASSES.items():
        folder = fault_root / f"ckpt_{name}"
        shutil.copytree(good_ckpt, folder)
        edit(folder)
        out[name] = folder
    return out


# --------------------------------------------------------------------------- HDF5 classes


@pytest.mark.parametrize("name", H5_CLASSES)
def test_malformed_h5_data_info(capsys, bad_h5, name):
    rc, out, err = run_cli(capsys, "data", "info", bad_h5[name])
    assert_one_error(rc, err, contains=_h5_expected(name))


@pytest.mark.parametrize("name", H5_CLASSES)
def test_malformed_h5_train(capsys, bad_h5, tmp_path, name):
    out = tmp_path / "run"
    rc, _, err = run_cli(
        capsys, "train", "--data", bad_h5[name], "--preset", "tiny", "--out", out,
        "--device", "cpu", "--no-progress",
    )  # fmt: skip
    assert_one_error(rc, err)
    assert not (out / "model.safetensors").exists() and not (out / "config.json").exists()


@pytest.mark.parametrize("name", H5_CLASSES)
def test_malformed_h5_eval(capsys, bad_h5, good_ckpt, tmp_path, name):
    out = tmp_path / "eval"
    rc, _, err = run_cli(capsys, *eval_args(good_ckpt, bad_h5[name], out))
    assert_one_error(rc, err)
    no_eval_output(out)


def test_data_info_reads_a_sample_of_chunks(bad_h5, good_h5):
    """Damage anywhere in the sampled chunks is found by `data info` (it decompresses them)."""
    from lewm.data.hdf5 import check_chunks, open_h5

    with open_h5(good_h5) as f:
        assert check_chunks(f, good_h5, 64) >= f["pixels"].id.get_num_chunks()


# --------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("name", CKPT_CLASSES)
def test_malformed_checkpoint_info(capsys, bad_ckpt, name):
    rc, out, err = run_cli(capsys, "info", "--ckpt", bad_ckpt[name], "--json")
    assert_one_error(rc, err, contains=CKPT_CLASSES[name][1])
    assert out == ""
    if name == "pickle_payload":
        assert "pwned" not in out + err and "weights_only" not in err


@pytest.mark.parametrize("name", CKPT_CLASSES)
def test_malformed_checkpoint_eval(capsys, bad_ckpt, good_h5, tmp_path, name):
    out = tmp_path / "eval"
    rc, _, err = run_cli(capsys, *eval_args(bad_ckpt[name], good_h5, out))
    assert_one_error(rc, err, contains=CKPT_CLASSES[name][1])
    no_eval_output(out)


def test_good_checkpoint_and_file_evaluate(capsys, good_ckpt, good_h5, tmp_path):
    """The fixtures themselves are valid: the same command on them succeeds."""
    out = tmp_path / "eval"
    rc, stdout, err = run_cli(capsys, *eval_args(good_ckpt, good_h5, out))
    assert rc == 0, err
    assert json.loads((out / "results.json").read_text())["episodes_per_seed"] == 1
