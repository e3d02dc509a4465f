"""Export: ONNX (through ONNX Runtime) and TorchScript parity on real test images, predict from ONNX alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.config import DataConfig
from cnnlab.data.datasets import load_dataset
from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, list_models, model_arguments
from cnnlab.transfer.export import export_model

# Small but complete versions of every zoo model (the architecture is the same; fewer channels).
SMALL = {"resnet9": {"width": 8}, "resnet18": {"width": 8}, "resnet34": {"width": 8}, "resnet50": {"width": 4},
         "mobilenet_v2": {"width_mult": 0.25}, "convnet": {"filters": [8, 16]}}
GREY = ("mnist_classic", "lenet5")
SIZE = {"inception": 16}  # its 5x5 branches at full resolution make 32x32 slow on a CPU (17 s per 64 images)


@pytest.fixture(scope="module")
def real_images(cifar_folder):
    """256 real test images per channel count, float32 on [0, 1]: CIFAR-10 JPEGs (3x32x32), MNIST (1x28x28)."""
    cifar = load_dataset(DataConfig(name="folder", root=str(cifar_folder), image_size=32,
                                    cache_dir=str(cifar_folder.with_name("decoded-e"))))
    mnist = load_dataset(DataConfig(name="mnist"))
    return {3: cifar.test_x[:256].float() / 255, 1: mnist.test_x[:256].float() / 255}


@pytest.mark.parametrize("name", list_models())
def test_every_zoo_model_exports_to_onnx_with_parity(name, real_images, tmp_path):
    channels, size = (1, 28) if name in GREY else (3, SIZE.get(name, 32))
    torch.manual_seed(0)
    options = dict(SMALL.get(name, {}))
    if "image_size" in model_arguments(name):
        options["image_size"] = size
    model = create_model(name, num_classes=10, in_channels=channels, **options)
    images = real_images[channels]
    if images.shape[-1] != size:  # the same real images, downsized for the heaviest network
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", antialias=True)
    assert len(images) == 256
    mean, std = [0.45] * channels, [0.25] * channels
    result = export_model(model, [str(i) for i in range(10)], (channels, size, size), "resize", mean, std, "onnx",
                          tmp_path / f"{name}.onnx", dynamic_batch=True, images01=images)
    par = result["parity"]
    assert par["images"] == 256 and par["runtime"] == "onnxruntime"
    assert par["max_abs_diff"] <= 1e-4, par


def test_torchscript_export_with_parity(real_images, tmp_path):
    model = create_model("resnet18", num_classes=10, width=8)
    result = export_model(model, [str(i) for i in range(10)], (3, 32, 32), "resize", [0.5] * 3, [0.25] * 3,
                          "torchscript", tmp_path / "m.pt", images01=real_images[3])
    assert result["parity"]["max_abs_diff"] <= 1e-4 and result["parity"]["runtime"] == "torch.jit"
    files = {"cnnlab.json": ""}
    torch.jit.load(str(tmp_path / "m.pt"), _extra_files=files)
    assert json.loads(files["cnnlab.json"])["classes"] == [str(i) for i in range(10)]


def test_an_operator_onnx_lacks_names_the_operator_and_the_layer(tmp_path):
    class Spectrum(torch.nn.Module):
        def forward(self, x):
            return torch.fft.rfft2(x).abs()

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.spectrum = Spectrum()
            self.fc = torch.nn.Linear(28 * 15, 10)

        def forward(self, x):
            return self.fc(self.spectrum(x).flatten(1))

    with pytest.raises(CnnlabError) as info:
        export_model(Net(), [str(i) for i in range(10)], (1, 28, 28), "resize", None, None, "onnx",
                     tmp_path / "net.onnx")
    message = str(info.value)
    assert "no operator aten::fft_rfft2 used by layer 'spectrum' (Spectrum)" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def _pngs(folder: Path, count: int = 8) -> list[str]:
    """The first MNIST test digits as PNG files, one of them enlarged to 40x40 RGB (converted by predict)."""
    from PIL import Image

    data = load_dataset(DataConfig(name="mnist"))
    folder.mkdir()
    paths = []
    for i in range(count):
        img = Image.fromarray(data.test_x[i, 0].numpy())
        if i == 0:
            img = img.resize((40, 40)).convert("RGB")
        paths.append(str(folder / f"test{i}-label{int(data.test_y[i])}.png"))
        img.save(paths[-1])
    return paths


def _cli_json(capsys, *argv):
    code = main([str(a) for a in argv] + ["--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_export_a_run_and_predict_with_onnx_runtime_agrees_with_the_run(mnist_run, tmp_path, capsys):
    onnx_path = tmp_path / "mnist.onnx"
    code = main(["export", str(mnist_run), "--format", "onnx", "--out", str(onnx_path)])
    out, _ = capsys.readouterr()
    assert code == 0 and "parity on 256 test images (onnxruntime vs PyTorch)" in out
    diff = float(out.split("max |logit difference| ")[1].split(",")[0])
    assert diff <= 1e-4
    images = _pngs(tmp_path / "digits")
    ours = _cli_json(capsys, "predict", onnx_path, *images)["predictions"]
    theirs = _cli_json(capsys, "predict", mnist_run, *images)["predictions"]
    for a, b in zip(ours, theirs):
        assert a["top"][0]["class"] == b["top"][0]["class"]
        assert [t["class"] for t in a["top"]] == [t["class"] for t in b["top"]]
        np.testing.assert_allclose([t["probability"] for t in a["top"]], [t["probability"] for t in b["top"]],
                                   atol=2e-4)
    # A folder stands for its images, as with a run directory.
    from_folder = _cli_json(capsys, "predict", onnx_path, tmp_path / "digits")["predictions"]
    assert [p["top"] for p in from_folder] == [p["top"] for p in ours]
    # Predicting from the .onnx file never imports torch.
    script = (f"import sys, json; from cnnlab.cli import main; "
              f"rc = main(['predict', {str(onnx_path)!r}, {images[1]!r}, '--json']); "
              f"print(json.dumps({{'rc': rc, 'torch': 'torch' in sys.modules}}), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    status = json.loads(done.stderr.strip().splitlines()[-1])
    assert status == {"rc": 0, "torch": False}, done.stderr
    assert json.loads(done.stdout)["predictions"][0]["top"][0]["class"] == theirs[1]["top"][0]["class"]


def test_bad_export_and_onnx_inputs_are_one_line_errors(mnist_run, tmp_path, capsys):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a model")
    picture = _pngs(tmp_path / "digits", 1)[0]
    for argv, expected in (
        (["predict", bogus, picture], "cannot load ONNX model"),
        (["predict", tmp_path / "missing.onnx", picture], "does not exist"),
        (["export", mnist_run, "--opset", "3"], "--opset must be between 7 and 21"),
        (["export", tmp_path, "--format", "onnx"], "is not a cnnlab run directory"),
    ):
        code = main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("cnnlab: error: ") and expected in err and err.count("\n") == 1, err
