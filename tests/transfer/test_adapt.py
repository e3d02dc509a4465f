"""Input adaptation: data converted to what pretrained weights were trained on (channels, size, normalisation)."""

from __future__ import annotations

import torch

from cnnlab.runs import load_run
from cnnlab.transfer.adapt import adapt_images
from tests.transfer.conftest import train_cli


def test_channels_and_size_convert_exactly():
    grey = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    rgb = adapt_images(grey, (3, 8, 8))
    assert rgb.shape == (5, 3, 8, 8) and all(torch.equal(rgb[:, i], grey[:, 0]) for i in range(3))
    colour = torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 4, 4).contiguous()
    assert adapt_images(colour, (1, 4, 4)).unique().tolist() == [76]  # 0.299 * 255, Pillow's "L" value
    flat = torch.full((3, 1, 28, 28), 200, dtype=torch.uint8)
    assert torch.equal(adapt_images(flat, (1, 32, 32)), torch.full((3, 1, 32, 32), 200, dtype=torch.uint8))
    assert adapt_images(grey, (1, 8, 8)) is grey  # nothing to do: the very same tensor


def test_greyscale_digits_train_from_colour_weights_and_evaluate(cifar_run, tmp_path, capsys):
    """MNIST (1x28x28) fine-tuned from a 3x32x32 CIFAR run: converted, normalised with the run's statistics."""
    backbone = load_run(cifar_run)
    out = tmp_path / "digits"
    summary = train_cli("train", "folder-convnet", "data.name=mnist", f"model.weights={cifar_run}",
                        "model.filters=8", "data.limit_train=512", "data.val=none", "train.epochs=1",
                        "train.plots=false", "train.early_stopping.patience=null", "--out", out)
    assert "adapting mnist from 1x28x28 to the weights' 3x32x32 input" in capsys.readouterr().err
    assert summary["input_size"] == [3, 32, 32] and summary["status"] == "completed"
    assert summary["mean"] == backbone.mean and summary["std"] == backbone.std
    report = train_cli("eval", out)  # eval converts the test digits the same way
    assert report["count"] == 10000 and abs(report["test_accuracy"] - summary["test_accuracy"]) < 1e-6
