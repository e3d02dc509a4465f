"""The detector: a registered backbone's ``features``, a small FPN, one shared head.

Anchor-free and single-stage (FCOS / YOLOX family). Every cell of every chosen
feature map is one *point* at the cell centre; the head predicts, per point,

* four distances ``l, t, r, b`` in pixels from the point to the box sides,
* one objectness logit ("is this cell the centre region of some object"),
* one logit per class.

``Detector.forward`` returns all of it as ONE tensor ``(N, A, 5 + K)`` (``A`` points
over all levels, ``K`` classes): columns 0-3 the distances (already positive, in input
pixels), 4 objectness, 5: class logits. One plain tensor keeps the profiler, ONNX
export and tracing simple; :meth:`Detector.points` gives the matching point
coordinates, so decoding is ``box = (cx - l, cy - t, cx + r, cy + b)``.

>>> from cnnlab.models import create_model
>>> backbone = create_model("convnet", in_channels=1, num_classes=3, image_size=64, blocks=4, filters=8)
>>> det = Detector(backbone.features, num_classes=3, input_size=(1, 64, 64), strides=[8, 16])
>>> det(torch.zeros(2, 1, 64, 64)).shape  # 8x8 + 4x4 points, 4 + 1 + 3 columns
torch.Size([2, 80, 8])
>>> det.points().shape, det.point_strides().tolist()[:2]
(torch.Size([80, 2]), [8.0, 8.0])
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, model_arguments
from cnnlab.models.layers import ConvNormAct

PRIOR_PROB = 0.01  # initial objectness/class probability: most cells are background (focal-loss paper's prior)


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm: the head is shared across levels whose statistics differ, so batch norm would mix them."""
    return nn.GroupNorm(math.gcd(16, channels), channels)


def head_conv(in_ch: int, out_ch: int) -> ConvNormAct:
    """3x3 conv -> GroupNorm -> ReLU, the zoo's shared block (one ReLU module per use: hooks see each activation).

    Checkpoints written when the head had its own block (children numbered 0, 1, 2) still load:
    :class:`~cnnlab.models.layers.ConvNormAct` reads the old names.
    """
    return ConvNormAct(in_ch, out_ch, 3, bias=False, norm_layer=_norm, act_layer=nn.ReLU)


class FeatureTaps(nn.Module):
    """Runs a ``nn.Sequential`` backbone and returns the outputs of the stages at the chosen strides.

    The stride of each stage is measured once with a zero image of ``input_size``; for each
    requested stride the *last* stage at that stride is tapped, and stages after the deepest
    tap are dropped (they would cost time and change nothing).
    """

    def __init__(self, features: nn.Module, input_size: Sequence[int], strides: Sequence[int]) -> None:
        super().__init__()
        if not isinstance(features, nn.Sequential):
            raise CnnlabError(f"the backbone's features are a {type(features).__name__}, not an nn.Sequential; "
                              "the detector taps the stages of a sequential backbone (any registered cnnlab model)")
        h, w = input_size[1:]
        bad = [s for s in strides if h % s or w % s]
        if bad:  # else the maps' strides are fractions (50 / 4 cells = 12.5) and the error below would name them
            raise CnnlabError(f"the input {h}x{w} is not a multiple of detect.strides {bad[-1]}; set "
                              f"data.image_size to a multiple of {max(strides)}, e.g. {max(strides) * max(1, round(max(h, w) / max(strides)))}")
        stage_strides, stage_channels = measure_stages(features, input_size)
        self.taps: list[int] = []
        for stride in strides:
            found = [i for i, s in enumerate(stage_strides) if s == stride]
            if not found:
                have = sorted({int(s) for s in stage_strides if s == int(s)})
                raise CnnlabError(f"detect.strides has {stride} but the backbone's feature maps at input "
                                  f"{h}x{w} have strides {have}; choose detect.strides among them")
            self.taps.append(found[-1])
        self.channels = [stage_channels[i] for i in self.taps]
        self.stages = nn.Sequential(*list(features)[: self.taps[-1] + 1])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.taps:
                outs.append(x)  # (N, C_i, H / s_i, W / s_i)
        return outs


def measure_stages(features: nn.Sequential, input_size: Sequence[int]) -> tuple[list[float], list[int]]:
    """The stride (input height / map height) and channels of each stage's output, from one zero image.

    >>> from cnnlab.models import create_model
    >>> measure_stages(create_model("convnet", in_channels=1, num_classes=2, image_size=32, blocks=3).features,
    ...                (1, 32, 32))
    ([2.0, 4.0, 8.0], [32, 64, 128])
    """
    c, h, w = input_size
    strides, channels = [], []
    was_training = features.training
    features.eval()  # batch norm on one zero image must not touch the running statistics
    try:
        with torch.no_grad():
            x = torch.zeros(1, c, h, w, device=next(features.parameters()).device)
            for stage in features:
                x = stage(x)
                if x.dim() != 4:  # a flattening stage: nothing spatial after it
                    break
                strides.append(h / x.shape[2] if x.shape[2] else math.inf)
                channels.append(x.shape[1])
    finally:
        features.train(was_training)
    return strides, channels


class FPN(nn.Module):
    """Feature pyramid (Lin et al. 2017), top-down only: 1x1 laterals to ``channels``, the coarser
    map upsampled (nearest) and added, then a 3x3 conv per level. ``top_down=False`` keeps only
    the 1x1 projections (each level sees its own backbone stage)."""

    def __init__(self, in_channels: Sequence[int], channels: int, top_down: bool = True) -> None:
        super().__init__()
        self.top_down = top_down
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.outputs = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1) if top_down else nn.Identity() for _ in in_channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        lat = [conv(f) for conv, f in zip(self.laterals, feats)]  # each (N, channels, H_i, W_i)
        if self.top_down:
            for i in range(len(lat) - 2, -1, -1):  # coarse to fine
                lat[i] = lat[i] + nn.functional.interpolate(lat[i + 1], size=lat[i].shape[-2:], mode="nearest")
        return [out(x) for out, x in zip(self.outputs, lat)]


class Head(nn.Module):
    """Shared over levels: ``convs`` conv-norm-act layers, then 1x1 convs to 4 + 1 + K outputs.

    ``decoupled`` (YOLOX): one tower for the box and objectness, another for the classes --
    "where" and "what" want different features, and a shared tower makes them compete
    (YOLOX reports much faster convergence with the split; the towers cost 2x the head).
    """

    def __init__(self, channels: int, num_classes: int, convs: int = 2, decoupled: bool = False) -> None:
        super().__init__()
        self.decoupled = decoupled
        self.tower = nn.Sequential(*[head_conv(channels, channels) for _ in range(convs)])
        prior = -math.log((1 - PRIOR_PROB) / PRIOR_PROB)
        if decoupled:
            self.cls_tower = nn.Sequential(*[head_conv(channels, channels) for _ in range(convs)])
            self.pred = nn.Conv2d(channels, 5, 1)  # l, t, r, b, objectness
            self.cls_pred = nn.Conv2d(channels, num_classes, 1)
            nn.init.normal_(self.cls_pred.weight, std=0.01)
            nn.init.constant_(self.cls_pred.bias, prior)
        else:
            self.pred = nn.Conv2d(channels, 5 + num_classes, 1)
        nn.init.normal_(self.pred.weight, std=0.01)
        with torch.no_grad():
            self.pred.bias.zero_()  # distances start at exp(0) * stride: one cell on each side
            self.pred.bias[4:] = prior

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pred(self.tower(x))  # (N, 5 [+ K], H, W)
        if self.decoupled:
            out = torch.cat([out, self.cls_pred(self.cls_tower(x))], dim=1)  # (N, 5 + K, H, W)
        return out


class Detector(nn.Module):
    """Backbone taps -> FPN -> shared head; see the module docstring for the output layout.

    ``features`` is the backbone's ``nn.Sequential`` of stages (``ImageClassifier.features``),
    ``input_size`` the (C, H, W) the detector is built for (strides are measured there),
    ``strides`` the feature maps to predict on (pixels per cell).
    """

    def __init__(self, features: nn.Module, num_classes: int, input_size: Sequence[int],
                 strides: Sequence[int] = (8, 16), channels: int = 64, fpn: bool = True,
                 head_convs: int = 2, decoupled: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.input_size = tuple(int(v) for v in input_size)
        self.strides = [int(s) for s in strides]
        self.backbone = FeatureTaps(features, self.input_size, self.strides)
        self.neck = FPN(self.backbone.channels, channels, top_down=fpn)
        self.head = Head(channels, num_classes, head_convs, decoupled)
        # exp(scale_i * raw) * stride_i: a learnt scale per level, as in FCOS
        self.scales = nn.Parameter(torch.ones(len(self.strides)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for i, (feat, stride) in enumerate(zip(self.neck(self.backbone(x)), self.strides)):
            p = self.head(feat)  # (N, 5 + K, H_i, W_i)
            p = p.flatten(2).transpose(1, 2)  # (N, H_i * W_i, 5 + K), points in row-major order
            dist = torch.exp((p[..., :4] * self.scales[i]).clamp(max=10.0)) * stride  # (N, A_i, 4) pixels
            outs.append(torch.cat([dist, p[..., 4:]], dim=-1))
        return torch.cat(outs, dim=1)  # (N, A, 5 + K)

    def grid_sizes(self, height: int | None = None, width: int | None = None) -> list[tuple[int, int]]:
        """(H_i, W_i) of each level for an input of ``height`` x ``width`` (default: the built size)."""
        h = height or self.input_size[1]
        w = width or self.input_size[2]
        return [(math.ceil(h / s), math.ceil(w / s)) for s in self.strides]

    def points(self, height: int | None = None, width: int | None = None) -> torch.Tensor:
        """(A, 2) cell centres (x, y) in input pixels, level by level, row-major: ((j + 0.5) s, (i + 0.5) s)."""
        return grid_points(self.strides, self.grid_sizes(height, width))

    def point_strides(self, height: int | None = None, width: int | None = None) -> torch.Tensor:
        """(A,) the stride of each point's level."""
        return torch.cat([torch.full((gh * gw,), float(s)) for s, (gh, gw) in
                          zip(self.strides, self.grid_sizes(height, width))])


def grid_points(strides: Sequence[int], sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Cell centres of every level, concatenated: (sum H_i * W_i, 2) as (x, y).

    >>> grid_points([16], [(2, 2)]).tolist()
    [[8.0, 8.0], [24.0, 8.0], [8.0, 24.0], [24.0, 24.0]]
    """
    pts = []
    for s, (gh, gw) in zip(strides, sizes):
        ys, xs = torch.meshgrid(torch.arange(gh, dtype=torch.float32), torch.arange(gw, dtype=torch.float32),
                                indexing="ij")
        pts.append(torch.stack([(xs.flatten() + 0.5) * s, (ys.flatten() + 0.5) * s], dim=1))
    return torch.cat(pts)


def build_detector(cfg, input_size: tuple[int, int, int], num_classes: int, pretrained: bool = True) -> Detector:
    """The configured detector: ``model.name`` (any registered model) provides ``features``.

    ``model.weights`` fills the backbone first (a cnnlab run or file; its classifier is discarded);
    ``pretrained=False`` skips that, as when a detection run's own checkpoint follows.
    """
    options = dict(cfg.model.options)
    weights = options.pop("weights", None)
    for key in ("freeze", "freeze_k", "features_from", "head_hidden"):
        if key in options:
            raise CnnlabError(f"model.{key} is not supported for detection (task: detect); remove it")
    accepted = model_arguments(cfg.model.name)
    c, h, w = input_size
    if "in_channels" in options and options["in_channels"] != c:
        raise CnnlabError(f"model.in_channels={options['in_channels']} but the data has {c}; remove model.in_channels")
    options["in_channels"] = c
    options["num_classes"] = options.get("num_classes", max(num_classes, 1))  # the classifier head is unused
    if "image_size" in accepted:
        options.setdefault("image_size", h)
    backbone = create_model(cfg.model.name, weights=weights if pretrained else None, **options)
    d = cfg.detect
    return Detector(backbone.features, num_classes, input_size, strides=d.strides, channels=d.channels,
                    fpn=d.fpn, head_convs=d.head_convs, decoupled=d.decoupled_head)
