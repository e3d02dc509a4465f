"""train -> eval -> predict from the command line on a tiny VOC folder the test writes (seconds)."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnlab.cli import main

from tests.detect.scenes import squares, write_voc

TRAIN = ["data.name=voc", "data.image_size=64", "data.classes=[filled,hollow]",
         "data.val=test", "data.batch_size=8", "data.eval_batch_size=8", "model.name=convnet", "model.blocks=4",
         "model.filters=8", "detect.strides=[8,16]", "detect.channels=32", "optim.name=adam", "optim.lr=0.005",
         "train.epochs=70", "train.threads=1", "train.plots=false", "train.log_every=1000",
         "train.early_stopping.monitor=val_map50"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    data = squares(8, 64, seed=3)
    write_voc(root, data, "train")
    write_voc(root, data, "test")  # the same scenes: this checks the plumbing, not generalisation
    run = root.parent / "run"
    (root.parent / "detect.yaml").write_text("task: detect\n")
    rc = main(["train", str(root.parent / "detect.yaml"), "--quiet", *TRAIN, f"data.root={root}", "--out", str(run)])
    assert rc == 0
    return root, run, data


def test_train_writes_a_detection_run(trained):
    _, run, _ = trained
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "detect" and summary["status"] == "completed"
    assert summary["test_accuracy"] is None and summary["test_map50"] > 0.8
    assert set(summary["test_per_class"]) == {"filled", "hollow"}
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("val_map50" in e for e in epochs if e["type"] == "epoch")
    # checkpoints load with weights_only=True
    for name in ("best.pt", "last.pt", "final.pt"):
        state = torch.load(run / name, weights_only=True)
        assert state["task"] == "detect" and state["classes"] == ["filled", "hollow"]


def test_eval_prints_map_and_draws(trained, capsys):
    _, run, _ = trained
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "mAP@0.5:" in out and "mAP@[.5:.95]:" in out and "filled" in out and "hollow" in out
    report = json.loads((run / "eval.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert report["map50"] == pytest.approx(summary["test_map50"], abs=1e-6)  # the same weights, the same data
    for name in ("pr_curve.png", "detections.png"):
        assert Image.open(run / name).size[0] > 100


def test_predict_json_boxes_are_in_original_pixels(trained, tmp_path, capsys):
    _, run, _ = trained
    # A 256-wide, 128-high photo with one filled square at (100, 40)-(180, 120). Letterboxed to 64 it
    # is scaled by 1/4 and padded by 16 rows above: the model sees a 20-pixel square at (25, 26)-(45, 46).
    # The JSON must give the box in THIS image's pixels: ignoring the padding would put it 64 rows off,
    # ignoring the scale 4x too small.
    canvas = torch.zeros(128, 256, dtype=torch.uint8)
    canvas[40:120, 100:180] = 255
    path = tmp_path / "wide.png"
    Image.fromarray(canvas.numpy()).save(path)
    assert main(["predict", str(run), str(path), "--json", "--score-threshold", "0.3"]) == 0
    result = json.loads(capsys.readouterr().out)
    dets = result["predictions"][str(path)]
    assert dets and all(set(d) == {"box", "label", "score"} for d in dets)
    best = max(dets, key=lambda d: d["score"])
    assert best["label"] == "filled"
    from torchvision.ops import box_iou

    # a model trained on 8 scenes for seconds finds the square's place well and its size roughly
    x1, y1, x2, y2 = best["box"]
    assert abs((x1 + x2) / 2 - 140) < 12 and abs((y1 + y2) / 2 - 80) < 12, best
    iou = box_iou(torch.tensor([[100., 40., 180., 120.]]), torch.tensor([best["box"]]))
    assert iou.item() > 0.4, best
    got = torch.tensor([d["box"] for d in dets])
    assert got.min() >= 0 and got[:, [0, 2]].max() <= 256 and got[:, [1, 3]].max() <= 128


def test_predict_drops_boxes_that_lie_in_the_letterbox_padding(trained, tmp_path, capsys):
    # A 640x10 strip letterboxes to 64x1 rows of image in 63 rows of padding: at score 0 the model's
    # many boxes in the padding clip to zero height in the strip; none may come back as a detection.
    _, run, _ = trained
    path = tmp_path / "strip.png"
    Image.fromarray(torch.full((10, 640), 255, dtype=torch.uint8).numpy()).save(path)
    assert main(["predict", str(run), str(path), "--json", "--score-threshold", "0"]) == 0
    got = torch.tensor([d["box"] for d in json.loads(capsys.readouterr().out)["predictions"][str(path)]])
    assert len(got) == 0 or ((got[:, 2] > got[:, 0]) & (got[:, 3] > got[:, 1])).all(), got


def test_predict_draws_into_a_marked_folder(trained, tmp_path, capsys):
    root, run, _ = trained
    out = tmp_path / "drawn"
    images = sorted((root / "JPEGImages").iterdir())[:2]
    assert main(["predict", str(run), *map(str, images), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "detection(s)" in text
    assert (out / ".cnnlab-run").is_file() and (out / "detections.json").is_file()
    assert len(list(out.glob("*.png"))) == 2
    assert main(["predict", str(run), str(images[0]), "--out", str(out)]) == 2  # exists: refused, one line
    assert "cnnlab: error:" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["predict", "{run}", "{img}", "--score-threshold", "1.5"], "--score-threshold 1.5 is out of range"),
    (["predict", "{run}", "{img}", "--iou-threshold", "-0.1"], "--iou-threshold -0.1 is out of range"),
    (["eval", "{run}", "--iou-threshold", "2"], "--iou-threshold 2.0 is out of range"),
    (["eval", "{run}", "--tta", "flip"], "--tta applies to classification runs only"),  # was silently ignored
    (["eval", "{run}", "--top", "0"], "--top applies to classification runs only"),  # was silently ignored
])
def test_bad_thresholds_are_one_line(trained, capsys, argv, message):
    root, run, _ = trained
    img = sorted((root / "JPEGImages").iterdir())[0]
    argv = [a.format(run=run, img=img) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@pytest.mark.parametrize("override, message", [
    ("model.name=resnet_nope", "resnet_nope"),
    ("detect.iou_threshold=1.5", "detect.iou_threshold=1.5 is out of range"),
    ("detect.score_threshold=-1", "detect.score_threshold=-1"),
    ("detect.strides=[16,8]", "detect.strides"),
    ("detect.box_loss=l1", "detect.box_loss"),
    ("detect.strides=[32]", "strides"),  # the 4-block backbone stops at stride 16
    ("data.image_size=60", "not a multiple of detect.strides 16"),  # was 'strides [15]; choose among them'
])
def test_bad_detection_config_is_one_line_and_writes_nothing(trained, tmp_path, capsys, override, message):
    root, _, _ = trained
    out = tmp_path / "bad"
    config = str(root.parent / "detect.yaml")
    assert main(["train", config, *TRAIN, f"data.root={root}", override, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_resume_continues_exactly(trained, tmp_path):
    root, _, _ = trained
    config = str(root.parent / "detect.yaml")
    short = [a for a in TRAIN if not a.startswith("train.epochs")] + [f"data.root={root}", "data.augment.hflip=0.5",
                                                                      "data.augment.translate=0.1"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(["train", config, "--quiet", *short, "train.epochs=3", "--out", str(whole)]) == 0
    assert main(["train", config, "--quiet", *short, "train.epochs=1", "--out", str(part)]) == 0
    assert main(["train", "--quiet", "--resume", str(part), "train.epochs=3"]) == 0
    a = torch.load(whole / "final.pt", weights_only=True)["model"]
    b = torch.load(part / "final.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("command", [["report"], ["export", "--out", "{tmp}/m.onnx"], ["explain", "{img}"]])
def test_classification_commands_refuse_a_detection_run_in_one_line(trained, tmp_path, capsys, command):
    root, run, _ = trained
    img = sorted((root / "JPEGImages").iterdir())[0]
    argv = [command[0], str(run)] + [a.format(tmp=tmp_path, img=img) for a in command[1:]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "object-detection run" in err[0], err


def test_profile_counts_a_detection_run(trained, capsys):
    _, run, _ = trained
    assert main(["profile", str(run), "--json", "--no-timing"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["parameters"] == json.loads((run / "summary.json").read_text())["params"]
    assert out["macs"] > 0 and out["output_shape"][1] == 8 * 8 + 4 * 4  # points at strides 8 and 16 of 64x64


@pytest.mark.parametrize("override", ["train.ema=0.99", "train.lookahead=0.5", "train.tta=flip",
                                      "train.whitening=init", "train.compile=true", "train.gpu_fast=true"])
def test_classification_speed_options_are_refused_for_detection(tmp_path, override):
    # these parts are wired into the classification run only: silently ignoring them would mislead
    from cnnlab.config import load_config
    from cnnlab.errors import CnnlabError
    from cnnlab.train.run import train

    cfg = load_config("detect-raccoon", [override])
    with pytest.raises(CnnlabError, match=r"not supported with task=detect") as info:
        train(cfg, out_dir=tmp_path / "run")
    assert override.split("=")[0] in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "run").exists()
