"""Patch-whitening initialisation of a first convolution (the airbench trick).

The first conv sees k x k patches of the input. Let ``S`` be the covariance of those
patches over the training images (a d x d matrix, d = C*k*k) with eigenvalues ``l_i`` and
eigenvectors ``e_i``. A filter ``e_i / sqrt(l_i + eps)`` maps a patch to its coordinate along
``e_i`` at unit variance, so d such filters turn patches into decorrelated, unit-variance
features (covariance ~ identity): the network starts from whitened input and, with the layer
frozen, never spends steps learning it.

Filters are laid out largest eigenvalue first. A conv with at least 2d outputs gets
``[E, -E]`` (both signs survive a ReLU, as in airbench), at least d gets ``E``, fewer gets the
top ``out`` directions; any remaining filters keep their random initialisation. A bias, if
the conv has one, is set to ``-W @ mean`` so whitened outputs are centred too.

>>> import torch
>>> conv = torch.nn.Conv2d(1, 4, 2, bias=False)
>>> images = torch.randn(64, 1, 8, 8)
>>> info = whiten_conv_(conv, images, eps=1e-6)
>>> info["filters"], info["patch_dim"]
(4, 4)
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import CnnlabError


def image_patches(images: torch.Tensor, kernel: tuple[int, int]) -> torch.Tensor:
    """Every k x k patch of ``images`` (N, C, H, W) as rows: (N * L, C * kh * kw), L patches per image."""
    cols = nn.functional.unfold(images, kernel)  # (N, C*kh*kw, L)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])  # (N*L, d)


def patch_whitening(patches: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(W, mean, eigenvalues)``: rows of ``W`` (d, d) whiten ``patches`` (M, d), largest eigenvalue first."""
    patches = patches.double()  # covariance of ~1e6 patches: float64 keeps small eigenvalues meaningful
    mean = patches.mean(0)
    centred = patches - mean
    cov = centred.T @ centred / max(len(patches) - 1, 1)  # (d, d)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending; columns are eigenvectors
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    w = eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]  # (d, d): row i = e_i / sqrt(l_i+eps)
    return w, mean, eigenvalues


@torch.no_grad()
def whiten_conv_(conv: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4, max_images: int = 10_000,
                 generator: torch.Generator | None = None) -> dict:
    """Set ``conv``'s filters from the patch statistics of ``images`` (N, C, H, W), as the model sees them.

    At most ``max_images`` images (a random subset) are used. Returns a summary:
    ``{"filters": filters set, "patch_dim": d, "images": images used, "top_eigenvalue": ...}``.
    """
    if not isinstance(conv, nn.Conv2d) or conv.groups != 1 or conv.dilation != (1, 1):
        raise CnnlabError("train.whitening needs the model's first layer to be a plain nn.Conv2d "
                          f"(groups=1, no dilation), got {conv!r}; set train.whitening=none")
    if images.ndim != 4 or images.shape[1] != conv.in_channels:
        raise CnnlabError(f"whitening images must be (N, {conv.in_channels}, H, W), got {tuple(images.shape)}")
    if len(images) > max_images:
        pick = torch.randperm(len(images), generator=generator)[:max_images].to(images.device)
        images = images[pick]
    patches = image_patches(images.float(), conv.kernel_size)
    d = patches.shape[1]
    if len(patches) < d:
        raise CnnlabError(f"whitening a {conv.kernel_size} conv needs at least {d} patches, got {len(patches)}")
    w, mean, eigenvalues = patch_whitening(patches, eps)
    out = conv.out_channels
    if out >= 2 * d:
        rows = torch.cat([w, -w])
    elif out >= d:
        rows = w
    else:
        rows = w[:out]
    weight = rows.view(len(rows), *conv.weight.shape[1:]).to(conv.weight.dtype)  # (filters, C, kh, kw)
    conv.weight[: len(rows)] = weight.to(conv.weight.device)
    if conv.bias is not None:
        conv.bias[: len(rows)] = -(rows @ mean).to(conv.bias.dtype).to(conv.bias.device)
    return {"filters": len(rows), "patch_dim": d, "images": len(images),
            "top_eigenvalue": float(eigenvalues[0]), "smallest_eigenvalue": float(eigenvalues[-1])}


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` the model registers (its input layer in every cnnlab model)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise CnnlabError("train.whitening needs a model with a convolution; set train.whitening=none")


def apply_whitening(model: nn.Module, images: torch.Tensor, mean: torch.Tensor | None, std: torch.Tensor | None,
                    mode: str, eps: float, seed: int = 0, max_images: int = 10_000) -> dict:
    """``train.whitening=init|frozen``: whiten the model's first conv; ``frozen`` also stops it learning.

    ``images`` is the training split as stored (uint8 (N, C, H, W)); a seeded subset of at most
    ``max_images`` is scaled to [0, 1] and normalised with ``mean``/``std`` (shaped (1, C, 1, 1)),
    as the model sees it, before its patches are measured.
    """
    conv = first_conv(model)
    gen = torch.Generator().manual_seed(seed)
    if len(images) > max_images:
        images = images[torch.randperm(len(images), generator=gen)[:max_images].to(images.device)]
    x = images.float() / 255.0  # (n, C, H, W)
    if mean is not None:
        x = (x - mean) / std
    info = whiten_conv_(conv, x, eps, max_images=max_images, generator=gen)
    if mode == "frozen":
        for p in conv.parameters():
            p.requires_grad_(False)
    return {**info, "mode": mode}
