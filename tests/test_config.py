"""Strict config: presets load, overrides are typed, mistakes name the key and the fix."""

import pytest

from cnnlab.config import config_from_dict, config_to_dict, dump_config, load_config, parse_overrides, preset_names
from cnnlab.errors import CnnlabError


def test_overrides_are_parsed_as_yaml_values():
    assert parse_overrides(["a.b=3", "c=1e-3", "d=[16, 32]", "e=null", "f=true", "g=adam"]) == {
        "a.b": 3, "c": 0.001, "d": [16, 32], "e": None, "f": True, "g": "adam"}


def test_override_changes_typed_field():
    cfg = load_config("mnist-classic", ["train.epochs=3", "optim.lr=0.01", "model.dropout=0.25"])
    assert cfg.train.epochs == 3 and cfg.optim.lr == 0.01
    assert cfg.model.options["dropout"] == 0.25


def test_unknown_key_names_nearest():
    with pytest.raises(CnnlabError, match=r"unknown config key 'train.epohcs'; did you mean 'train.epochs'"):
        load_config("mnist-classic", ["train.epohcs=3"])


def test_unknown_section_names_nearest():
    with pytest.raises(CnnlabError, match="did you mean 'optim'"):
        load_config(None, ["optimm.lr=3"])


@pytest.mark.parametrize("override, message", [
    ("train.epochs=ten", "train.epochs must be an integer, got 'ten'"),
    ("train.epochs=0", "train.epochs=0 is out of range"),
    ("optim.lr=-1", "optim.lr=-1.0 is out of range"),
    ("optim.name=adagrad", "optim.name='adagrad' is not valid"),
    ("data.augment.hflip=2", "data.augment.hflip=2.0 is out of range"),
    ("train.channels_last=maybe", "train.channels_last must be true or false"),
    ("optim.betas=[0.9]", "optim.betas must have 2 values"),
])
def test_bad_values_are_rejected(override, message):
    with pytest.raises(CnnlabError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_config("mnist-classic", [override])


def test_override_without_equals():
    with pytest.raises(CnnlabError, match="must look like key=value"):
        load_config("mnist-classic", ["train.epochs"])


def test_unknown_preset_suggests():
    with pytest.raises(CnnlabError, match="did you mean 'mnist-fast'"):
        load_config("mnist-fats")


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads_builds_and_round_trips(name):
    import yaml

    from cnnlab.runs import build_model

    cfg = load_config(name)
    assert config_from_dict(yaml.safe_load(dump_config(cfg))) == cfg
    channels = 1 if cfg.data.name in ("mnist", "fashion-mnist") else 3
    size = 28 if channels == 1 else (cfg.data.image_size or 32)
    model = build_model(cfg, (channels, size, size), 10)
    assert model.num_classes == 10


def test_config_dict_flattens_model_options():
    cfg = load_config("mnist-classic", ["model.hidden=64"])
    assert config_to_dict(cfg)["model"] == {"name": "mnist_classic", "hidden": 64}
