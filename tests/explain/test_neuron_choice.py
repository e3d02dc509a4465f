"""`cnnlab explain neurons --channels 3,17,42 [--image PATH | --index N]`: chosen channels, one chosen image."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from tests.explain.test_cli import cli


def _peaks(run_dir, layer, x_uint8, channels):
    from cnnlab.explain.filters import layer_output
    from cnnlab.explain.workflow import model_inputs
    from cnnlab.runs import load_run

    run = load_run(run_dir)
    acts = layer_output(run.model, layer, model_inputs(run, x_uint8))[:, channels]  # (n, k, h, w)
    return acts.flatten(2).max(2)  # values, positions (n, k)


def test_chosen_channels_searched_over_test_images(mnist_run, tmp_path, capsys):
    from cnnlab.data.datasets import load_dataset
    from cnnlab.runs import load_run

    code, stdout, err = cli(capsys, "explain", "neurons", mnist_run, "--layer", "features.2.0", "--channels",
                            "3,17,42", "--images", 200, "--out", tmp_path / "n.png", "--json")
    assert code == 0, err
    n = json.loads(stdout)
    assert [c["channel"] for c in n["channels"]] == [3, 17, 42]
    data = load_dataset(load_run(mnist_run).config.data)
    values, _ = _peaks(mnist_run, "features.2.0", data.test_x[:200], [3, 17, 42])
    assert [c["index"] for c in n["channels"]] == values.argmax(0).tolist()  # the most exciting image per channel
    np.testing.assert_allclose([c["activation"] for c in n["channels"]], values.max(0).values.numpy(), atol=1e-3)


def test_channels_on_one_image(mnist_run, tmp_path, capsys):
    from cnnlab.data.datasets import load_dataset
    from cnnlab.runs import load_run

    data = load_dataset(load_run(mnist_run).config.data)
    code, stdout, err = cli(capsys, "explain", "neurons", mnist_run, "--layer", "features.1.0", "--channels", "0,5",
                            "--index", 7, "--out", tmp_path / "i.png", "--json")
    assert code == 0, err
    n = json.loads(stdout)
    values, where = _peaks(mnist_run, "features.1.0", data.test_x[7:8], [0, 5])
    assert all(c["index"] == 7 for c in n["channels"])
    np.testing.assert_allclose([c["activation"] for c in n["channels"]], values[0].numpy(), atol=1e-4)
    w = 14  # features.1.0 maps are 14x14
    assert [c["at"] for c in n["channels"]] == [[int(p) // w, int(p) % w] for p in where[0]]
    path = tmp_path / "digit.png"
    Image.fromarray(data.test_x[7, 0].numpy()).save(path)
    code, stdout, err = cli(capsys, "explain", "neurons", mnist_run, "--layer", "features.1.0", "--channels", "0,5",
                            "--image", path, "--out", tmp_path / "f.png", "--json")
    assert code == 0, err
    from_file = json.loads(stdout)
    assert [c["activation"] for c in from_file["channels"]] == [c["activation"] for c in n["channels"]]


def test_bad_channel_choices_are_one_line(mnist_run, tmp_path, capsys):
    cases = [
        (["--channels", "3,99"], "--channels 99: layer features.0.0 has 16 channels (0-15)"),
        (["--channels", "-1"], "--channels -1: layer features.0.0 has 16 channels"),
        (["--channels", "a,b"], "must be channel numbers separated by commas"),
        (["--channels", "1,1"], "with repeats"),
        (["--channels", "1", "--count", 3], "not both"),
        (["--index", 1, "--image", "x.png"], "not both"),
        (["--index", 100000], "--index 100000 is out of range"),
    ]
    for extra, message in cases:
        out = tmp_path / "bad.png"
        code, stdout, err = cli(capsys, "explain", "neurons", mnist_run, "--layer", "features.0.0", *extra,
                                "--images", 20, "--out", out)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0] and not out.exists(), (extra, err)
