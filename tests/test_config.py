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


# --------------------------------------------------------------------------- the value rules


def _numeric_keys(obj, prefix=""):
    import dataclasses
    import typing

    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _numeric_keys(value, f"{prefix}{f.name}.")
        elif hints[f.name] in (int, float):
            yield prefix + f.name


def test_every_numeric_key_has_a_rule():
    """A new int/float field needs its row in VALUE_RULES (one table, issue 16)."""
    from lewm.config import VALUE_RULES

    keys = set(_numeric_keys(Config()))
    assert keys - set(VALUE_RULES) == set(), "add a VALUE_RULES row for these keys"
    assert set(VALUE_RULES) - keys == set(), "VALUE_RULES names keys that do not exist"


@pytest.mark.parametrize(
    "item",
    [
        "optim.beta1=2",  # issue 16 §8
        "optim.beta2=1",
        "model.embed_dim=0",
        "optim.grad_clip=-1",  # issue 16 §9: training climbed
        "optim.grad_clip=0",
        "train.epochs=-1",  # with steps=0 it trained one step
        "train.seed=-1",
        f"train.seed={2**64}",
        "train.split_seed=-5",
        "optim.lr=nan",
        "optim.eps=inf",
        "loss.sigreg_projections=0",
        "train.val_batches=0",
        "model.encoder.image_size=-32",
        "model.encoder.layer_norm_eps=0",
        "model.embed_dim=619925132",  # found by the fuzzer: overflowed inside torch
        "model.predictor.depth=100000",
    ],
)
def test_values_outside_their_rule_are_refused(item):
    key = item.split("=")[0]
    cfg = apply_overrides(preset("tiny"), ["train.steps=0", item])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        cfg.validate()


def test_values_of_the_wrong_type_set_in_python_are_refused():
    cfg = preset("tiny")
    cfg.train.epochs = None
    with pytest.raises(ConfigError, match="train.epochs: expected a number"):
        cfg.validate()
    cfg = preset("tiny")
    cfg.model.encoder = {"image_size": 32}
    with pytest.raises(ConfigError, match="model.encoder: expected a section"):
        cfg.validate()
    cfg = preset("tiny")
    cfg.train.steps = True
    with pytest.raises(ConfigError, match="train.steps: expected an integer"):
        cfg.validate()


def test_check_seed():
    from lewm.config import SEED_MAX, check_seed

    assert check_seed(0) == 0 and check_seed(SEED_MAX) == SEED_MAX
    for bad in (-1, SEED_MAX + 1, 2**64, 1.5, "3", True, None):
        with pytest.raises(ConfigError, match="seed"):
            check_seed(bad)


@pytest.mark.parametrize("section", [None, [], "fast", 3])
def test_from_dict_refuses_a_section_that_is_not_an_object(section):
    d = preset("tiny").to_dict()
    d["optim"] = section
    with pytest.raises(ConfigError, match="optim: expected an object"):
        Config.from_dict(d)
    with pytest.raises(ConfigError, match="config: expected an object"):
        Config.from_dict(None)
