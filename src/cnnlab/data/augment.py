"""Batched augmentation on the data's device: tensor ops only, no per-image Python.

Every random choice for a batch is drawn at once from a ``torch.Generator``,
so a batch of 512 images costs a handful of kernel launches. Inputs and
outputs are float images in [0, 1] of shape (N, C, H, W), before
normalisation.

>>> import torch
>>> from cnnlab.config import AugmentConfig
>>> aug = BatchAugment(AugmentConfig(crop_padding=4, hflip=0.5))
>>> out = aug(torch.rand(8, 3, 32, 32), torch.Generator().manual_seed(0))
>>> out.shape
torch.Size([8, 3, 32, 32])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cnnlab.config import AugmentConfig
from cnnlab.data import augment_more
from cnnlab.errors import CnnlabError


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def random_crop(x: torch.Tensor, padding: int, mode: str, gen: torch.Generator) -> torch.Tensor:
    """Pad by ``padding`` (zero or reflect) and cut a random H x W window per image.

    Two ``gather`` passes (rows, then columns) pick each image's window; this
    measured 1.5x faster on the CPU than one 4-D advanced-indexing gather.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4, mode="reflect" if mode == "reflect" else "constant")
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=gen, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (N, 1, H, 1)
    out = padded.gather(2, rows.expand(n, c, h, padded.shape[3]))  # (N, C, H, W + 2p)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (N, 1, 1, W)
    return out.gather(3, cols.expand(n, c, h, w))  # (N, C, H, W)


def random_hflip(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=gen, device=x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def alternate_flip_mask(index: torch.Tensor, epoch: int, seed: int = 0) -> torch.Tensor:
    """Alternating flips (airbench): image ``i`` is mirrored in epochs where ``(b_i + epoch)`` is odd.

    ``b_i`` is a fixed pseudo-random bit per image (a hash of its index and the seed), so half the
    images start flipped and every image is seen both ways in any two consecutive epochs, with
    less repetition than independent coin flips.

    >>> alternate_flip_mask(torch.arange(4), 0).tolist() != alternate_flip_mask(torch.arange(4), 1).tolist()
    True
    """
    mixed = (index.long() * 0x9E3779B1 + seed * 0x85EBCA6B + 0x165667B1) & 0xFFFFFFFF  # (N,) 32-bit hash
    bit = (mixed >> 15) & 1
    return ((bit + epoch) % 2).bool()


def base_grid(h: int, w: int, device, dtype) -> torch.Tensor:
    """(H*W, 3) homogeneous pixel-centre coordinates in [-1, 1] (``align_corners=False``)."""
    ys = (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy, torch.ones_like(gx)], -1).view(h * w, 3)


def affine_warp(x: torch.Tensor, angle, zoom, shear, tx, ty) -> torch.Tensor:
    """Warp each image by its own rotation (radians), zoom (relative), shear (radians) and shift.

    Every parameter is a (N,) tensor; shifts are in grid units (2 = the whole image).
    The grid is one broadcast matmul of the base grid with each image's 2x3
    matrix: on a CPU this measured ~3x faster than ``affine_grid``.
    """
    n, _, h, w = x.shape
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    inv_scale = 1.0 / (1.0 + zoom)
    # theta maps output coords to input coords: (rotation @ shear) / scale, plus the shift.
    theta = torch.stack([cos * inv_scale, (cos * tan - sin) * inv_scale, tx,
                         sin * inv_scale, (sin * tan + cos) * inv_scale, ty], 1).view(n, 2, 3)
    grid = base_grid(h, w, x.device, x.dtype) @ theta.to(x.dtype).transpose(1, 2)  # (N, H*W, 2)
    return F.grid_sample(x, grid.view(n, h, w, 2), mode="bilinear", padding_mode="zeros", align_corners=False)


def random_affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Rotation, zoom, shear and shift drawn uniformly within the config's limits, in one warp."""
    limits = torch.tensor([cfg.rotate * math.pi / 180, cfg.scale, cfg.shear * math.pi / 180,
                           2 * cfg.translate, 2 * cfg.translate], device=x.device)  # shifts in grid units
    draws = (torch.rand(x.shape[0], 5, generator=gen, device=x.device) * 2 - 1) * limits  # one draw
    return affine_warp(x, *draws.unbind(1))


def _grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype)
        return (x * weights[None, :, None, None]).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def color_jitter(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Brightness (scale), contrast (blend with the mean grey) and saturation (blend with grey)."""
    n, dev = x.shape[0], x.device
    if cfg.brightness > 0:
        x = x * _uniform(n, 1 - cfg.brightness, 1 + cfg.brightness, gen, dev)[:, None, None, None]
    if cfg.contrast > 0:
        factor = _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, gen, dev)[:, None, None, None]
        mean = _grey(x).mean(dim=(2, 3), keepdim=True)
        x = (x - mean) * factor + mean
    if cfg.saturation > 0 and x.shape[1] == 3:
        factor = _uniform(n, 1 - cfg.saturation, 1 + cfg.saturation, gen, dev)[:, None, None, None]
        grey = _grey(x)
        x = (x - grey) * factor + grey
    return x.clamp_(0.0, 1.0)


def random_erase(x: torch.Tensor, p: float, size: float, gen: torch.Generator) -> torch.Tensor:
    """Cutout: zero a square of side ``size`` * H at a random place in a fraction ``p`` of images."""
    n, _, h, w = x.shape
    dev = x.device
    side_h, side_w = max(1, round(size * h)), max(1, round(size * w))
    # Centres anywhere in the image, so a square may hang over the border, as in cutout.
    top = torch.randint(0, h, (n,), generator=gen, device=dev)[:, None, None] - side_h // 2
    left = torch.randint(0, w, (n,), generator=gen, device=dev)[:, None, None] - side_w // 2
    on = (torch.rand(n, generator=gen, device=dev) < p)[:, None, None]
    ys = torch.arange(h, device=dev)[None, :, None]
    xs = torch.arange(w, device=dev)[None, None, :]
    inside = (ys >= top) & (ys < top + side_h) & (xs >= left) & (xs < left + side_w) & on  # (N, H, W)
    return x.masked_fill(inside[:, None], 0.0)


class BatchAugment:
    """Applies the augmentations enabled in an :class:`AugmentConfig` to whole batches."""

    def __init__(self, cfg: AugmentConfig, lighting: tuple[list[float], list[list[float]]] | None = None) -> None:
        self.cfg = cfg
        self.lighting = lighting  # pca_lighting's colour basis: augment_more.colour_basis(training images)

    @classmethod
    def for_images(cls, cfg: AugmentConfig, train_images: torch.Tensor) -> "BatchAugment":
        """The augmentation of a training split: PCA lighting's basis from its uint8 images, when enabled."""
        if not cfg.pca_lighting:
            return cls(cfg)
        return cls(cfg, augment_more.colour_basis(train_images))

    @property
    def active(self) -> bool:
        c = self.cfg
        return any([c.crop_padding, c.hflip, c.rotate, c.scale, c.shear, c.translate, c.brightness,
                    c.contrast, c.saturation, c.noise_std, c.erase_prob, c.random_resized_crop, c.hue,
                    c.pca_lighting])

    def __call__(self, x: torch.Tensor, gen: torch.Generator, index: torch.Tensor | None = None,
                 epoch: int = 0, seed: int = 0) -> torch.Tensor:
        """Augment ``x``; ``index`` (the images' positions in the split) and ``epoch`` drive alternating flips."""
        c = self.cfg
        if c.crop_padding:
            x = random_crop(x, c.crop_padding, c.crop_mode, gen)
        if c.random_resized_crop:
            x = augment_more.random_resized_crop(x, c.random_resized_crop, c.resized_crop_ratio, gen)
        if c.hflip and c.flip_mode == "alternate" and index is not None:
            flip = alternate_flip_mask(index.to(x.device), epoch, seed)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        elif c.hflip:
            x = random_hflip(x, c.hflip, gen)
        if c.rotate or c.scale or c.shear or c.translate:
            x = random_affine(x, c, gen)
        if c.brightness or c.contrast or c.saturation:
            x = color_jitter(x, c, gen)
        if c.hue or c.pca_lighting:
            x = _texts_colour(x, c, self.lighting, gen)
        if c.noise_std:
            noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            x = (x + noise * c.noise_std).clamp_(0.0, 1.0)
        if c.erase_prob:
            x = random_erase(x, c.erase_prob, c.erase_size, gen)
        return x


def _texts_colour(x: torch.Tensor, c: AugmentConfig, lighting, gen: torch.Generator) -> torch.Tensor:
    """Hue jitter, then PCA lighting (:mod:`cnnlab.data.augment_more`)."""
    if c.hue:
        x = augment_more.random_hue(x, c.hue, gen)
    if c.pca_lighting:
        if lighting is None:
            raise CnnlabError("data.augment.pca_lighting needs the training set's colour basis; build the "
                              "augmentation with BatchAugment.for_images(cfg, training_images)")
        x = augment_more.pca_lighting(x, c.pca_lighting, lighting, gen)
    return x
