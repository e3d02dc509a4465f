"""Drawing helpers shared by every figure: a headless pyplot and grids of images.

matplotlib is imported when a figure is drawn, never when this module is imported.
"""

from __future__ import annotations


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_grid_axes(count: int, cols: int = 8):
    """A figure with ``count`` image axes in rows of ``cols`` (axes switched off).

    Returns ``(plt, fig, axes)`` with ``axes`` a flat list of at least ``count`` axes.
    """
    plt = pyplot()
    rows = max(1, -(-count // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 2.2 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return plt, fig, list(axes.flat)


def show_image(ax, image_uint8) -> None:
    """Draw one (C, H, W) uint8 image tensor: greyscale for one channel, RGB for three."""
    img = image_uint8.cpu()
    if img.shape[0] == 1:
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(img.permute(1, 2, 0).numpy())  # (H, W, C) for imshow
