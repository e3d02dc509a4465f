"""The detector over every registered backbone, its loss, and overfitting a handful of scenes."""

import pytest
import torch

from cnnlab.config import config_from_dict
from cnnlab.detect.batches import DetectionBatches
from cnnlab.detect.evaluate import evaluate_detector
from cnnlab.detect.loss import DetectionLoss
from cnnlab.detect.model import Detector, build_detector, measure_stages
from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, list_models

from tests.detect.scenes import squares

SMALL = {"convnet": {"blocks": 4, "filters": 8}, "resnet9": {"width": 8}, "vgg11": {"width": 8},
         "airbench": {"widths": [8, 16, 16], "whiten_padding": 1}}  # padded: strides 2, 4, 8 (unpadded 31 -> 15 ...)


def _backbone(name):
    try:  # 32x32 keeps the big ones (ResNet-50, VGG-16) quick; they still have strides 4 and 8 there
        return create_model(name, in_channels=3, num_classes=2, image_size=32, **SMALL.get(name, {}))
    except (CnnlabError, TypeError):
        return create_model(name)  # models built for one fixed input (LeNet-5, the MNIST classic)


@pytest.mark.parametrize("name", list_models())
def test_every_backbone_gives_a_detector(name):
    """Shared check: on every registered backbone, the two finest usable strides give a detector whose
    output has the documented shape, finite values, positive distances, and whose every parameter
    receives a gradient from the loss."""
    backbone = _backbone(name)
    c, h, w = backbone.default_input_size
    strides, _ = measure_stages(backbone.features, (c, h, w))
    usable = sorted({int(s) for s in strides if s in (4, 8, 16, 32)})[:2]
    det = Detector(backbone.features, num_classes=3, input_size=(c, h, w), strides=usable, channels=16,
                   decoupled=name < "m")  # both head kinds, each on about half the backbones
    out = det(torch.rand(2, c, h, w))
    assert out.shape == (2, len(det.points()), 8)
    assert torch.isfinite(out).all() and (out[..., :4] > 0).all()
    loss = DetectionLoss(config_from_dict({"task": "detect"}).detect, det.strides)(
        out, det.points(), det.point_strides(), [torch.tensor([[1., 1., w - 1., h - 1.]])] * 2,
        [torch.tensor([1])] * 2)["loss"]
    loss.backward()
    unused = [n for n, p in det.named_parameters() if p.requires_grad and p.grad is None]  # frozen by design: skip
    assert not unused, unused


def test_a_stride_the_backbone_lacks_is_one_line():
    backbone = create_model("convnet", in_channels=1, num_classes=2, image_size=64, blocks=3, filters=8)
    with pytest.raises(CnnlabError, match=r"strides \[2, 4, 8\]"):
        Detector(backbone.features, 2, (1, 64, 64), strides=[8, 16])


def test_an_unknown_backbone_is_one_line():
    cfg = config_from_dict({"task": "detect", "model": {"name": "resnet_nope"}})
    with pytest.raises(CnnlabError, match="resnet_nope"):
        build_detector(cfg, (3, 64, 64), 2)


def test_overfits_a_handful_of_scenes():
    torch.manual_seed(0)
    cfg = config_from_dict({"task": "detect", "model": {"name": "convnet", "blocks": 4, "filters": 8},
                            "detect": {"strides": [8, 16], "channels": 32}})
    data = squares(6, 64, seed=1)
    model = build_detector(cfg, (1, 64, 64), 2)
    loss_fn = DetectionLoss(cfg.detect, model.strides)
    points, strides = model.points(), model.point_strides()
    batches = DetectionBatches(data, 6, mean=[0.1], std=[0.3])
    opt = torch.optim.Adam(model.parameters(), 5e-3)
    losses = []
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        for _ in range(80):
            for x, t in batches:
                loss = loss_fn(model(x), points, strides, t.boxes, t.labels)["loss"]
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
    assert losses[-1] < losses[0] / 5
    r = evaluate_detector(model, batches, cfg.detect, ["filled", "hollow"])
    assert r["map50"] > 0.9, r["map50"]


def test_the_head_uses_the_zoo_block_and_reads_checkpoints_of_its_old_block():
    """The head's conv blocks are models.layers.ConvNormAct; state dicts from before (children 0, 1, 2) load."""
    import torch

    from cnnlab.detect.model import Head
    from cnnlab.models.layers import ConvNormAct

    torch.manual_seed(0)
    head = Head(16, 3, 2, True)
    assert all(isinstance(m, ConvNormAct) for m in head.tower)
    old = {k.replace(".conv.", ".0.").replace(".bn.", ".1."): v.clone() for k, v in head.state_dict().items()}
    assert any(".0.0.weight" in k for k in old)
    fresh = Head(16, 3, 2, True)
    fresh.load_state_dict(old)
    for (k, a), b in zip(fresh.state_dict().items(), head.state_dict().values()):
        assert torch.equal(a, b), k
