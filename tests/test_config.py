import pytest

from lewm.config import Config, apply_overrides, preset
from lewm.errors import ConfigError


def test_presets_validate():
    for name in ("tiny", "small", "paper"):
        for profile in ("clean", "reference"):
            cfg = preset(name, profile).validate()
            assert cfg.preset == name and cfg.profile == profile


def test_paper_preset_is_the_authors_recipe():
    cfg = preset("paper")
    assert cfg.model.encoder.image_size == 224 and cfg.model.encoder.patch_size == 14
    assert cfg.model.predictor.num_frames == 3 and cfg.model.frameskip == 5
    assert cfg.loss.sigreg_weight == 0.09 and cfg.loss.sigreg_projections == 1024
    assert cfg.optim.lr == 5e-5 and cfg.optim.weight_decay == 1e-3 and cfg.train.batch_size == 128
    assert cfg.train.schedule_epochs == 100 and cfg.train.epochs == 10


def test_action_input_dim_is_derived():
    cfg = preset("paper")
    cfg.model.action_dim = 5
    assert cfg.model.action_input_dim == 25


def test_overrides_are_typed():
    cfg = apply_overrides(
        preset("tiny"), ["optim.lr=0.01", "train.steps=7", "model.predictor.dropout=0.2"]
    )
    assert cfg.optim.lr == 0.01 and cfg.train.steps == 7 and cfg.model.predictor.dropout == 0.2
    assert isinstance(cfg.train.steps, int)


@pytest.mark.parametrize(
    "item, match",
    [
        ("optim.nope=1", "unknown key"),
        ("nope.lr=1", "unknown key"),
        ("train.steps=1.5", "expected an integer"),
        ("optim.lr=abc", "expected a number"),
        ("train.compile=maybe", "expected a boolean"),
        ("train.precision=fp16", "is not one of"),
        ("model.encoder=3", "is a section"),
        ("optim.lr", "key=value"),
    ],
)
def test_bad_overrides(item, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(preset("tiny"), [item])


def test_validation_errors():
    cfg = preset("tiny")
    cfg.model.encoder.image_size = 30  # not a multiple of the patch size 8
    with pytest.raises(ConfigError, match="multiple of patch_size"):
        cfg.validate()
    cfg = preset("tiny")
    cfg.train.split = "clip"
    with pytest.raises(ConfigError, match="reference"):
        cfg.validate()


def test_dict_round_trip_and_unknown_keys():
    cfg = preset("small", "reference")
    assert Config.from_dict(cfg.to_dict()) == cfg
    d = cfg.to_dict()
    d["model"]["bogus"] = 1
    with pytest.raises(ConfigError, match="bogus"):
        Config.from_dict(d)
    d = cfg.to_dict()
    d["train"]["steps"] = "many"
    with pytest.raises(ConfigError, match="train.steps"):
        Config.from_dict(d)


def test_unknown_preset_and_profile():
    with pytest.raises(ConfigError):
        preset("huge")
    with pytest.raises(ConfigError):
        preset("tiny", "dirty")


@pytest.mark.parametrize("key", ["log_every", "val_every", "save_every"])
def test_cadences_must_be_positive(key):
    cfg = apply_overrides(preset("tiny"), [f"train.{key}=0"])
    with pytest.raises(ConfigError, match=f"train.{key}"):
        cfg.validate()


def test_config_serialises_through_to_dict_only():
    # to_json was never called; JSON is written by the run directory from to_dict()
    assert not hasattr(Config, "to_json")
