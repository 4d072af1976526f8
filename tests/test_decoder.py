"""The diagnostic decoder (spec §9.4): shapes, no gradient into the world model, files, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from analysis_helpers import cli, tworoom_run

from lewm.analysis.decoder import Decoder, DecoderConfig, decoder_files, decoder_loss, load_decoder
from lewm.errors import ConfigError


def test_patch_grid_follows_the_image_size():
    assert DecoderConfig(embed_dim=192, image_size=224).grid == 14  # the paper's 196 queries
    assert DecoderConfig(embed_dim=192, image_size=64).grid == 4
    dec = Decoder(DecoderConfig(embed_dim=8, image_size=32, patch=8, width=32, depth=2, heads=4))
    assert dec.queries.shape == (1, 16, 32)
    assert dec(torch.randn(5, 8)).shape == (5, 3, 32, 32)
    with pytest.raises(ConfigError, match="does not divide"):
        DecoderConfig(embed_dim=8, image_size=30, patch=16)


def test_patches_land_where_they_belong():
    """The head's output for query (gy, gx) fills exactly the patch rows gy*p.., cols gx*p.."""
    cfg = DecoderConfig(embed_dim=4, image_size=16, patch=8, width=16, depth=1, heads=2)
    dec = Decoder(cfg)
    with torch.no_grad():
        dec.head.weight.zero_()
        dec.head.bias.zero_()
        dec.queries.zero_()
    out = dec(torch.zeros(1, 4))
    assert torch.count_nonzero(out) == 0
    # a bias on one output unit = (py, px, c) = (1, 2, 0) of every patch
    with torch.no_grad():
        dec.head.bias[(1 * 8 + 2) * 3 + 0] = 1.0
    out = dec(torch.zeros(1, 4))[0]
    rows, cols = torch.nonzero(out[0], as_tuple=True)
    assert sorted(set(rows.tolist())) == [1, 9] and sorted(set(cols.tolist())) == [2, 10]
    assert torch.count_nonzero(out[1:]) == 0


def test_no_gradient_reaches_the_world_model(tmp_path):
    import lewm
    from lewm.analysis.decoder_run import DecoderTraining, train_decoder
    from lewm.data.hdf5 import inspect_dataset

    run, data = tworoom_run()
    model = lewm.load(run)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = DecoderConfig(
        embed_dim=model.embed_dim, image_size=32, patch=16, width=32, depth=2, heads=4
    )
    info = inspect_dataset(data)
    training = DecoderTraining(steps=6, batch_size=8, eval_every=3)
    decoder, record = train_decoder(model, info, cfg, training, log=lambda m: None)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(p.grad is not None for p in decoder.parameters())  # the decoder did learn
    assert [h["step"] for h in record["history"]] == [3, 6]
    assert record["train_frames"] + record["val_frames"] == info.n_rows
    # and the loss itself cuts the graph: an embedding that requires grad gets none
    z = torch.randn(4, model.embed_dim, requires_grad=True)
    decoder_loss(decoder, z, torch.zeros(4, 3, 32, 32)).backward()
    assert z.grad is None


def test_files_round_trip(tmp_path):
    cfg = DecoderConfig(embed_dim=8, image_size=32, width=32, depth=1, heads=4)
    dec = Decoder(cfg)
    files = decoder_files(dec, {"checkpoint": "somewhere"})
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    loaded, record = load_decoder(tmp_path)
    assert loaded.cfg == cfg and record["checkpoint"] == "somewhere"
    z = torch.randn(2, 8)
    assert torch.equal(loaded(z), dec.eval()(z))


def test_train_and_show_commands(tmp_path):
    run, data = tworoom_run()
    out = tmp_path / "dec"
    code, stdout, err = cli("decoder", "train", "--ckpt", run, "--data", data, "--out", out,
                            "--steps", 4, "--batch-size", 8, "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {"decoder.json", "decoder.safetensors", "rollout.png"}
    record = json.loads((out / "decoder.json").read_text())
    assert record["decoder"]["patch"] == 16 and record["decoder"]["depth"] == 4
    assert record["decoder"]["width"] == 256 and record["decoder"]["heads"] == 8
    assert json.loads(stdout)["val_mse"] == record["val_mse"]
    strip = tmp_path / "strip.png"
    code, stdout, err = cli("decoder", "show", "--decoder", out, "--data", data, "--out", strip,
                            "--episodes", 2, "--horizon", 3, "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert strip.stat().st_size > 1000 and len(json.loads(stdout)["episodes"]) == 2
    # bad input: one error line, nothing written
    code, _, err = cli("decoder", "show", "--decoder", tmp_path / "none", "--data", data,
                       "--out", tmp_path / "x.png")  # fmt: skip
    assert code == 2 and err.startswith("error:") and not (tmp_path / "x.png").exists()
    code, _, err = cli("decoder", "train", "--ckpt", run, "--data", data, "--out", tmp_path / "d2",
                       "--patch", 5, "--device", "cpu")  # fmt: skip
    assert code == 2 and "does not divide" in err and not (tmp_path / "d2").exists()
