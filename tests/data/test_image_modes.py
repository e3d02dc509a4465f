"""16-bit and other rare image modes decode like their 8-bit reference (Pillow's convert("L") clipped
16-bit greyscale to black and white) in folder datasets, predict and explain."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cnnlab.cli import main
from tests.conftest import pattern_image
from tests.image_modes import mode_copies, write_png


def picture(size: int = 16, seed: int = 0) -> np.ndarray:
    """A greyscale picture using the whole 0..255 range (a clipped copy would be visibly different)."""
    rng = np.random.default_rng(seed)
    return np.clip(pattern_image(seed % 3, size, rng).astype(int) + rng.integers(0, 35, (size, size)), 0, 255
                   ).astype(np.uint8)


@pytest.mark.parametrize("channels", [1, 3])
def test_every_rare_mode_decodes_to_its_8bit_reference(tmp_path, channels):
    from cnnlab.data.folder import decode_image

    grey = picture()
    for name, (path, reference) in mode_copies(grey, tmp_path).items():
        decoded = decode_image(path, 16, "resize", "L" if channels == 1 else "RGB")
        assert decoded.shape == (channels, 16, 16), name
        assert np.array_equal(decoded, np.stack([reference] * channels)), name


def test_arbitrary_16bit_values_keep_their_high_byte(tmp_path):
    from cnnlab.data.folder import decode_image

    wide = np.random.default_rng(1).integers(0, 65536, (9, 9)).astype(np.uint16)
    decoded = decode_image(write_png(tmp_path / "w.png", wide, 16), 9, "resize", "L")
    assert np.array_equal(decoded[0], (wide >> 8).astype(np.uint8))
    assert len(np.unique(decoded)) > 40  # was two values: 0 and 255


def test_a_folder_of_16bit_pngs_loads_as_its_8bit_copy(tmp_path):
    from cnnlab.config import DataConfig
    from cnnlab.data.datasets import load_dataset

    for depth in (8, 16):
        for label, name in enumerate(("a", "b", "c")):
            (tmp_path / str(depth) / name).mkdir(parents=True)
            for i in range(4):
                grey = picture(seed=3 * i + label)
                write_png(tmp_path / str(depth) / name / f"{i}.png",
                          grey if depth == 8 else grey.astype(np.uint16) * 257, depth)
    data = {d: load_dataset(DataConfig(name="folder", root=str(tmp_path / str(d)), cache_dir=str(tmp_path / "c")))
            for d in (8, 16)}
    assert data[16].input_size == data[8].input_size == (1, 16, 16)  # both are greyscale
    assert np.array_equal(data[16].train_x.numpy(), data[8].train_x.numpy())
    assert np.array_equal(data[16].test_x.numpy(), data[8].test_x.numpy())


def test_predict_and_explain_see_a_16bit_png_as_its_8bit_copy(mnist_run, tmp_path, capsys):
    from cnnlab.explain.workflow import load_image_files
    from cnnlab.runs import load_run

    digit = picture(28, seed=4)
    eight = write_png(tmp_path / "d8.png", digit, 8)
    sixteen = write_png(tmp_path / "d16.png", digit.astype(np.uint16) * 257, 16)
    outputs = []
    for path in (eight, sixteen):
        assert main(["predict", str(mnist_run), str(path), "-k", "10", "--json"]) == 0
        outputs.append(json.loads(capsys.readouterr().out)["predictions"][0]["top"])
    assert outputs[0] == outputs[1]
    run = load_run(mnist_run)
    batch = load_image_files(run, [str(eight), str(sixteen)], say=lambda m: None)
    assert np.array_equal(batch[0].numpy(), batch[1].numpy()) and len(np.unique(batch[1].numpy())) > 50
    out = tmp_path / "x"
    assert main(["explain", str(mnist_run), str(sixteen), "--methods", "saliency", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    assert any(out.iterdir())
