"""Per-layer options of convnet and mnist_classic (dropout/activation per block, DropConnect, conv/linear init),
each checked against a torch network built by hand with the same layers and the same random draws."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model
from cnnlab.nn import DropConnectLinear


class HandDropConnect(nn.Module):
    """The reference: y = x (W * m / (1 - p))^T + b with m_ij = [u_ij >= p], u ~ U(0, 1) drawn like torch.rand."""

    def __init__(self, fan_in, fan_out, p):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(fan_out, fan_in))
        self.bias = nn.Parameter(torch.empty(fan_out))
        self.p = p

    def forward(self, x):
        if not self.training:
            return x @ self.weight.T + self.bias
        u = torch.rand(self.weight.shape, dtype=self.weight.dtype)
        return x @ (self.weight * (u >= self.p) / (1 - self.p)).T + self.bias


def _copy_by_position(src: nn.Module, dst: nn.Module) -> None:
    s, d = list(src.state_dict().values()), dst.state_dict()
    assert [v.shape for v in s] == [v.shape for v in d.values()]
    dst.load_state_dict(dict(zip(d.keys(), s)))


def _same_outputs(ours: nn.Module, hand: nn.Module, x: torch.Tensor) -> None:
    _copy_by_position(ours, hand)
    for train in (False, True):
        ours.train(train)
        hand.train(train)
        torch.manual_seed(7)
        a = ours(x)
        torch.manual_seed(7)
        b = hand(x)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_convnet_per_block_dropout_activation_and_dropconnect_match_a_hand_built_net():
    ours = create_model("convnet", blocks=2, filters=[4, 8], dense=16, activation=["relu", "tanh", "gelu"],
                        dropout_conv=[0.1, 0.2], dropout_dense=0.5, dropconnect=0.3)
    hand = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding="same", bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(0.1),
        nn.Conv2d(4, 8, 3, padding="same", bias=False), nn.BatchNorm2d(8), nn.Tanh(), nn.MaxPool2d(2), nn.Dropout2d(0.2),
        nn.Flatten(), HandDropConnect(8 * 7 * 7, 16, 0.3), nn.GELU(), nn.Dropout(0.5), nn.Linear(16, 10))
    _same_outputs(ours, hand, torch.randn(5, 1, 28, 28))
    # two blocks' activations only: the dense layer takes the last block's
    two = create_model("convnet", blocks=2, filters=[4, 8], dense=16, activation=["gelu", "tanh"])
    assert [type(m).__name__ for m in two.modules() if isinstance(m, (nn.GELU, nn.Tanh, nn.ReLU))] == \
        ["GELU", "Tanh", "Tanh"]


def test_mnist_classic_takes_the_same_options():
    ours = create_model("mnist_classic", hidden=32, activation=["tanh", "relu", "elu"], dropout_conv=[0.0, 0.25],
                        dropconnect=0.4, dropout_dense=0.2)
    hand = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(0.25),
        nn.Flatten(), HandDropConnect(64 * 7 * 7, 32, 0.4), nn.ELU(), nn.Dropout(0.2), nn.Linear(32, 10))
    _same_outputs(ours, hand, torch.randn(3, 1, 28, 28))
    # the old single dropout keeps its place after the hidden layer (and old checkpoints their keys)
    assert list(create_model("mnist_classic", dropout=0.3).state_dict()) == list(create_model("mnist_classic")
                                                                                 .state_dict())


@pytest.mark.parametrize("model", ["convnet", "mnist_classic"])
def test_separate_conv_and_linear_init_draw_like_torch_init(model):
    torch.manual_seed(0)
    ours = create_model(model, init="xavier_uniform", init_conv="normal_0.01") if model == "convnet" else \
        create_model(model, init_conv="normal_0.01", init_linear="xavier_uniform")
    torch.manual_seed(0)
    ref = create_model(model)  # PyTorch's default draws, then the texts' rules by hand in module order
    for m in ref.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.01)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            nn.init.zeros_(m.bias)
    for (k, a), b in zip(ours.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), k
    conv = next(m for m in ours.modules() if isinstance(m, nn.Conv2d) and m.weight.numel() > 1000)
    assert conv.weight.std().item() == pytest.approx(0.01, rel=0.1)
    linear = next(m for m in ours.modules() if isinstance(m, nn.Linear))
    bound = math.sqrt(6 / (linear.in_features + linear.out_features))
    assert linear.weight.abs().max() <= bound and linear.weight.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.05)
    # kaiming is kaiming_normal (fan-in, ReLU gain)
    torch.manual_seed(1)
    k = create_model("mnist_classic", init="kaiming")
    fan_in = 32 * 9
    assert k.features[3].weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)


def test_dropconnect_linear_matches_the_formula_and_is_an_ordinary_linear():
    layer = DropConnectLinear(50, 40, p=0.25)
    x = torch.randn(6, 50)
    torch.manual_seed(3)
    y = layer.train()(x)
    torch.manual_seed(3)
    mask = (torch.rand(40, 50) >= 0.25).float()
    torch.testing.assert_close(y, x @ (layer.weight * mask / 0.75).T + layer.bias)
    assert 0.2 < 1 - mask.mean().item() < 0.3
    torch.testing.assert_close(layer.eval()(x), F.linear(x, layer.weight, layer.bias))
    assert isinstance(layer, nn.Linear) and list(layer.state_dict()) == ["weight", "bias"]


@pytest.mark.parametrize("options, message", [
    ({"name": "convnet", "dense": 0, "dropconnect": 0.5}, "this model has none (dense=0)"),
    ({"name": "convnet", "blocks": 3, "activation": ["relu", "tanh"]},
     "activation lists 2 values; give 3 (one per conv block) or 4 (one per block, then one per hidden dense layer)"),
    ({"name": "convnet", "blocks": 2, "dropout_conv": [0.1, 0.2, 0.3]},
     "dropout_conv lists 3 values but the model has 2 conv blocks"),
    ({"name": "convnet", "dense": [16, 8], "dropout_dense": [0.1]},
     "dropout_dense lists 1 values but the model has 2 hidden dense layers"),
    ({"name": "convnet", "dropout": 0.2, "dropout_conv": 0.1}, "give either dropout"),
    ({"name": "convnet", "dropout_conv": [0.1, 1.5]}, "dropout_conv[1] must be a number in [0, 1), got 1.5"),
    ({"name": "mnist_classic", "dropconnect": 1.0}, "dropconnect must be a number in [0, 1)"),
    ({"name": "mnist_classic", "init_conv": "normal"}, "unknown init_conv 'normal'"),
    ({"name": "mnist_classic", "activation": ["relu"] * 4}, "activation lists 4 values; give 2"),
])
def test_bad_layer_options_are_one_line(options, message):
    name = options.pop("name")
    with pytest.raises(CnnlabError) as info:
        create_model(name, **options)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_layer_option_from_the_cli_writes_nothing(tmp_path, capsys):
    from cnnlab.cli import main

    out = tmp_path / "run"
    code = main(["train", "mnist-fast", "model.dense=0", "model.dropconnect=0.5", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("cnnlab: error:") and "dropconnect" in err[0]
    assert not out.exists()
    with pytest.raises(CnnlabError, match="model 'lenet5' has no option 'dropconnect'"):  # no dense options at all
        create_model("lenet5", dropconnect=0.5)
