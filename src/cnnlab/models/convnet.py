"""A configurable plain ConvNet: N blocks of conv -> [norm] -> activation -> [pool].

Everything a textbook varies is an option: filters per block (or a start
count with an organisation ``same``/``double``/``half``), kernel size per
block, norm before or after the activation (or none), dropout and where it
goes, the dense width, the activation and the weight initialisation, and the
convolution algorithm (``conv_type``) from :mod:`cnnlab.nn`.

>>> net = create_model("convnet", filters=32, blocks=3, organisation="double")
>>> [m.out_channels for m in net.features.modules() if hasattr(m, "out_channels")]
[32, 64, 128]
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.base import ImageClassifier, check_input_channels
from cnnlab.models.layers import get_activation, get_norm, init_weights
from cnnlab.models.registry import register_model
from cnnlab.models.shapes import feature_shape

ORGANISATIONS = {"same": 1.0, "double": 2.0, "half": 0.5}


def block_filters(filters: int | Sequence[int], blocks: int, organisation: str) -> list[int]:
    """Filters of each block: an explicit list, or a start count grown by ``organisation``.

    >>> block_filters(16, 3, "double")
    [16, 32, 64]
    >>> block_filters([8, 8], 2, "same")
    [8, 8]
    """
    if isinstance(filters, (list, tuple)):
        if len(filters) != blocks:
            raise CnnlabError(
                f"filters lists {len(filters)} values but blocks={blocks}; give one count per block"
            )
        return [int(f) for f in filters]
    if organisation not in ORGANISATIONS:
        raise CnnlabError(f"organisation must be one of {sorted(ORGANISATIONS)}, got '{organisation}'")
    counts = [max(1, round(filters * ORGANISATIONS[organisation] ** i)) for i in range(blocks)]
    return counts


def _per_block(value, blocks: int, name: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != blocks:
            raise CnnlabError(f"{name} lists {len(value)} values but blocks={blocks}")
        return list(value)
    return [value] * blocks


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
    ) -> None:
        pool_layer = {"max": nn.MaxPool2d(2), "avg": nn.AvgPool2d(2)}.get(pool)
        layers: list[nn.Module] = []
        for i in range(convs):
            has_norm = not isinstance(norm_layer(out_ch), nn.Identity)
            layers.append(
                conv_layer(in_ch if i == 0 else out_ch, out_ch, kernel_size, padding=padding, bias=not has_norm)
            )
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
        convs_per_block: int = 1,
        pool: str | list[str] = "max",
        pool_first: bool = False,
        norm: str = "batchnorm",
        norm_position: str = "before",
        activation: str = "relu",
        dropout: float = 0.0,
        dropout_where: str = "dense",
        dense: int | list[int] = 128,
        global_pool: str = "none",
        conv_type: str = "standard",
        init: str = "default",
    ) -> None:
        super().__init__()
        check_input_channels(in_channels, num_classes)
        if norm_position not in ("before", "after"):
            raise CnnlabError(f"norm_position must be 'before' or 'after' the activation, got '{norm_position}'")
        if dropout_where not in ("conv", "dense", "both"):
            raise CnnlabError(f"dropout_where must be 'conv', 'dense' or 'both', got '{dropout_where}'")
        if not 0.0 <= dropout < 1.0:
            raise CnnlabError(f"dropout must be in [0, 1), got {dropout}")
        if global_pool not in ("none", "avg", "max"):
            raise CnnlabError(f"global_pool must be 'none', 'avg' or 'max', got '{global_pool}'")
        from cnnlab.nn import get_conv  # the algorithm for each conv: standard, fft, separable, ...

        conv_layer = get_conv(conv_type)
        act = get_activation(activation)
        norm_layer = get_norm(norm)
        counts = block_filters(filters, blocks, organisation)
        kernels = _per_block(kernel_size, blocks, "kernel_size")
        pools = _per_block(pool, blocks, "pool")
        conv_dropout = dropout if dropout_where in ("conv", "both") else 0.0
        dense_dropout = dropout if dropout_where in ("dense", "both") else 0.0

        layers, ch = [], in_channels
        for out_ch, k, p in zip(counts, kernels, pools):
            if p not in ("max", "avg", "none"):
                raise CnnlabError(f"pool must be 'max', 'avg' or 'none', got '{p}'")
            layers.append(
                ConvBlock(ch, out_ch, k, padding, conv_layer, norm_layer, act, norm_position, p, conv_dropout,
                          convs_per_block, pool_first)
            )
            ch = out_ch
        self.default_input_size = (in_channels, image_size, image_size)
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
        for width in [d for d in _as_list(dense) if d > 0]:
            head += [nn.Linear(flat, width), act()]
            if dense_dropout > 0:
                head.append(nn.Dropout(dense_dropout))
            flat = width
        head.append(nn.Linear(flat, num_classes))
        self.head = nn.Sequential(*head)
        init_weights(self, init)


def _as_list(value) -> list[int]:
    return list(value) if isinstance(value, (list, tuple)) else [value]
