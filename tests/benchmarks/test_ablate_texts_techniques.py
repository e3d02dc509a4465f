"""benchmarks/ablate_texts_techniques.py: its three techniques switch exactly their own keys, in every variant."""

from __future__ import annotations

import pytest

from tests.benchmarks import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("ablate_texts_techniques")


def test_on_and_off_overrides(script):
    from cnnlab.config import load_config

    cfg = load_config("fashion-convnet")
    techniques = {t.name: t for t in script.texts_techniques()}
    assert {n: (t.on(cfg), t.off(cfg)) for n, t in techniques.items()} == {
        "dropconnect": ({"model.dropconnect": 0.3}, {"model.dropconnect": 0.0}),
        "pca_lighting": ({"data.augment.pca_lighting": 0.1}, {"data.augment.pca_lighting": 0.0}),
        "random_resized_crop": ({"data.augment.random_resized_crop": [0.6, 1.0]},
                                {"data.augment.random_resized_crop": None}),
    }
    # a recipe's own setting is its "on"
    own = load_config("fashion-convnet", ["data.augment.random_resized_crop=[0.35,1]", "model.dropconnect=0.5"])
    assert techniques["random_resized_crop"].on(own) == {"data.augment.random_resized_crop": [0.35, 1.0]}
    assert techniques["dropconnect"].on(own) == {"model.dropconnect": 0.5}


def test_the_plan_differs_from_its_reference_in_the_technique_alone(script, monkeypatch):
    from cnnlab.config import config_to_dict, load_config
    from cnnlab.tune import ablation

    names = []
    for t in script.texts_techniques():
        monkeypatch.setitem(ablation.TECHNIQUES, t.name, t)
        names.append(t.name)
    cfg = load_config("fashion-convnet")
    variants, info = ablation.plan(cfg, names, (1, 28, 28), 10)
    assert all(info[n]["applicable"] for n in names)
    built = {v.name: _flat(config_to_dict(ablation._apply(config_to_dict(cfg), v.overrides))) for v in variants}
    base = _flat(config_to_dict(cfg))
    # plain is the preset itself (it uses none of the three); dropconnect 0 is written out, its default
    assert {k: v for k, v in built["plain"].items() if base.get(k) != v} == {"model.dropconnect": 0.0}
    keys = {n: set(info[n]["on"]) for n in names}
    for n in names:  # each variant differs from its reference in the technique's own keys, and in all of them
        assert _diff(built[f"full - {n}"], built["full"]) == keys[n]
        assert _diff(built[f"plain + {n}"], built["plain"]) == keys[n]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def _diff(a: dict, b: dict) -> set:
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
