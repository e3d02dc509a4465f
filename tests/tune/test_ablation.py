"""`cnnlab ablate`: the variants differ from their reference in exactly one technique; numbers match the runs."""

from __future__ import annotations

import json
import statistics

import pytest
import yaml

from cnnlab.config import load_config
from cnnlab.tune.ablation import TECHNIQUES, plan
from tests.tune.conftest import cli


def flat(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict) and k != "augment":
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_ablation_runs_every_variant_and_reports_mean_and_std(tmp_path, base_yaml, capsys):
    out = tmp_path / "abl"
    code, stdout, err = cli(capsys, "ablate", base_yaml, "--techniques", "dropout,adam,residual,batchnorm",
                            "--seeds", 2, "--out", out, "--json", "--quiet")
    assert code == 0, err
    record = json.loads(stdout)
    assert record == json.loads((out / "ablation.json").read_text())
    assert (out / "ablation.png").stat().st_size > 5000
    # residual connections cannot be switched in a plain ConvNet: reported, not silently skipped
    assert record["techniques"]["residual"]["applicable"] is False
    assert "no residual connections" in record["techniques"]["residual"]["reason"]
    names = [v["variant"] for v in record["variants"]]
    assert names == ["full", "plain", "full - dropout", "full - adam", "full - batchnorm",
                     "plain + dropout", "plain + adam", "plain + batchnorm"]
    configs = {}
    for v in record["variants"]:
        assert [r["seed"] for r in v["runs"]] == [0, 1]
        accs = []
        for r in v["runs"]:  # the numbers come from the run directories, recomputed here independently
            summary = json.loads(open(r["run_dir"] + "/summary.json").read())
            accs.append(summary["test_accuracy"])
            configs.setdefault(v["variant"], flat(yaml.safe_load(open(r["run_dir"] + "/config.yaml"))))
        assert v["test_accuracy_mean"] == pytest.approx(statistics.fmean(accs))
        assert v["test_accuracy_std"] == pytest.approx(statistics.stdev(accs))
    full, plain = configs["full"], configs["plain"]
    assert full["model.dropout"] == 0.2 and plain["model.dropout"] == 0.0  # the default where the recipe has none
    assert full["model.norm"] == "batchnorm" and plain["model.norm"] == "none"
    assert (full["optim.name"], plain["optim.name"]) == ("adam", "sgd") and plain["optim.lr"] == pytest.approx(0.1)
    expected = {"dropout": {"model.dropout"}, "adam": {"optim.name", "optim.lr", "optim.nesterov"},
                "batchnorm": {"model.norm"}}
    for tech, keys in expected.items():
        minus = {k for k in full if full[k] != configs[f"full - {tech}"][k]} - {"name"}
        plus = {k for k in plain if plain[k] != configs[f"plain + {tech}"][k]} - {"name"}
        assert minus == keys and plus == keys, (tech, minus, plus)
    for v in record["variants"][2:]:
        ref = record["variants"][0 if v["kind"] == "leave-one-out" else 1]
        assert v["delta_accuracy"] == pytest.approx(v["test_accuracy_mean"] - ref["test_accuracy_mean"])

    code, stdout, _ = cli(capsys, "ablate", base_yaml, "--techniques", "dropout", "--out", tmp_path / "t", "--quiet")
    assert code == 0 and "± " in stdout and "full - dropout" in stdout


def test_every_technique_has_a_plan_for_mnist_fast():
    variants, info = plan(load_config("mnist-fast"), list(TECHNIQUES))
    assert set(info) == set(TECHNIQUES) and len(TECHNIQUES) == 10
    assert [n for n, t in info.items() if not t["applicable"]] == ["residual"]
    # knowing the input size, the plan sees that mnist-fast (no dense layer) has nowhere to put dropout
    _, sized = plan(load_config("mnist-fast"), list(TECHNIQUES), (1, 28, 28), 10)
    assert [n for n, t in sized.items() if not t["applicable"]] == ["residual", "dropout"]
    assert "changes nothing in model 'convnet'" in sized["dropout"]["reason"]
    _, dense = plan(load_config("mnist-fast", ["model.dense=32"]), ["dropout"], (1, 28, 28), 10)
    assert dense["dropout"]["applicable"]
    assert info["onecycle"]["in_recipe"] and info["label_smoothing"]["in_recipe"]
    assert not info["dropout"]["in_recipe"] and not info["augmentation"]["in_recipe"]
    assert len(variants) == 2 + 2 * 9
    # ResNet-9 can drop its shortcuts
    _, info = plan(load_config("cifar10-resnet9"), ["residual"])
    assert info["residual"]["applicable"] and info["residual"]["off"] == {"model.residual": False}


def test_resnet9_without_residual_drops_only_the_addition():
    import torch

    from cnnlab.models import create_model

    torch.manual_seed(0)
    a = create_model("resnet9", num_classes=10, width=4)
    torch.manual_seed(0)
    b = create_model("resnet9", num_classes=10, width=4, residual=False)
    b.load_state_dict(a.state_dict())  # the same parameters
    x = torch.randn(2, 3, 32, 32)
    a.eval(), b.eval()
    block = a.features[2]
    h = a.features[:2](x)
    assert torch.allclose(block(h), h + block.body(h))
    assert torch.allclose(b.features[2](h), block.body(h))
    assert not torch.allclose(a(x), b(x))


def test_bad_ablation_input(tmp_path, base_yaml, capsys):
    for argv, text in ((["--techniques", "dropuot"], "unknown technique 'dropuot'; did you mean 'dropout'?"),
                       (["--seeds", "0"], "--seeds 0 is out of range"),
                       (["--seeds", "1000"], "--seeds 1000 is out of range"),
                       (["--techniques", "residual"], "none of the techniques residual can be switched")):
        code, _, err = cli(capsys, "ablate", base_yaml, *argv, "--out", tmp_path / "x")
        assert code == 2 and err.startswith("cnnlab: error: ") and text in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "x").exists()


def test_the_texts_techniques_are_named_with_techniques_and_not_in_the_default_set():
    from cnnlab.tune.ablation import OPTIONAL_TECHNIQUES, TECHNIQUES, parse_techniques

    assert parse_techniques("dropconnect,pca_lighting,random_resized_crop") == list(OPTIONAL_TECHNIQUES)
    assert parse_techniques(None) == list(TECHNIQUES) and not set(OPTIONAL_TECHNIQUES) & set(TECHNIQUES)
