"""The shared drawing helpers (report/plots.py)."""

import torch

from cnnlab.report import evaluation, plots


def test_image_grid_has_an_axis_per_image_in_rows_of_cols(tmp_path):
    plt, fig, axes = plots.image_grid_axes(10, cols=4)
    assert len(axes) == 12 and fig.get_size_inches()[1] > fig.get_size_inches()[0] / 4  # 3 rows of 4
    plots.show_image(axes[0], torch.full((1, 5, 5), 200, dtype=torch.uint8))  # greyscale
    plots.show_image(axes[1], torch.zeros(3, 5, 6, dtype=torch.uint8))  # RGB, drawn as (H, W, C)
    assert axes[0].images[0].get_array().shape == (5, 5) and axes[1].images[0].get_array().shape == (5, 6, 3)
    fig.savefig(tmp_path / "grid.png")
    plt.close(fig)
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_evaluation_draws_with_the_shared_helpers():
    assert evaluation.image_grid_axes is plots.image_grid_axes and evaluation.show_image is plots.show_image
