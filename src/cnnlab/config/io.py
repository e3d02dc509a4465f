"""Reading configs: presets, YAML files, ``key=value`` overrides, and writing them back.

>>> cfg = load_config("mnist-fast", ["train.epochs=3", "optim.lr=0.01"])
>>> cfg.train.epochs, cfg.optim.lr
(3, 0.01)
"""

from __future__ import annotations

import copy
import dataclasses
import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cnnlab.config.schema import Config
from cnnlab.config.validate import config_from_dict
from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.yamlsafe import MAX_YAML_DEPTH, MAX_YAML_NODES, check_yaml_size, cut as _cut  # noqa: F401


# ----------------------------------------------------------------------------- presets


def preset_names() -> list[str]:
    """Names of the presets shipped with cnnlab."""
    folder = resources.files("cnnlab") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_text(name: str) -> str:
    """The YAML text of a shipped preset."""
    if name not in preset_names():
        raise CnnlabError(
            f"no preset or YAML file named '{_cut(name, 100)}'; {did_you_mean(name, preset_names())} "
            "(run `cnnlab presets` to list them)"
        )
    data = (resources.files("cnnlab") / "presets" / f"{name}.yaml").read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CnnlabError(f"preset {name} is not UTF-8 text; reinstall cnnlab or fix the file") from None


def read_source(source: str) -> dict:
    """A preset name or a YAML file path -> a plain dict."""
    path = Path(source)
    if path.is_dir():
        raise CnnlabError(f"config '{source}' is a folder; give a YAML file or a preset name "
                          "(run `cnnlab presets` to list them)")
    if source.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise CnnlabError(f"config file '{source}' does not exist")
        text = read_text_file(path, "config file")
    else:
        text = preset_text(source)
    raw = load_yaml(text, f"'{source}'")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CnnlabError(f"'{source}' must hold a YAML mapping at the top level")
    return raw


def read_text_file(path: str | os.PathLike, what: str) -> str:
    """The UTF-8 text of a small file; a folder, an unreadable or a non-UTF-8 file is one line."""
    path = Path(path)
    if path.is_dir():
        raise CnnlabError(f"{what} {path} is a folder, not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CnnlabError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CnnlabError(f"{what} {path} is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                          "save it as UTF-8") from None


def load_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` whose every failure is one line, refusing documents that expand absurdly.

    ``source`` names the text in messages (a quoted file or preset name, or ``override 'k=v'``).
    """
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CnnlabError(f"{source} is not valid YAML: {_cut(' '.join(str(exc).split()))}") from None
    except RecursionError:
        raise CnnlabError(f"{source} nests too deeply to be a config") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise CnnlabError(f"{source} holds an unusable value: {_cut(str(exc))}") from None
    check_yaml_size(value, source)
    return value


# ----------------------------------------------------------------------------- overrides


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.epochs=3", "model.filters=[16,32]"]`` -> ``{"train.epochs": 3, ...}``.

    Values are parsed as YAML, so ``3`` is an int, ``1e-3`` a float,
    ``[16,32]`` a list and ``null`` is None.
    """
    parsed: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise CnnlabError(f"override '{item}' must look like key=value, e.g. train.epochs=3")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise CnnlabError(f"override '{item}' has no key before '='")
        parsed[key] = _parse_value(text, key)
    return parsed


def _parse_value(text: str, key: str = "value") -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # not YAML: the type check says what was expected
    except (RecursionError, ValueError):
        raise CnnlabError(f"override {key}={_cut(text, 60)!r} is not a usable value (too deeply nested, "
                          "or an integer of more than 4300 digits)") from None
    check_yaml_size(value, f"override {key}=...")
    # YAML 1.1 reads "1e-3" as a string; accept it as the float a user meant.
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in "eE.") else value
        except ValueError:
            return value
    return value


def _set_dotted(raw: dict, key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise CnnlabError(f"cannot set '{key}': '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


# ----------------------------------------------------------------------------- building


def load_config(source: str | None = None, overrides: list[str] | dict | None = None) -> Config:
    """Build a validated :class:`Config` from a preset name or YAML path plus overrides."""
    return config_with_overrides(read_source(source) if source else {}, overrides)


def config_with_overrides(raw: dict, overrides: list[str] | dict | None = None) -> Config:
    """A nested config dict (a preset, or a run's ``config.yaml``) with overrides applied, validated."""
    raw = copy.deepcopy(raw)
    items = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides or {})
    for key, value in items.items():
        _set_dotted(raw, key, value)
    return config_from_dict(raw)


def flatten_config(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config dict -> its dotted keys.

    >>> flatten_config({"train": {"epochs": 1, "early_stopping": {"patience": None}}, "name": "x"})
    {'train.epochs': 1, 'train.early_stopping.patience': None, 'name': 'x'}
    """
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten_config(value, f"{prefix}{key}."))
    return out


def config_to_dict(cfg: Config) -> dict:
    """A plain nested dict (model options flattened next to the name), YAML-ready."""
    out = dataclasses.asdict(cfg)
    model = {"name": cfg.model.name, **cfg.model.options}
    out["model"] = model
    return _plain(out)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dump_config(cfg: Config) -> str:
    """YAML text of a fully resolved config (what ``config.yaml`` in a run holds)."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)

