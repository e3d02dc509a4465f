"""Strict config: presets load, overrides are typed, mistakes name the key and the fix."""

import re

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
    # Non-finite floats, and integers far outside any sensible setting (issue 7).
    ("optim.lr=.inf", "optim.lr=inf is not a finite number"),
    ("optim.lr=1e999", "optim.lr=inf is not a finite number"),
    ("optim.momentum=.nan", "optim.momentum=nan is not a finite number"),
    ("data.augment.rotate=-.inf", "data.augment.rotate=-inf is not a finite number"),
    ("train.seed=-1", "train.seed=-1 is out of range; expected an integer in [0, 4,294,967,295]"),
    ("train.seed=12345678901234567890", "train.seed=12345678901234567890 is out of range"),
    ("train.threads=100000", "train.threads=100000 is out of range"),
    ("data.batch_size=100000000", "data.batch_size=100000000 is out of range"),
    ("data.eval_batch_size=100000000", "data.eval_batch_size=100000000 is out of range"),
    ("train.epochs=1e300", "train.epochs must be an integer, got 1e+300"),
    ("train.epochs=10000000", "train.epochs=10000000 is out of range"),
    ("train.log_every=1e12", "train.log_every=1000000000000 is out of range"),
    ("train.checkpoint_every=10000000", "train.checkpoint_every=10000000 is out of range"),
    ("train.early_stopping.patience=10000000", "train.early_stopping.patience=10000000 is out of range"),
    ("schedule.warmup_epochs=-1", "schedule.warmup_epochs=-1.0 is out of range"),
    ("data.image_size=100000", "data.image_size=100000 is out of range"),
    ("data.augment.crop_padding=4096", "data.augment.crop_padding=4096 is out of range"),
    ("optim.lr=1e300", "optim.lr=1e+300 is too large"),
    ("optim.weight_decay=-1e39", "optim.weight_decay=-1e+39 is too large"),
    ("optim.betas=[0.9,1.5]", "optim.betas=(0.9, 1.5) is out of range"),
])
def test_bad_values_are_rejected(override, message):
    with pytest.raises(CnnlabError, match=re.escape(message)):
        load_config("mnist-classic", [override])


def test_fused_optimizer_only_where_torch_has_one():
    with pytest.raises(CnnlabError, match="torch has no fused rmsprop"):
        load_config("mnist-classic", ["optim.name=rmsprop", "optim.fused=true"])
    assert load_config("mnist-classic", ["optim.name=sgd", "optim.fused=true"]).optim.fused


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


def test_threads_bound_follows_the_cpu_count(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    assert load_config("mnist-classic", ["train.threads=12"]).train.threads == 12
    with pytest.raises(CnnlabError, match=r"train.threads=13 is out of range.*\[1, 12\]"):
        load_config("mnist-classic", ["train.threads=13"])


def test_seeds_are_32_bit_and_integral_floats_still_integers():
    assert load_config("mnist-classic", ["train.epochs=3.0", "train.seed=4294967295"]).train.seed == 2**32 - 1
    with pytest.raises(CnnlabError, match="train.seed=4294967296 is out of range"):
        load_config("mnist-classic", ["train.seed=4294967296"])


def _alias_bomb(levels: int = 9) -> str:
    """A "billion laughs" list: each level is 9 aliases of the level below (9**levels ones)."""
    parts = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    parts += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


def test_yaml_alias_bomb_in_a_file_is_refused_in_a_short_line(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(f"model:\n  name: convnet\n  filters: {_alias_bomb()}\n")
    with pytest.raises(CnnlabError) as info:
        load_config(str(path))
    message = str(info.value)
    assert "expands to more than 10,000 values" in message and len(message) < 300


def test_yaml_alias_bomb_in_an_override_is_refused():
    with pytest.raises(CnnlabError, match="override model.filters=... expands to more than 10,000 values"):
        load_config("mnist-classic", [f"model.filters={_alias_bomb()}"])


def test_deep_nesting_is_refused():
    with pytest.raises(CnnlabError, match="nests deeper than 32 levels"):
        load_config("mnist-classic", ["model.filters=" + "[" * 40 + "]" * 40])


def test_error_messages_echo_at_most_a_short_value():
    big = "[" + ", ".join(["x" * 50] * 1000) + "]"
    with pytest.raises(CnnlabError) as info:
        load_config("mnist-classic", [f"optim.lr={big}"])
    assert str(info.value).startswith("optim.lr must be a number, got [") and len(str(info.value)) < 200


def test_config_file_that_is_not_utf8_or_a_folder(tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(CnnlabError, match="is not UTF-8 text"):
        load_config(str(latin1))
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(CnnlabError, match="is a folder"):
        load_config(str(folder))


def test_an_integer_too_long_to_convert_is_one_error():
    with pytest.raises(CnnlabError, match="not a usable value"):
        load_config("mnist-classic", ["train.seed=" + "1" * 5000])


@pytest.mark.parametrize("document", ["model:\n  0: 0\n", "model:\n  true: 1\n", "model:\n  options: {'a b': 1}\n"])
def test_a_model_option_that_is_not_a_name_is_one_line(tmp_path, document):
    # YAML reads `0:` and `true:` as int and bool keys; they once reached the constructor (TypeError)
    path = tmp_path / "c.yaml"
    path.write_text(document)
    with pytest.raises(CnnlabError, match="is not an option name"):
        load_config(str(path), [])
