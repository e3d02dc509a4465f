"""model.weights=download for tv:/timm: models, against a file server on 127.0.0.1 (never the internet).

The served state dicts are written here; the checksums are the library's own (torchvision's file-name
prefix) or the hub's X-Linked-Etag the server sends; the references are torchvision and timm
loading the same tensors themselves.
"""

import dataclasses
import hashlib
import json

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, online
from tests.local_http import serve


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def www(tmp_path, monkeypatch):
    """(folder the server serves, cache folder); downloads allowed, the cache and mirror injected."""
    root, cache = tmp_path / "www", tmp_path / "cache"
    root.mkdir()
    monkeypatch.delenv("CNNLAB_OFFLINE", raising=False)
    monkeypatch.setenv(online.DIR_ENV, str(cache))
    return root, cache


def tv_resnet18_state(seed: int = 0) -> dict:
    import torchvision

    torch.manual_seed(seed)
    return torchvision.models.resnet18().state_dict()


def test_torchvision_weights_checked_cached_and_carrying_their_preprocessing(www, monkeypatch, capsys):
    import torchvision

    root, cache = www
    real = online.published("tv:resnet18")
    assert real.file == "resnet18-f37072fd.pth" and real.sha256 == "f37072fd"  # torchvision's own URL
    torch.save(tv_resnet18_state(), root / real.file)
    with serve(root) as url:
        monkeypatch.setenv(online.URL_ENV, url)
        # The served bytes are not torchvision's: their SHA-256 does not start with f37072fd. Refused, nothing kept.
        with pytest.raises(CnnlabError) as info:
            create_model("tv:resnet18", weights="download")
        message = str(info.value)
        assert "\n" not in message and "SHA-256" in message and "not the published f37072fd" in message
        assert not cache.exists() or not any(cache.iterdir())
        # With the served file's own checksum as the published one, it loads.
        digest = sha256(root / real.file)
        monkeypatch.setattr(online, "torchvision_published",
                            lambda arch, model, _f=online.torchvision_published:
                            dataclasses.replace(_f(arch, model), sha256=digest))
        net = create_model("tv:resnet18", weights="download").eval()
    assert sorted(p.name for p in cache.iterdir()) == [real.file] and sha256(cache / real.file) == digest
    reference = torchvision.models.resnet18()
    reference.load_state_dict(torch.load(root / real.file, weights_only=True))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(net(x), reference.eval()(x))
    entry = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    t = entry.transforms()
    cfg = net.pretrained_cfg
    assert cfg["input_size"] == [3, *t.crop_size, *t.crop_size] and cfg["mean"] == list(t.mean)
    assert cfg["std"] == list(t.std) and cfg["interpolation"] == "bilinear"
    assert cfg["crop_fraction"] == pytest.approx(t.crop_size[0] / t.resize_size[0])
    assert cfg["classes"] == entry.meta["categories"] and cfg["source"]["sha256"] == digest
    # The server is gone and the machine offline: the verified cache is enough ...
    monkeypatch.setenv("CNNLAB_OFFLINE", "1")
    again = create_model("tv:resnet18", weights="download").eval()
    with torch.no_grad():
        assert torch.equal(again(x), reference(x))
    # ... but not once the cached file is damaged.
    (cache / real.file).write_bytes(b"damaged")
    with pytest.raises(CnnlabError, match=r"CNNLAB_OFFLINE is set and .* is not cached"):
        create_model("tv:resnet18", weights="download")


def test_a_pickle_carrying_code_is_never_unpickled_even_with_the_right_checksum(www, monkeypatch, tmp_path):
    root, _ = www
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    file = online.published("tv:resnet18").file
    torch.save({"conv1.weight": Evil()}, root / file)
    digest = sha256(root / file)
    monkeypatch.setattr(online, "torchvision_published", lambda arch, model, _f=online.torchvision_published:
                        dataclasses.replace(_f(arch, model), sha256=digest))
    with serve(root) as url:
        monkeypatch.setenv(online.URL_ENV, url)
        with pytest.raises(CnnlabError, match="never unpickles"):
            create_model("tv:resnet18", weights="download")
    assert not marker.exists()


def timm_file(root, seed=0):
    """timm's test_resnet with seeded random weights, saved as the hub's safetensors file."""
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    net = timm.create_model("test_resnet")
    pub = online.published("timm:test_resnet")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(root / pub.file))
    return net, pub


def test_timm_hub_weights_are_checked_against_the_hubs_etag(www, monkeypatch):
    timm = pytest.importorskip("timm")
    root, cache = www
    net, pub = timm_file(root)
    assert pub.file == "timm--test_resnet.r160_in1k.safetensors" and pub.sha256 is None
    digest = sha256(root / pub.file)
    x = torch.randn(2, 3, 64, 64)
    for headers, problem in (({}, "publishes no SHA-256 checksum"),
                             ({"X-Linked-Etag": '"' + "0" * 64 + '"'}, "not the published 0000")):
        with serve(root, {pub.file: headers}) as url:
            monkeypatch.setenv(online.URL_ENV, url)
            with pytest.raises(CnnlabError) as info:
                create_model("timm:test_resnet", weights="download")
        assert problem in str(info.value) and "\n" not in str(info.value)
        assert not cache.exists() or not any(cache.iterdir())  # nothing half-written, no record
    with serve(root, {pub.file: {"X-Linked-Etag": f'"{digest}"'}}) as url:
        monkeypatch.setenv(online.URL_ENV, url)
        model = create_model("timm:test_resnet", weights="download").eval()
    assert (cache / (pub.file + ".sha256")).read_text().strip() == digest
    with torch.no_grad():
        assert torch.equal(model(x), net.eval()(x))
    want = timm.models.get_pretrained_cfg("test_resnet")
    cfg = model.pretrained_cfg
    assert cfg["mean"] == list(want.mean) == [0.5] * 3 and cfg["interpolation"] == want.interpolation
    assert cfg["input_size"] == list(want.input_size) and cfg["crop_fraction"] == want.crop_pct
    assert cfg["source"]["sha256"] == digest and len(cfg["classes"]) == 1000
    monkeypatch.setenv("CNNLAB_OFFLINE", "1")  # the cached file is checked against the recorded hub checksum
    create_model("timm:test_resnet", weights="download")


def test_a_run_fine_tuned_from_downloaded_weights_records_and_uses_their_preprocessing(
        www, monkeypatch, imagenette_small, tmp_path):
    """timm's test_resnet was trained on [-1, 1] pixels (mean = std = 0.5): not ImageNet's, not the data's."""
    from tests.pretrained.test_commands import cli
    from cnnlab.predict import load_images, predict_files
    from cnnlab.runs import load_run
    from tests.pretrained.conftest import val_photos

    root, _ = www
    _, pub = timm_file(root)
    digest = sha256(root / pub.file)
    out = tmp_path / "ft"
    with serve(root, {pub.file: {"X-Linked-Etag": digest}}) as url:
        monkeypatch.setenv(online.URL_ENV, url)
        config = tmp_path / "ft.yaml"
        config.write_text(f"data: {{name: folder, root: '{imagenette_small}', image_size: 32, val: none}}\n"
                          "model: {name: 'timm:test_resnet', weights: download}\n"
                          "train: {epochs: 1, threads: 1, plots: false}\n")
        code, text, err = cli("train", config, "--out", out, "--json")
    assert code == 0, err
    summary = json.loads(text)
    assert summary["mean"] == [0.5] * 3 and summary["std"] == [0.5] * 3
    recorded = json.loads((out / "summary.json").read_text())["weights_preprocessing"]
    assert recorded["mean"] == [0.5] * 3 and recorded["interpolation"] == "bilinear"
    assert recorded["source"]["file"] == pub.file and "classes" not in recorded
    run = load_run(out)
    photo = val_photos(1)[0][0]
    x = (load_images([str(photo)], run.input_size, run.config.data.resize).float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        expected = run.model(x).softmax(1)[0].max().item()
    assert predict_files(str(out), [str(photo)], k=1)[0]["top"][0]["probability"] == round(expected, 4)


def test_models_without_published_weights_are_one_line():
    with pytest.raises(CnnlabError, match="no published weights for model 'convnet'; use tv:NAME, timm:NAME"):
        create_model("convnet", weights="download")
    with pytest.raises(CnnlabError, match="torchvision publishes no weights for 'resnet18_nope'|torchvision has no"):
        create_model("tv:resnet18_nope", weights="download")
