"""Three augmentations from the source texts, batched on the device like the others in :mod:`cnnlab.data.augment`.

- **Random-resized crop** ("randomly crop, then resize"; Inception's and torchvision's
  ``RandomResizedCrop``): per image a crop of area ``s * H * W`` with ``s`` uniform in ``scale`` and
  aspect ratio (width/height) log-uniform in ``ratio``, at a uniform position, resized back to
  H x W bilinearly. A crop larger than the image on one side is clipped to that side (torchvision
  instead retries up to 10 draws and falls back to a centre crop: a loop per image that a batch
  cannot have); the area then ends up smaller than drawn.
- **Hue jitter**: each image's hue is turned by ``h`` uniform in ``[-hue, hue]`` (fractions of the
  colour wheel) through an exact RGB -> HSV -> RGB round trip, the same arithmetic as Python's
  ``colorsys``; saturation and value are kept. Greyscale images have no hue and pass unchanged.
- **PCA lighting** (AlexNet's "RGB distortion"): the eigenvectors ``p_i`` and eigenvalues
  ``lambda_i`` of the training set's C x C pixel covariance (computed once, like the normalisation
  statistics, by :func:`colour_basis`) give each image one colour shift
  ``sum_i alpha_i sqrt(lambda_i) p_i`` with ``alpha_i ~ N(0, pca_lighting)``, added to every pixel:
  the shift is measured in the data's own standard deviation along each principal axis (AlexNet
  writes ``alpha_i lambda_i`` for pixel values on 0..255).

Every draw comes from the batch's generator, seeded from (seed, epoch, batch) by the loader, so a
run reproduces its augmented batches exactly.

>>> import torch
>>> x = torch.rand(4, 3, 8, 8)
>>> random_resized_crop(x, (1.0, 1.0), (1.0, 1.0), torch.Generator().manual_seed(0)).allclose(x, atol=1e-6)
True
>>> hue_shift(x, torch.zeros(4)).allclose(x, atol=1e-6)
True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError


def resized_crop_params(n: int, size_hw: tuple[int, int], scale: tuple[float, float], ratio: tuple[float, float],
                        gen: torch.Generator, device) -> tuple[torch.Tensor, ...]:
    """Per image (N,) each: crop width and height in pixels, and the crop centre (x, y) in pixels."""
    h, w = size_hw
    u = torch.rand(n, 4, generator=gen, device=device)  # one draw for the batch
    area = (scale[0] + u[:, 0] * (scale[1] - scale[0])) * h * w
    log_r = math.log(ratio[0]) + u[:, 1] * (math.log(ratio[1]) - math.log(ratio[0]))
    aspect = torch.exp(log_r)  # width / height
    cw = torch.sqrt(area * aspect).clamp(1.0, w)
    ch = torch.sqrt(area / aspect).clamp(1.0, h)
    cx = cw / 2 + u[:, 2] * (w - cw)  # the whole crop inside the image
    cy = ch / 2 + u[:, 3] * (h - ch)
    return cw, ch, cx, cy


def crop_resize(x: torch.Tensor, cw: torch.Tensor, ch: torch.Tensor, cx: torch.Tensor,
                cy: torch.Tensor) -> torch.Tensor:
    """Resize each image's crop (width ``cw``, height ``ch``, centre ``(cx, cy)`` in pixels) to the full size."""
    n, _, h, w = x.shape
    # output grid coordinate g in [-1, 1] samples input grid coordinate g * (crop / size) + centre offset
    sx, sy = cw / w, ch / h
    tx, ty = 2 * cx / w - 1, 2 * cy / h - 1
    zero = torch.zeros_like(sx)
    theta = torch.stack([sx, zero, tx, zero, sy, ty], 1).view(n, 2, 3).to(x.dtype)
    grid = F.affine_grid(theta, [n, x.shape[1], h, w], align_corners=False)  # (N, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_resized_crop(x: torch.Tensor, scale: tuple[float, float], ratio: tuple[float, float],
                        gen: torch.Generator) -> torch.Tensor:
    """A random crop of each image (area fraction in ``scale``, aspect ratio in ``ratio``) resized back."""
    n, _, h, w = x.shape
    return crop_resize(x, *resized_crop_params(n, (h, w), scale, ratio, gen, x.device))


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> HSV in [0, 1] (hue as a fraction of the wheel), as ``colorsys``."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    hue = torch.where(r == maxc, bc - gc, torch.where(g == maxc, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.where(delta > 0, (hue / 6.0) % 1.0, torch.zeros_like(hue))
    sat = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    return torch.stack([hue, sat, maxc], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) HSV -> RGB, the inverse of :func:`rgb_to_hsv` (``colorsys.hsv_to_rgb``)."""
    h, s, v = x.unbind(1)
    sector = torch.floor(h * 6.0)
    f = h * 6.0 - sector
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    sector = sector.long() % 6  # (N, H, W) in 0..5
    table = torch.stack([torch.stack(c, 1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v),
                                                       (v, p, q))], 0)  # (6, N, 3, H, W)
    return table.gather(0, sector[None, :, None].expand(1, -1, 3, -1, -1))[0]


def hue_shift(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Turn each RGB image's hue by ``shift`` (N,) fractions of the colour wheel."""
    hsv = rgb_to_hsv(x)
    hue = (hsv[:, 0] + shift[:, None, None]) % 1.0
    return hsv_to_rgb(torch.stack([hue, hsv[:, 1], hsv[:, 2]], 1)).clamp_(0.0, 1.0)


def random_hue(x: torch.Tensor, hue: float, gen: torch.Generator) -> torch.Tensor:
    """Hue jitter, uniform in ``[-hue, hue]`` per image; greyscale images are returned unchanged."""
    if x.shape[1] != 3:
        return x
    shift = (torch.rand(x.shape[0], generator=gen, device=x.device) * 2 - 1) * hue
    return hue_shift(x, shift.to(x.dtype))


@torch.no_grad()
def colour_basis(images: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[list[float]]]:
    """``(eigenvalues (C,), eigenvectors (C, C) as columns)`` of the pixel covariance of uint8 (N, C, H, W) images
    on the [0, 1] scale, in float64, chunked like :func:`cnnlab.data.stats.channel_stats`; largest first."""
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    outer = torch.zeros(c, c, dtype=torch.float64)
    count = 0
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk].to(torch.float64).div_(255.0).transpose(0, 1).reshape(c, -1).cpu()
        total += part.sum(1)
        outer += part @ part.T
        count += part.shape[1]
    if count == 0:
        raise CnnlabError("data.augment.pca_lighting needs training images to compute their colour covariance")
    mean = total / count
    cov = outer / count - torch.outer(mean, mean)  # (C, C)
    values, vectors = torch.linalg.eigh(cov)  # ascending
    order = torch.argsort(values, descending=True)
    return values[order].clamp_min(0).tolist(), vectors[:, order].tolist()


def pca_lighting(x: torch.Tensor, std: float, basis: tuple[list[float], list[list[float]]],
                 gen: torch.Generator) -> torch.Tensor:
    """AlexNet lighting: add ``P (alpha * sqrt(lambda))`` per image, ``alpha ~ N(0, std)``, then clip to [0, 1]."""
    values, vectors = basis
    lam = torch.tensor(values, device=x.device, dtype=torch.float32)  # (C,)
    p = torch.tensor(vectors, device=x.device, dtype=torch.float32)  # (C, C), columns are axes
    if p.shape[0] != x.shape[1]:
        raise CnnlabError(f"the colour basis has {p.shape[0]} channels, the images {x.shape[1]}")
    alpha = torch.randn(x.shape[0], len(values), generator=gen, device=x.device) * std  # (N, C)
    shift = (alpha * lam.sqrt()) @ p.T  # (N, C)
    return (x + shift.to(x.dtype)[:, :, None, None]).clamp_(0.0, 1.0)
