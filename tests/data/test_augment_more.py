"""Random-resized crop, hue jitter and PCA lighting, each against a NumPy reference written pixel by pixel."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch

from cnnlab.config import AugmentConfig, load_config
from cnnlab.data.augment import BatchAugment
from cnnlab.data.augment_more import (colour_basis, crop_resize, hue_shift, pca_lighting, random_hue,
                                      resized_crop_params)
from cnnlab.data.loader import DeviceBatches


def _bilinear_border(img: np.ndarray, px: float, py: float) -> np.ndarray:
    """img (C, H, W) sampled at pixel coordinates (px, py), coordinates clamped to the image (border)."""
    _, h, w = img.shape
    px, py = min(max(px, 0.0), w - 1.0), min(max(py, 0.0), h - 1.0)
    x0, y0 = int(np.floor(px)), int(np.floor(py))
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    fx, fy = px - x0, py - y0
    return ((1 - fx) * (1 - fy) * img[:, y0, x0] + fx * (1 - fy) * img[:, y0, x1]
            + (1 - fx) * fy * img[:, y1, x0] + fx * fy * img[:, y1, x1])


def test_resized_crop_matches_a_per_pixel_numpy_resize():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 9, 12)
    cw, ch, cx, cy = resized_crop_params(3, (9, 12), (0.2, 0.9), (0.5, 2.0), gen, "cpu")
    ours = crop_resize(x, cw, ch, cx, cy).numpy()
    for n in range(3):
        left, top = cx[n].item() - cw[n].item() / 2, cy[n].item() - ch[n].item() / 2
        for i in range(9):
            for j in range(12):
                # output pixel centre (j + 0.5, i + 0.5) of 12 x 9 maps to the crop linearly; back to centres (-0.5)
                px = left + (j + 0.5) * cw[n].item() / 12 - 0.5
                py = top + (i + 0.5) * ch[n].item() / 9 - 0.5
                np.testing.assert_allclose(ours[n, :, i, j], _bilinear_border(x[n].numpy(), px, py), atol=1e-5)


def test_resized_crop_draws_stay_in_their_ranges():
    gen = torch.Generator().manual_seed(1)
    cw, ch, cx, cy = resized_crop_params(20000, (32, 32), (0.3, 0.8), (0.75, 4 / 3), gen, "cpu")
    area, aspect = cw * ch / 1024, cw / ch
    assert area.min() >= 0.3 - 1e-6 and area.max() <= 0.8 + 1e-6  # never clipped here: sqrt(0.8 * 4/3) < 1
    assert aspect.min() >= 0.75 - 1e-6 and aspect.max() <= 4 / 3 + 1e-6
    assert area.mean().item() == pytest.approx(0.55, abs=0.01)  # uniform in area
    assert torch.log(aspect).mean().item() == pytest.approx(0.0, abs=0.01)  # log-uniform ratio, symmetric range
    assert ((cx - cw / 2) >= -1e-4).all() and ((cx + cw / 2) <= 32 + 1e-4).all()  # the crop lies inside the image


def test_hue_shift_matches_colorsys():
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(4, 3, 5, 6, generator=gen)
    x[0, :, 0, 0] = torch.tensor([0.5, 0.5, 0.5])  # grey: no hue
    x[1, :, 0, 0] = torch.tensor([1.0, 1.0, 0.0])  # ties between channels
    shift = torch.tensor([0.1, -0.25, 0.5, 0.0])
    ours = hue_shift(x, shift).numpy()
    for n in range(4):
        for i in range(5):
            for j in range(6):
                h, s, v = colorsys.rgb_to_hsv(*x[n, :, i, j].tolist())
                ref = colorsys.hsv_to_rgb((h + shift[n].item()) % 1.0, s, v)
                np.testing.assert_allclose(ours[n, :, i, j], ref, atol=1e-5)
    grey = torch.rand(2, 1, 4, 4)
    assert torch.equal(random_hue(grey, 0.3, torch.Generator().manual_seed(0)), grey)


def test_colour_basis_and_pca_lighting_against_numpy():
    gen = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (20, 3, 6, 6), generator=gen, dtype=torch.int64)
    images[:, 1] = (images[:, 0] * 0.7 + images[:, 1] * 0.3).long()  # correlated channels
    images = images.to(torch.uint8)
    values, vectors = colour_basis(images, chunk=7)  # chunked: the same as all at once
    pixels = images.double().div(255).permute(1, 0, 2, 3).reshape(3, -1).numpy()
    ref_values, ref_vectors = np.linalg.eigh(np.cov(pixels, bias=True))
    order = np.argsort(ref_values)[::-1]
    np.testing.assert_allclose(values, ref_values[order], rtol=1e-9, atol=1e-12)
    for k in range(3):  # eigenvectors up to sign
        assert abs(np.dot(np.array(vectors)[:, k], ref_vectors[:, order[k]])) == pytest.approx(1.0, abs=1e-9)

    x = torch.rand(5, 3, 4, 4) * 0.5 + 0.25
    ours = pca_lighting(x, 0.1, (values, vectors), torch.Generator().manual_seed(9)).numpy()
    alpha = (torch.randn(5, 3, generator=torch.Generator().manual_seed(9)) * 0.1).numpy()  # the same draw
    for n in range(5):
        shift = np.array(vectors) @ (alpha[n] * np.sqrt(values))
        np.testing.assert_allclose(ours[n], np.clip(x[n].numpy() + shift[:, None, None], 0, 1), atol=1e-6)


def test_augmentations_reproduce_from_seed_epoch_and_batch():
    cfg = load_config(None, ["data.augment.random_resized_crop=[0.3,1]", "data.augment.hue=0.2",
                             "data.augment.pca_lighting=0.2"]).data.augment
    images = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    labels = torch.zeros(40, dtype=torch.int64)

    def batches(seed):
        return DeviceBatches(images, labels, 8, shuffle=True, augment=BatchAugment.for_images(cfg, images), seed=seed)

    first = [b[0] for b in batches(0).epoch(1)]
    again = [b[0] for b in batches(0).epoch(1)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    resumed = [b[0] for b in batches(0).epoch(1, start_batch=2)]  # batch 2 alone is batch 2 of the whole epoch
    assert torch.equal(resumed[0], first[2])
    assert not torch.equal(first[0], [b[0] for b in batches(0).epoch(2)][0])
    assert not torch.equal(first[0], [b[0] for b in batches(1).epoch(1)][0])
    assert BatchAugment(AugmentConfig(hue=0.1)).active and not BatchAugment(AugmentConfig()).active
    with pytest.raises(Exception, match="colour basis"):
        BatchAugment(AugmentConfig(pca_lighting=0.1))(torch.rand(2, 3, 4, 4), torch.Generator())


@pytest.mark.parametrize("override, message", [
    ("data.augment.random_resized_crop=[0.5,0.2]", "0 < min <= max <= 1"),
    ("data.augment.random_resized_crop=[0,1]", "0 < min <= max <= 1"),
    ("data.augment.random_resized_crop=[0.5]", "must have 2 values"),
    ("data.augment.resized_crop_ratio=[2,1]", "0 < min <= max <= 100"),
    ("data.augment.hue=0.6", "in [0, 0.5]"),
    ("data.augment.pca_lighting=-1", "in [0, 10]"),
])
def test_bad_values_are_one_line(tmp_path, capsys, override, message):
    from cnnlab.cli import main

    code = main(["train", "mnist-fast", override, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0] and not (tmp_path / "r").exists()


@pytest.mark.parametrize("key", ["random_resized_crop=[0.5,1]", "pca_lighting=0.1"])
def test_not_box_aware_ones_are_refused_for_detection(tmp_path, capsys, key):
    from cnnlab.cli import main

    code = main(["train", "detect-raccoon", f"data.augment.{key}", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"data.augment.{key.split('=')[0]} is not supported with task=detect" \
        in err[0] and not (tmp_path / "r").exists()
