"""``cnnlab profile``: JSON contract, options after the model name, --compare, run directories, errors."""

from __future__ import annotations

import json

import pytest
import yaml

from cnnlab.cli import main


def run_json(capsys, *argv: str) -> dict:
    assert main(["profile", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)  # exactly one JSON object on stdout


def test_published_resnet18_from_the_command_line(capsys):
    report = run_json(capsys, "resnet18", "--input", "3,224,224", "num_classes=1000", "variant=imagenet",
                      "--no-timing", "--no-layers")
    assert report["parameters"] == 11_689_512 and report["macs"] == 1_814_073_344
    assert report["flops"] == 2 * report["macs"] and report["input_size"] == [3, 224, 224]
    assert report["timing"] is None and "layers" not in report


def test_layers_and_timing_in_json(capsys):
    report = run_json(capsys, "lenet5", "--batch", "2", "--warmup", "1", "--repeats", "2")
    assert report["parameters"] == 61_706 and report["batch_size"] == 2
    assert report["macs"] == 2 * report["macs_per_image"] == 2 * 416_520
    first = report["layers"][0]
    assert first["name"] == "features.0" and first["output_shape"] == [2, 6, 28, 28] and first["macs"] == 2 * 117_600
    assert set(report["timing"]) == {"inference", "train_step"}
    assert report["timing"]["train_step"]["repeats"] == 2


def test_compare_gives_ratios(capsys):
    report = run_json(capsys, "resnet18", "--input", "3,16,16", "--compare", "mobilenet_v2 width_mult=0.5",
                      "--no-timing", "--no-layers")
    a, b = report["models"]
    assert (a["model"], b["model"]) == ("resnet18", "mobilenet_v2")
    assert report["ratios"]["parameters"] == pytest.approx(b["parameters"] / a["parameters"])
    assert report["ratios"]["macs_per_image"] < 0.1


def test_table_output(capsys):
    assert main(["profile", "convnet", "--input", "1,28,28", "filters=8", "--no-timing"]) == 0
    out = capsys.readouterr().out
    assert "features.0.0" in out and "Conv2d" in out and "1 MAC = 2 FLOPs" in out and out.count("total") >= 1


def _run_dir(path):
    config = {"name": "r", "data": {"name": "mnist"}, "model": {"name": "convnet", "filters": 8, "blocks": 2}}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "summary.json").write_text(json.dumps({"input_size": [1, 20, 20], "num_classes": 5}))
    return path


def test_run_directory_without_checkpoint(tmp_path, capsys):
    report = run_json(capsys, str(_run_dir(tmp_path)), "--no-timing")
    assert report["input_size"] == [1, 20, 20] and report["output_shape"] == [1, 5]


def test_run_directory_with_checkpoint(tmp_path, capsys):
    from cnnlab.models import create_model
    from cnnlab.checkpoint import save_checkpoint

    model = create_model("convnet", filters=8, blocks=2, in_channels=1, num_classes=3, image_size=20)
    save_checkpoint(_run_dir(tmp_path) / "final.pt", {
        "model": model.state_dict(), "input_size": [1, 20, 20], "classes": ["a", "b", "c"]})
    report = run_json(capsys, str(tmp_path), "--no-timing")  # the checkpoint's 3 classes win over the summary's 5
    assert report["output_shape"] == [1, 3]
    assert report["parameters"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["resnet"], "nearest: resnet"),
        (["vgg11", "--input", "3,16,16"], "layer 'features.28' (MaxPool2d)"),
        (["vgg11", "--input", "3,16,16"], "smallest square input it takes is 3x32x32"),
        (["resnet18", "--input", "3x32"], "three positive integers"),
        (["resnet18", "varient=cifar"], "did you mean 'variant'"),
        (["resnet18", "--batch", "0"], "--batch 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(["profile", *argv, "--no-timing"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
