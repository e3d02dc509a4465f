"""A configurable plain ConvNet: N blocks of conv -> [norm] -> activation -> [pool].

Everything a textbook varies is an option: filters per block (or a start
count with an organisation ``same``/``double``/``half``), kernel size per
block, norm before or after the activation (or none), dropout and where it
goes (or ``dropout_conv`` / ``dropout_dense`` per block and layer), DropConnect on
the dense layers, the dense width, the activation (one, or one per block), the
weight initialisation (``init``, or ``init_conv`` / ``init_linear`` apart), and the
convolution algorithm (``conv_type``) from :mod:`cnnlab.nn`.

>>> from cnnlab.models import create_model
>>> net = create_model("convnet", filters=32, blocks=3, organisation="double")
>>> [m.out_channels for m in net.features.modules() if hasattr(m, "out_channels")]
[32, 64, 128]
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.geometry import strided_same_padding
from cnnlab.models import checks, options
from cnnlab.models.base import ImageClassifier
from cnnlab.models.layers import get_norm
from cnnlab.models.registry import register_model
from cnnlab.models.shapes import feature_shape
from cnnlab.nn import get_conv

ORGANISATIONS = {"same": 1.0, "double": 2.0, "half": 0.5}
POOLS = ("max", "avg", "none")
MAX_BLOCKS = 64  # per network, and convs per block: deeper plain nets do not train anyway


def block_filters(filters: int | Sequence[int], blocks: int, organisation: str) -> list[int]:
    """Filters of each block: an explicit list, or a start count grown by ``organisation``.

    >>> block_filters(16, 3, "double")
    [16, 32, 64]
    >>> block_filters([8, 8], 2, "same")
    [8, 8]
    """
    if isinstance(filters, (list, tuple)):
        return checks.int_or_list("filters", filters, blocks)
    checks.positive_int("filters", filters)
    checks.choice("organisation", organisation, ORGANISATIONS)
    counts = [max(1, round(filters * ORGANISATIONS[organisation] ** i)) for i in range(blocks)]
    if counts[-1] > checks.MAX_WIDTH:
        raise CnnlabError(f"filters={filters} with organisation={organisation} grows to {counts[-1]:.3g} filters "
                          f"in block {blocks}; use fewer blocks or organisation=same")
    return counts


class ConvBlock(nn.Sequential):
    """conv -> [norm] -> act (norm after the activation if ``norm_position='after'``) -> [pool] -> [dropout].

    With ``pool_first`` the pool moves right after the last conv (conv -> pool -> norm -> act):
    max-pooling commutes with ReLU, and the norm and activation then touch 4x fewer pixels,
    which is most of the cost of a small network on a CPU.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        padding: int | str,
        conv_layer: type[nn.Module],
        norm_layer,
        act_layer: type[nn.Module],
        norm_position: str,
        pool: str,
        dropout: float,
        convs: int = 1,
        pool_first: bool = False,
        stride: int = 1,
    ) -> None:
        pool_layer = {"max": nn.MaxPool2d(2), "avg": nn.AvgPool2d(2)}.get(pool)
        layers: list[nn.Module] = []
        for i in range(convs):
            has_norm = not isinstance(norm_layer(out_ch), nn.Identity)
            step = stride if i == 0 else 1  # only the block's first conv strides
            pad = strided_same_padding(kernel_size, step) if step > 1 and padding == "same" else padding
            layers.append(conv_layer(in_ch if i == 0 else out_ch, out_ch, kernel_size, stride=step, padding=pad,
                                     bias=not has_norm))
            if pool_first and pool_layer is not None and i == convs - 1:
                layers.append(pool_layer)
            if norm_position == "before":
                layers += [norm_layer(out_ch), act_layer()]
            else:
                layers += [act_layer(), norm_layer(out_ch)]
        if pool_layer is not None and not pool_first:
            layers.append(pool_layer)
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*[l for l in layers if not isinstance(l, nn.Identity)])


@register_model("convnet")
class ConvNet(ImageClassifier):
    """The configurable plain CNN (see the module docstring for every option)."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 28,
        blocks: int = 2,
        filters: int | list[int] = 32,
        organisation: str = "double",
        kernel_size: int | list[int] = 3,
        padding: str | int = "same",
        stride: int | list[int] = 1,
        convs_per_block: int = 1,
        pool: str | list[str] = "max",
        pool_first: bool = False,
        norm: str = "batchnorm",
        norm_position: str = "before",
        activation: str | list[str] = "relu",
        dropout: float = 0.0,
        dropout_where: str = "dense",
        dense: int | list[int] = 128,
        global_pool: str = "none",
        conv_type: str = "standard",
        init: str = "default",
        dropout_conv: float | list[float] | None = None,
        dropout_dense: float | list[float] | None = None,
        dropconnect: float = 0.0,
        init_conv: str | None = None,
        init_linear: str | None = None,
    ) -> None:
        super().__init__(in_channels, num_classes, image_size)
        blocks = checks.positive_int("blocks", blocks, maximum=MAX_BLOCKS)
        counts = block_filters(filters, blocks, organisation)
        kernels = checks.int_or_list("kernel_size", kernel_size, blocks, maximum=checks.MAX_IMAGE_SIZE)
        if padding not in ("same", "valid"):
            if isinstance(padding, str):
                raise CnnlabError(f"padding must be same, valid or a number of pixels, got {checks.short(padding)}")
            checks.positive_int("padding", padding, maximum=checks.MAX_IMAGE_SIZE, low=0)
        strides = checks.int_or_list("stride", stride, blocks, maximum=checks.MAX_IMAGE_SIZE)
        checks.positive_int("convs_per_block", convs_per_block, maximum=MAX_BLOCKS)
        pools = checks.choices_per_block("pool", pool, blocks, POOLS)
        checks.flag("pool_first", pool_first)
        checks.choice("norm_position", norm_position, ("before", "after"))
        widths = checks.int_or_list("dense", dense, len(dense) if isinstance(dense, (list, tuple)) else 1, low=0)
        hidden = [d for d in widths if d > 0]  # 0: no hidden layer
        conv_drops, dense_drops = options.dropout_plan(dropout, dropout_where, dropout_conv, dropout_dense, blocks,
                                                       len(hidden))
        conv_acts, dense_acts = options.activation_plan(activation, blocks, len(hidden))
        dropconnect = options.check_dropconnect(dropconnect, len(hidden))
        checks.choice("global_pool", global_pool, ("none", "avg", "max"))
        conv_init, linear_init = options.init_plan(init, init_conv, init_linear)
        conv_layer = get_conv(conv_type)  # the algorithm for each conv: standard, fft, separable, ...
        norm_layer = get_norm(norm)

        layers, ch = [], in_channels
        for out_ch, k, p, s, act, drop in zip(counts, kernels, pools, strides, conv_acts, conv_drops):
            layers.append(
                ConvBlock(ch, out_ch, k, padding, conv_layer, norm_layer, act, norm_position, p, drop,
                          convs_per_block, pool_first, stride=s)
            )
            ch = out_ch
        self.features = nn.Sequential(*layers)
        c, h, w = feature_shape(self.features, self.default_input_size, "convnet")

        head: list[nn.Module] = []
        if global_pool == "avg":
            head += [nn.AdaptiveAvgPool2d(1)]
            flat = c
        elif global_pool == "max":
            head += [nn.AdaptiveMaxPool2d(1)]
            flat = c
        else:
            flat = c * h * w
        head.append(nn.Flatten())
        for width, act, drop in zip(hidden, dense_acts, dense_drops):
            head += [options.dense_layer(flat, width, dropconnect), act()]
            if drop > 0:
                head.append(nn.Dropout(drop))
            flat = width
        head.append(nn.Linear(flat, num_classes))
        self.head = nn.Sequential(*head)
        self.init_weights(conv=conv_init, linear=linear_init)
