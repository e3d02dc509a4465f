"""Target assignment on hand-made cases: the worked example of docs/detection.md, computed by hand."""

import torch

from cnnlab.detect.model import grid_points
from cnnlab.detect.targets import assign, level_ranges, pad_targets


def _grid(strides, size):
    sizes = [(size // s, size // s) for s in strides]
    points = grid_points(strides, sizes)
    point_strides = torch.cat([torch.full((h * w,), float(s)) for s, (h, w) in zip(strides, sizes)])
    return points, point_strides


def test_worked_example_from_the_docs():
    # 64x64 image, strides 8 (8x8 cells, points 0..63) and 16 (4x4 cells, points 64..79),
    # size_ranges [24]: sides <= 24 go to stride 8, larger ones to stride 16; radius 1.5 strides.
    points, point_strides = _grid([8, 16], 64)
    ranges = level_ranges([8, 16], point_strides, [24])
    boxes = torch.tensor([[[4., 4., 20., 16.],     # A: side 16 -> stride 8; only point (12, 12) is inside and near
                           [24., 8., 56., 56.],    # B: side 48 -> stride 16; points (40, 24) and (40, 40)
                           [44., 2., 48., 6.],     # C: 4x4, no point strictly inside; its centre's cell (44, 4)
                           [0., 0., 24., 24.]]])   # D: 3x3 points around (12, 12), but A (smaller) keeps (12, 12)
    valid = torch.ones(1, 4, dtype=torch.bool)
    match = assign(points, point_strides, ranges, boxes, valid, radius=1.5)[0]
    expected = torch.full((80,), -1)
    expected[9] = 0                        # (12, 12): row 1, col 1 of the stride-8 grid
    expected[[64 + 6, 64 + 10]] = 1        # (40, 24) and (40, 40): rows 1 and 2, col 2 of the stride-16 grid
    expected[5] = 2                        # (44, 4): row 0, col 5
    expected[[0, 1, 2, 8, 10, 16, 17, 18]] = 3
    assert match.tolist() == expected.tolist()


def test_default_ranges_are_eight_strides_and_every_box_gets_one_level():
    points, point_strides = _grid([8, 16, 32], 128)
    ranges = level_ranges([8, 16, 32], point_strides)
    assert ranges[0].tolist() == [0.0, 64.0] and ranges[-1].tolist() == [128.0, float("inf")]
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(1, 40, 2, generator=g) * 100
    wh = torch.rand(1, 40, 2, generator=g) * 120 + 1
    boxes = torch.cat([xy, (xy + wh).clamp(max=128)], dim=-1)  # clipped to the image, as the data layer does
    for k in range(40):  # one box at a time: it is learnt on exactly one level, at >= 1 point
        match = assign(points, point_strides, ranges, boxes[:, k:k + 1], torch.ones(1, 1, dtype=torch.bool), 2.5)
        levels = point_strides[match[0] >= 0].unique()
        assert len(levels) == 1, k


def test_padding_and_empty_images():
    points, point_strides = _grid([16], 32)
    ranges = level_ranges([16], point_strides)
    boxes, labels, valid = pad_targets([torch.zeros(0, 4), torch.tensor([[0., 0., 16., 16.]])],
                                       [torch.zeros(0, dtype=torch.long), torch.tensor([3])])
    assert boxes.shape == (2, 1, 4) and valid.tolist() == [[False], [True]] and labels[1, 0] == 3
    match = assign(points, point_strides, ranges, boxes, valid, 2.5)
    assert match[0].tolist() == [-1] * 4  # a padded (invalid) box is never assigned
    assert match[1].tolist() == [0, -1, -1, -1]
    none = assign(points, point_strides, ranges, torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.bool), 2.5)
    assert none.shape == (2, 4) and (none == -1).all()
