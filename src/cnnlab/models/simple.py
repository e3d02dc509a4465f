"""Small classic networks: the two-convolution MNIST net and LeNet-5."""

from __future__ import annotations

from torch import nn

from cnnlab.models import checks, options
from cnnlab.models.base import ImageClassifier
from cnnlab.models.layers import get_activation
from cnnlab.models.registry import register_model
from cnnlab.models.shapes import feature_shape


@register_model("mnist_classic")
class MnistClassic(ImageClassifier):
    """conv 32 -> pool -> conv 64 -> pool -> fc 128 -> fc classes (3x3 kernels, padding 1).

    The network found in most first tutorials: on a 28x28 input the maps go
    28 -> 14 -> 7, so the head sees 64*7*7 = 3136 features.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 28,
        hidden: int = 128,
        dropout: float = 0.0,
        activation: str | list[str] = "relu",
        dropout_conv: float | list[float] | None = None,
        dropout_dense: float | list[float] | None = None,
        dropconnect: float = 0.0,
        init: str = "default",
        init_conv: str | None = None,
        init_linear: str | None = None,
    ) -> None:
        super().__init__(in_channels, num_classes, image_size)
        checks.positive_int("hidden", hidden)
        # ``dropout`` keeps its old place (after the hidden layer); the per-layer options go where they say
        conv_drops, dense_drops = options.dropout_plan(dropout, "dense", dropout_conv, dropout_dense, 2, 1)
        conv_acts, dense_acts = options.activation_plan(activation, 2, 1)
        dropconnect = options.check_dropconnect(dropconnect, 1)
        conv_init, linear_init = options.init_plan(init, init_conv, init_linear)
        features: list[nn.Module] = []
        for i, (cin, cout) in enumerate(((in_channels, 32), (32, 64))):  # (N, 32, H/2, W/2), (N, 64, H/4, W/4)
            features += [nn.Conv2d(cin, cout, 3, padding=1), conv_acts[i](), nn.MaxPool2d(2)]
            if conv_drops[i] > 0:
                features.append(nn.Dropout2d(conv_drops[i]))
        self.features = nn.Sequential(*features)
        flat = _flat_size(self.features, self.default_input_size, "mnist_classic")
        self.head = nn.Sequential(
            nn.Flatten(), options.dense_layer(flat, hidden, dropconnect), dense_acts[0](), nn.Dropout(dense_drops[0]),
            nn.Linear(hidden, num_classes)
        )
        self.init_weights(conv=conv_init, linear=linear_init)


@register_model("lenet5")
class LeNet5(ImageClassifier):
    """LeNet-5 (LeCun et al., 1998), within reason.

    C1 6@5x5 -> S2 avg-pool -> C3 16@5x5 -> S4 avg-pool -> C5 120@5x5 -> F6 84 -> output.
    The paper's inputs are 32x32; 28x28 MNIST digits get 2 pixels of zero
    padding in C1, exactly as the paper padded its 20x20 digits into a 32x32
    field. Simplifications (as in most modern renditions): C3 connects to all
    six S2 maps instead of the paper's sparse table, the sub-sampling layers
    have no trainable coefficients, tanh replaces the scaled tanh, and the
    output is a linear layer instead of RBF units.
    """

    POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 32,
        activation: str = "tanh",
        pool: str = "avg",
    ) -> None:
        super().__init__(in_channels, num_classes, image_size, default_image_size=32)
        act = get_activation(activation)
        pool_layer = self.POOLS[checks.choice("pool", pool, self.POOLS)]
        pad = max(0, (32 - self.image_size) // 2)  # 28x28 -> padded to 32x32 inside C1
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad), act(), pool_layer(2),  # C1, S2: (N, 6, 14, 14)
            nn.Conv2d(6, 16, 5), act(), pool_layer(2),  # C3, S4: (N, 16, 5, 5)
            nn.Conv2d(16, 120, 5), act(),  # C5: (N, 120, 1, 1) on a 32x32 field
        )
        flat = _flat_size(self.features, self.default_input_size, "lenet5")
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, 84), act(), nn.Linear(84, num_classes))


def _flat_size(features: nn.Module, input_size: tuple[int, int, int], name: str) -> int:
    c, h, w = feature_shape(features, input_size, name)
    return c * h * w
