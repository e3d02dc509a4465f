"""Per-channel mean and standard deviation of uint8 images, on the [0, 1] scale."""

from __future__ import annotations

import torch


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Mean and std per channel of (N, C, H, W) uint8 images, in float64, chunked.

    >>> x = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)  # one 1x2 image
    >>> channel_stats(x)
    ([0.5], [0.5])
    """
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    count = 0
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk].to(torch.float64).div_(255.0)
        total += part.sum(dim=(0, 2, 3)).cpu()
        total_sq += part.pow(2).sum(dim=(0, 2, 3)).cpu()
        count += part.numel() // channels
    mean = total / count
    std = (total_sq / count - mean.pow(2)).clamp_min(0).sqrt()
    return [round(v, 6) for v in mean.tolist()], [round(max(v, 1e-6), 6) for v in std.tolist()]
