"""Checkpoint round-trips, the authors' release format (both ViT namings) and strict loading."""

import json

import pytest
import torch

import lewm
from lewm.checkpoint import export_reference, remap_vit_keys, save_model, to_v5_keys
from lewm.data.normalize import ActionNormalizer
from lewm.errors import CheckpointError
from lewm.model.world_model import LeWM


@pytest.fixture
def model(tiny_cfg):
    torch.manual_seed(0)
    m = LeWM(tiny_cfg.model, ActionNormalizer((0.1, -0.2), (0.5, 2.0)))
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "adaLN" in name:
                p.normal_(0, 0.1)
        m.projector.net[1].running_mean.normal_()
    return m.eval()


def outputs(m):
    g = torch.Generator().manual_seed(0)
    px = torch.randn(2, 3, 3, 32, 32, generator=g)
    cand = torch.randn(2, 5, 10, generator=g)
    with torch.no_grad():
        z = m.encode(px)
        return z, m.rollout(z[:, :1], cand)


def test_run_dir_round_trip(tmp_path, model, tiny_cfg):
    from lewm.checkpoint import run_metadata

    meta = run_metadata(tiny_cfg, model.action_normalizer, {"path": "x.h5"}, 7)
    save_model(tmp_path, model, meta)
    loaded = lewm.load(tmp_path)
    assert not loaded.training
    for a, b in zip(outputs(model), outputs(loaded), strict=True):
        assert torch.equal(a, b)
    assert loaded.action_normalizer == model.action_normalizer
    assert json.loads((tmp_path / "config.json").read_text())["step"] == 7
    prov = loaded.provenance
    assert (prov.source, prov.step, prov.action_stats) == ("lewm", 7, "run")
    assert prov.config == tiny_cfg and prov.data["path"] == "x.h5"
    assert not hasattr(loaded, "run_meta") and not hasattr(loaded, "run_config")


@pytest.mark.parametrize("naming", ["4.x", "5.x"])
def test_authors_format_both_namings(tmp_path, model, naming):
    export_reference(model, tmp_path, naming=naming)
    keys = torch.load(tmp_path / "weights.pt", weights_only=True).keys()
    if naming == "5.x":
        assert any(k.startswith("encoder.layers.0.attention.q_proj") for k in keys)
        assert any(k.endswith("mlp.fc2.weight") for k in keys)
    else:
        assert any(k.startswith("encoder.encoder.layer.0.attention.attention.query") for k in keys)
    rc = json.loads((tmp_path / "config.json").read_text())
    assert (
        rc["predictor"]["_target_"].endswith("Predictor")
        and rc["action_encoder"]["input_dim"] == 10
    )
    loaded = lewm.load(tmp_path, identity_normalizer=True)
    assert loaded.provenance.layout == naming and loaded.provenance.source == "reference"
    for a, b in zip(outputs(model), outputs(loaded), strict=True):
        assert torch.equal(a, b)
    assert loaded.action_normalizer is None  # raw action units, asked for explicitly
    assert loaded.provenance.action_stats == "identity"


def test_authors_checkpoint_requires_action_statistics(tmp_path, model, synthetic_h5):
    """Without statistics the planner would silently work in raw action units."""
    export_reference(model, tmp_path)
    with pytest.raises(CheckpointError, match="carry no action statistics.*--stats-from"):
        lewm.load(tmp_path)
    with pytest.raises(CheckpointError, match="not both"):
        lewm.load(tmp_path, stats_from=synthetic_h5, identity_normalizer=True)
    fitted = lewm.load(tmp_path, stats_from=synthetic_h5)
    assert fitted.provenance.action_stats == f"file:{synthetic_h5}"


def test_new_model_has_empty_provenance(model):
    assert model.provenance.source == "new" and model.provenance.step is None
    assert dict(model.provenance.meta) == {} and model.provenance.env is None


def test_paper_release_config_bytes(tmp_path):
    """Our writer reproduces the released config.json byte for byte (sha256 from OFFICIAL_FORMAT §2.1)."""
    import hashlib

    from lewm.checkpoint import reference_config_dict
    from lewm.config import preset

    cfg = preset("paper").model
    cfg.action_dim = 2
    text = json.dumps(reference_config_dict(cfg), indent=4) + "\n"
    assert len(text.encode()) == 1313
    assert hashlib.sha256(text.encode()).hexdigest() == (
        "2564086e961e7b5c7c04dffc451091115b389a590645ff19653c64fd0bc16e09"
    )


def test_key_mapping_is_invertible(model):
    sd = model.state_dict()
    v5 = to_v5_keys(sd)
    back, layout = remap_vit_keys(v5)
    assert layout == "5.x" and list(back) == list(sd)


def test_stats_from_dataset(tmp_path, model, synthetic_h5):
    export_reference(model, tmp_path)
    ref = lewm.load(tmp_path, stats_from=synthetic_h5, profile="reference")
    clean = lewm.load(tmp_path, stats_from=synthetic_h5, profile="clean")
    assert ref.action_normalizer.ddof == 0 and clean.action_normalizer.ddof == 1
    assert ref.action_normalizer.std[0] < clean.action_normalizer.std[0]


def test_strict_loading_names_keys(tmp_path, model):
    export_reference(model, tmp_path)
    sd = torch.load(tmp_path / "weights.pt", weights_only=True)
    sd.pop("predictor.pos_embedding")
    sd["predictor.extra"] = torch.zeros(1)
    torch.save(sd, tmp_path / "weights.pt")
    with pytest.raises(
        CheckpointError,
        match=r"missing 1 key\(s\): predictor.pos_embedding.*unexpected.*predictor.extra",
    ):
        lewm.load(tmp_path, identity_normalizer=True)


def test_shape_mismatch_is_reported(tmp_path, model):
    export_reference(model, tmp_path)
    sd = torch.load(tmp_path / "weights.pt", weights_only=True)
    sd["predictor.pos_embedding"] = torch.zeros(1, 4, 32)
    torch.save(sd, tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match="shape mismatch: predictor.pos_embedding"):
        lewm.load(tmp_path, identity_normalizer=True)


def test_pickled_objects_are_refused(tmp_path, model):
    export_reference(model, tmp_path)
    torch.save(
        {"model": model}, tmp_path / "weights.pt"
    )  # a whole pickled module, as the reference once did
    with pytest.raises(CheckpointError, match="lewm refused it because") as info:
        lewm.load(tmp_path, identity_normalizer=True)
    message = str(info.value)
    assert "\n" not in message and "weights_only" not in message  # no advice to load unsafely


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        lewm.load(tmp_path)
    with pytest.raises(CheckpointError, match="no such"):
        lewm.load(tmp_path / "nope")


def test_run_metadata_records_the_code_revision(tiny_cfg, model):
    from lewm.checkpoint import run_metadata
    from lewm.gitinfo import git_commit

    meta = run_metadata(tiny_cfg, model.action_normalizer, {"path": "x.h5"}, 0)
    assert meta["git_commit"] == git_commit()
    if git_commit() is not None:  # this checkout: a 40-hex commit, maybe marked dirty
        assert len(git_commit().split("+")[0]) == 40
