"""cnnlab.load("efficientnet_lite0.in1k"): the Python API on ImageNet weights gives what the CLI gives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import cnnlab
from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from tests.pretrained.conftest import val_photos


def test_predict_by_name_equals_the_cli_in_every_image_form(capsys):
    photo = val_photos(1)[2][0]  # a real Imagenette validation photo
    code = main(["predict", "efficientnet_lite0.in1k", str(photo), "-k", "5", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    cli = json.loads(out)["predictions"][0]["top"]
    run = cnnlab.load("efficientnet_lite0.in1k")
    assert run.pretrained and run.summary == {} and len(run.classes) == 1000
    assert run.predict(photo, k=5)[0]["top"] == cli
    with Image.open(photo) as img:  # the same photo in memory: the weights' own crop and interpolation
        pixels = np.array(img.convert("RGB"))
        assert run.predict(img.copy(), k=5)[0]["top"] == cli
    assert run.predict(pixels, k=5)[0]["top"] == cli


def test_evaluate_by_name_needs_a_folder_and_an_out(imagenette_small, tmp_path):
    run = cnnlab.load("efficientnet_lite0.in1k")
    with pytest.raises(CnnlabError, match="give folder="):
        run.evaluate()
    metrics = run.evaluate(folder=imagenette_small / "val", out=tmp_path / "zero-shot")
    assert metrics["count"] == 30 and (tmp_path / "zero-shot" / "eval.json").is_file()
