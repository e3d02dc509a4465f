"""Weights from local files: torchvision state dicts, safetensors, run directories; every bad file one line."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
import torchvision

from cnnlab.config import load_config
from cnnlab.errors import CnnlabError
from cnnlab.models import create_model
from cnnlab.runs import build_model, load_run
from cnnlab.models.weights import read_weights


@pytest.fixture(scope="module")
def resnet18_files(tmp_path_factory):
    """torchvision's resnet18 (random init, seeded) saved as a .pth state dict and as safetensors."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = torchvision.models.resnet18().eval()
    folder = tmp_path_factory.mktemp("weights")
    torch.save(net.state_dict(), folder / "resnet18.pth")
    save_file(net.state_dict(), str(folder / "resnet18.safetensors"))
    return net, folder / "resnet18.pth", folder / "resnet18.safetensors"


def _config_model(name: str, weights, **options):
    """The model a config with ``model.weights`` builds (the path `cnnlab train` takes)."""
    overrides = {"model.name": name, "model.weights": str(weights),
                 **{f"model.{k}": v for k, v in options.items()}}
    cfg = load_config(None, overrides)
    return build_model(cfg, (3, 64, 64), 1000).eval()


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_torchvision_resnet18_loads_into_zoo_and_tv_models_with_equal_logits(resnet18_files, fmt, capsys):
    net, pth, st = resnet18_files
    path = pth if fmt == "pth" else st
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(x)
        tv = _config_model("tv:resnet18", path)
        torch.testing.assert_close(tv(x), expected, rtol=0, atol=1e-5)
        assert "122 of 122 tensors matched by name" in capsys.readouterr().err  # tv: keeps torchvision's names
        if fmt == "pth":
            zoo = _config_model("resnet18", path, variant="imagenet")
            torch.testing.assert_close(zoo(x), expected, rtol=0, atol=1e-5)
            # The zoo's names differ from torchvision's; its tensors line up in order.
            assert "122 of 122 tensors matched by position" in capsys.readouterr().err
        else:  # safetensors stores no order: only names can match, and the error says so
            with pytest.raises(CnnlabError, match="a safetensors file keeps no tensor order"):
                _config_model("resnet18", path, variant="imagenet")


def test_other_class_count_reinitialises_only_the_classifier(resnet18_files, capsys):
    net, pth, _ = resnet18_files
    model = create_model("tv:resnet18", num_classes=7, weights=str(pth))
    assert "classifier head.fc.bias, head.fc.weight re-initialised (file (1000, 512) vs model (7, 512))" \
        in capsys.readouterr().err
    torch.testing.assert_close(model.features.layer4[1].conv2.weight, net.layer4[1].conv2.weight)
    assert model.head.fc.weight.shape == (7, 512)


def test_weights_of_another_architecture_name_the_first_mismatch(resnet18_files):
    _, pth, _ = resnet18_files
    with pytest.raises(CnnlabError) as info:
        create_model("resnet34", variant="imagenet", weights=str(pth))
    message = str(info.value)
    assert "do not fit model 'resnet34'" in message and "\n" not in message
    assert "'features.layer1.2.conv1.weight' (64, 64, 3, 3) and file 'layer2.0.conv1.weight' (128, 64, 3, 3)" \
        in message
    with pytest.raises(CnnlabError, match="'features.stem.conv.weight' \\(64, 3, 3, 3\\) and file 'conv1.weight' "
                                          "\\(64, 3, 7, 7\\)"):
        create_model("resnet18", variant="cifar", weights=str(pth))  # the CIFAR stem is not ImageNet's


def test_corrupt_truncated_and_foreign_files_are_one_line_errors(resnet18_files, tmp_path):
    _, pth, st = resnet18_files
    cut = tmp_path / "cut.pth"
    cut.write_bytes(pth.read_bytes()[: pth.stat().st_size // 2])
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(st.read_bytes()[:100])
    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    for path, pattern in ((cut, "cannot read weights file"), (bad_st, "corrupt or not safetensors"),
                          (text, "cannot read weights file"), (tmp_path / "missing.pth", "does not exist")):
        with pytest.raises(CnnlabError, match=pattern) as info:
            read_weights(path)
        assert "\n" not in str(info.value)


class _Payload:
    """Unpickling this would run ``os.system`` (a pickle that carries code)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_carrying_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "hook": _Payload(str(marker))}, evil)
    raw = tmp_path / "evil-raw.pth"
    raw.write_bytes(pickle.dumps(_Payload(str(marker))))
    for path in (evil, raw):
        with pytest.raises(CnnlabError, match="cannot read weights file") as info:
            create_model("tv:resnet18", weights=str(path))
        assert "\n" not in str(info.value)
    assert not marker.exists()  # the code in the pickle never ran
    with pytest.raises(CnnlabError, match="pickled Python object .*which cnnlab never unpickles"):
        read_weights(evil)


def test_download_is_explicit_and_fails_offline_with_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_OFFLINE", "1")
    monkeypatch.setenv("CNNLAB_WEIGHTS_DIR", str(tmp_path / "empty-cache"))
    with pytest.raises(CnnlabError) as info:
        create_model("tv:resnet18", weights="download")
    message = str(info.value)
    assert message.startswith("model.weights=download but CNNLAB_OFFLINE is set and ")
    assert "resnet18-f37072fd.pth is not cached" in message  # torchvision's own file name
    assert "model.weights=PATH" in message and "\n" not in message
    assert not (tmp_path / "empty-cache").exists()  # offline: not even the cache folder is made
    with pytest.raises(CnnlabError, match="no published weights for model 'convnet'"):
        create_model("convnet", weights="download")


def test_a_run_directory_is_weights_for_another_run(mnist_run, tmp_path, capsys):
    from tests.transfer.conftest import train_cli

    source = load_run(mnist_run)
    cfg = load_config("mnist-fast", {"model.weights": str(mnist_run)})
    built = build_model(cfg, (1, 28, 28), 10)
    for key, value in source.model.state_dict().items():
        torch.testing.assert_close(built.state_dict()[key], value, rtol=0, atol=0)
    summary = train_cli("train", "mnist-fast", f"model.weights={mnist_run}", "data.limit_train=256",
                        "train.plots=false", "--out", tmp_path / "second", "--quiet")
    assert summary["test_accuracy"] > 0.5  # starts from the first run's weights, not from scratch
    # The second run reads its own checkpoint back, not the weights it started from.
    (tmp_path / "moved").mkdir()
    assert load_run(tmp_path / "second").model is not None
