"""`cnnlab predict --native-size`: images at their own size through a global-pooling network, refused otherwise."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from cnnlab.cli import main
from tests.conftest import write_folder


def _train(tmp_path, folder, name, **model):
    cfg = {"name": name, "data": {"name": "folder", "root": str(folder), "cache_dir": str(tmp_path / "cache"),
                                  "batch_size": 8, "val": "none"},
           "model": {"name": "convnet", "blocks": 2, "filters": [4, 8], **model},
           "train": {"epochs": 1, "threads": 1, "plots": False}}
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / name
    assert main(["train", str(tmp_path / f"{name}.yaml"), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("native")
    folder = write_folder(tmp / "images", per_class=8, size=16)
    return (_train(tmp, folder, "gap", global_pool="avg", dense=0), _train(tmp, folder, "flat", dense=8), tmp)


def test_native_size_classifies_each_image_at_its_own_size(runs, capsys):
    from cnnlab.runs import load_run

    gap, _, tmp = runs
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h) in enumerate(((24, 20), (16, 16), (40, 9))):
        path = tmp / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    code = main(["predict", str(gap), *map(str, paths), "--native-size", "-k", "3", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    record = json.loads(out.out)["predictions"]
    run = load_run(gap)
    for item, path in zip(record, paths):
        x = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            probs = run.model(run.normalize(x)).softmax(1)[0]  # the reference: the whole image, not resized
        top = probs.topk(3)
        assert [p["class"] for p in item["top"]] == [run.classes[int(i)] for i in top.indices]
        np.testing.assert_allclose([p["probability"] for p in item["top"]], top.values.numpy(), atol=1e-4)


def test_native_size_refusals_are_one_line(runs, capsys):
    gap, flat, tmp = runs
    img = tmp / "ok.png"
    Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(img)
    tiny = tmp / "tiny.png"
    Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).save(tiny)
    cases = [
        ([str(flat), str(img)], "--native-size needs a network that ends in global pooling"),
        ([str(gap), str(tiny)], "is too small for this network at its own size"),
        (["model.onnx", str(img)], "an exported ONNX model has a fixed input size"),
    ]
    for argv, message in cases:
        code = main(["predict", *argv, "--native-size"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err
    assert main(["predict", str(flat), str(img)]) == 0  # without the flag the flat network resizes, as before
