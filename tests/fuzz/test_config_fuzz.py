"""Generated ``key=value`` overrides, model options and YAML files against the config loader.

The property: the loader returns a :class:`~cnnlab.config.Config` or raises
:class:`~cnnlab.errors.CnnlabError` whose message is one line under 500 characters;
nothing else escapes. A model built from an accepted config either builds and runs
a forward pass, or is refused the same way.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz import harness
from tests.fuzz.harness import examples
from tests.fuzz.strategies import (alias_bomb_document, alias_bomb_flow, model_names, model_option_keys, override_lists,
                                   preset_names, values, yaml_documents)


def _load(source, overrides):
    from cnnlab.config import Config, load_config

    cfg = load_config(source, overrides)
    assert isinstance(cfg, Config), f"load_config returned {type(cfg).__name__}"
    return "Config"


@examples(200)
@given(source=st.one_of(st.none(), st.sampled_from(preset_names())), overrides=override_lists(max_size=6))
# Failures found on the code before issue 7's fixes; each stays a fixed example.
@example(source=None, overrides=["train.device=" + alias_bomb_flow(4)])  # 216 kB message echoing the value
@example(source=None, overrides=["train=" + alias_bomb_flow(3)])  # "'train' must be a mapping, got <2.7 kB>"
@example(source=None, overrides=["no\nequals sign"])  # parse_overrides echoes a newline
@example(source=None, overrides=["bad\rkey=1"])  # "unknown config key" echoes a carriage return
@example(source=None, overrides=["model.options=x"])  # AttributeError in config_from_dict
@example(source=None, overrides=["train.seed=!!float x"])  # PyYAML's ValueError escapes _parse_value
def test_overrides(source, overrides):
    """Runs in this process (fast); alias bombs here stay at 9**6 elements."""
    harness.count("config.overrides")
    outcome = harness.call_in_process(lambda: _load(source, overrides))
    harness.check_library(outcome, f"load_config({source!r}, {overrides!r})")


@examples(40)
@given(source=st.sampled_from(preset_names()),
       overrides=override_lists(max_size=4, max_bomb_levels=9))
@example(source="mnist-fast", overrides=["data.val=" + alias_bomb_flow(8)])  # a 157 MB error message
def test_overrides_isolated(source, overrides):
    """Bigger alias bombs (up to 9**9 elements), in a child with a memory and time limit."""
    harness.count("config.overrides.isolated")
    case = harness.new_case()
    try:
        outcome = harness.run_isolated(lambda: _load(source, overrides), case)
        harness.check_library(outcome, f"load_config({source!r}, {overrides!r})")
    finally:
        harness.remove_case(case)


def _load_and_build(path: str):
    """A config file as `cnnlab train FILE` reads it: load, then build its model for 1x28x28 images."""
    from cnnlab.config import load_config
    from cnnlab.runs import build_model

    cfg = load_config(path, [])
    build_model(cfg, (1, 28, 28), 10)
    return "built"


@examples(60)
@given(document=yaml_documents(), suffix=st.sampled_from([".yaml", ".yml"]))
@example(document=b"\xff\xfe\xe9", suffix=".yaml")  # UnicodeDecodeError in _read_source
@example(document=b"model: " + b"{a: " * 2000 + b"1" + b"}" * 2000, suffix=".yaml")  # RecursionError
@example(document=alias_bomb_document(9, 9, "model.filters").encode(), suffix=".yaml")  # passes today; kept
@example(document=b"model:\n  0: 0\n", suffix=".yaml")  # an int option key reached the constructor (TypeError)
def test_yaml_files(document, suffix):
    harness.count("config.yaml_file")
    case = harness.new_case()
    try:
        (case.sandbox / f"config{suffix}").write_bytes(document)
        outcome = harness.run_isolated(lambda: _load_and_build(f"config{suffix}"), case)
        harness.check_library(outcome, f"load_config + build_model of a file holding {document[:300]!r}")
    finally:
        harness.remove_case(case)


def _build_and_run(name: str, overrides: list[str], input_size: tuple[int, int, int], classes: int):
    import torch

    from cnnlab.config import load_config
    from cnnlab.runs import build_model

    cfg = load_config(None, [f"model.name={name}", *overrides])
    model = build_model(cfg, input_size, classes).eval()
    with torch.no_grad():
        out = model(torch.zeros(2, *input_size))
    assert tuple(out.shape) == (2, classes), f"{name} gave logits of shape {tuple(out.shape)}"
    return "built"


@examples(40)
@given(name=st.sampled_from(model_names()),
       options=st.lists(st.tuples(st.sampled_from(model_option_keys()), values(4)).map("=".join), max_size=3),
       input_size=st.sampled_from([(1, 28, 28), (3, 32, 32), (3, 16, 16), (1, 8, 8)]),
       classes=st.sampled_from([2, 10]))
@example(name="convnet", options=["model.blocks=100000"], input_size=(1, 28, 28), classes=2)  # OverflowError
def test_model_options(name, options, input_size, classes):
    """Any option value for any model: a model that runs, or one line naming the problem."""
    harness.count("models.options")
    case = harness.new_case()
    try:
        outcome = harness.run_isolated(lambda: _build_and_run(name, options, input_size, classes), case)
        harness.check_library(outcome, f"build_model({name}, {options!r}, {input_size}, {classes})")
    finally:
        harness.remove_case(case)
