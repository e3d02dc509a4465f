"""Batched augmentation checked against per-image references."""

import math

import torch
import torch.nn.functional as F

from cnnlab.config import AugmentConfig
from cnnlab.data.augment import BatchAugment, affine_warp, random_crop, random_erase, random_hflip
from cnnlab.data.loader import DeviceBatches
from cnnlab.data.splits import stratified_split


def test_random_crop_equals_slicing_the_padded_image():
    x = torch.rand(6, 3, 8, 8)
    gen = torch.Generator().manual_seed(1)
    out = random_crop(x, 2, "zero", gen)
    gen = torch.Generator().manual_seed(1)
    dy = torch.randint(0, 5, (6,), generator=gen)
    dx = torch.randint(0, 5, (6,), generator=gen)
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(6):
        torch.testing.assert_close(out[i], padded[i, :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8])


def test_reflect_crop_has_no_black_border():
    x = torch.rand(16, 1, 6, 6) * 0.5 + 0.5  # all pixels >= 0.5
    out = random_crop(x, 3, "reflect", torch.Generator().manual_seed(0))
    assert out.min() >= 0.5


def test_hflip_flips_exactly_the_chosen_images():
    x = torch.rand(50, 2, 4, 5)
    out = random_hflip(x, 0.5, torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, xi.flip(2)) for o, xi in zip(out, x)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x)]
    assert all(f != k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 40


def test_zero_affine_is_identity():
    x = torch.rand(4, 3, 10, 10)
    aug = BatchAugment(AugmentConfig(rotate=1e-9))
    torch.testing.assert_close(aug(x, torch.Generator().manual_seed(0)), x, atol=1e-5, rtol=0)


def test_rotation_by_180_degrees_matches_torch_rot90_twice():
    x = torch.rand(3, 1, 9, 9)
    zero = torch.zeros(3)
    out = affine_warp(x, torch.full((3,), math.pi), zero, zero, zero, zero)
    torch.testing.assert_close(out, torch.rot90(x, 2, dims=(2, 3)), atol=1e-5, rtol=0)


def test_shift_by_whole_pixels_matches_slicing():
    x = torch.rand(2, 1, 8, 8)
    zero = torch.zeros(2)
    # A shift of 2 pixels is 2 * (2 / 8) = 0.5 grid units; the output samples the input 2 px to the right.
    out = affine_warp(x, zero, zero, zero, torch.full((2,), 0.5), zero)
    torch.testing.assert_close(out[..., :6], x[..., 2:], atol=1e-5, rtol=0)
    assert out[..., 6:].abs().max() == 0  # zero padding enters from the right


def test_erase_zeroes_a_square_of_the_requested_size():
    x = torch.ones(20, 1, 10, 10)
    out = random_erase(x, 1.0, 0.4, torch.Generator().manual_seed(0))
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 16 and zeros.min() > 0  # a 4x4 square, clipped at the border


def test_colour_jitter_and_noise_stay_in_range_and_are_seeded():
    cfg = AugmentConfig(brightness=0.5, contrast=0.5, saturation=0.5, noise_std=0.2)
    x = torch.rand(8, 3, 6, 6)
    a = BatchAugment(cfg)(x, torch.Generator().manual_seed(3))
    b = BatchAugment(cfg)(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)


def test_loader_order_and_augmentation_are_pure_functions_of_seed_epoch_batch():
    images = torch.randint(0, 255, (100, 1, 8, 8), dtype=torch.uint8)
    labels = torch.arange(100)
    cfg = AugmentConfig(crop_padding=2, hflip=0.5)
    make = lambda: DeviceBatches(images, labels, 16, shuffle=True, drop_last=True,  # noqa: E731
                                 augment=BatchAugment(cfg), mean=[0.5], std=[0.25], seed=7)
    full = list(make().epoch(2))
    resumed = list(make().epoch(2, start_batch=3))
    assert len(full) == 6 and len(resumed) == 3
    for (xa, ya), (xb, yb) in zip(full[3:], resumed):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(full[0][1], list(make().epoch(3))[0][1])  # another epoch, another order
    assert sorted(torch.cat([y for _, y in make().epoch(0)]).tolist()) != list(range(96))  # shuffled


def test_stratified_split_keeps_class_shares():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20).numpy()
    keep, held = stratified_split(labels, 0.1, seed=0)
    assert sorted(torch.bincount(torch.from_numpy(labels[held])).tolist()) == [2, 3, 5]
    assert len(set(keep) & set(held)) == 0 and len(keep) + len(held) == 100
    again, _ = stratified_split(labels, 0.1, seed=0)
    assert (keep == again).all()
