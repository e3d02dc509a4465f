"""``cnnlab explain`` from the command line on a real MNIST run: figures, maps.npz, JSON, sub-commands, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli import main


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


@pytest.fixture(scope="module")
def test_images(mnist_run):
    from cnnlab.data.datasets import load_dataset
    from cnnlab.runs import load_run

    data = load_dataset(load_run(mnist_run).config.data)
    return data.test_x, data.test_y


def test_maps_by_index_with_saved_maps_and_json(mnist_run, tmp_path, capsys):
    from cnnlab.explain import get_method
    from cnnlab.explain.workflow import model_inputs, run_method_options
    from cnnlab.runs import load_run

    out = tmp_path / "ex"
    code, stdout, err = cli(capsys, "explain", mnist_run, "--index", 3, 0, "--methods", "gradcam,occlusion",
                            "integrated_gradients", "--out", out, "--save-maps", "--json")
    assert code == 0, err
    result = json.loads(stdout)  # exactly one JSON object on stdout
    assert result["methods"] == ["gradcam", "occlusion", "integrated_gradients"]
    assert [item["index"] for item in result["images"]] == [3, 0]
    assert result["layer"] == "features.2.0"  # the last conv layer of mnist-fast's ConvNet
    for item in result["images"]:
        w, h = png_size(Path(item["figure"]))
        assert w > h > 0  # 4 columns (input + 3 methods), 3 rows (modes)
    with np.load(out / "maps.npz", allow_pickle=False) as z:
        assert z["gradcam"].shape == z["occlusion"].shape == (2, 28, 28)
        assert z["indices"].tolist() == [3, 0] and z["paths"].tolist() == ["", ""]
        run = load_run(mnist_run)
        from cnnlab.data.datasets import load_dataset

        data = load_dataset(run.config.data)
        x = model_inputs(run, data.test_x[[3, 0]])
        with torch.no_grad():
            logits = run.model(x)
        np.testing.assert_allclose(z["logits"], logits.numpy(), rtol=1e-5, atol=1e-5)
        assert z["targets"].tolist() == logits.argmax(1).tolist()  # default target: the predicted class
        assert z["labels"].tolist() == data.test_y[[3, 0]].tolist()
        ig = get_method("integrated_gradients")
        expected = ig.attribute(run.model, x, logits.argmax(1), **run_method_options(run, ig, data))
        np.testing.assert_allclose(z["integrated_gradients"], expected.numpy(), rtol=1e-4, atol=1e-6)
        # completeness holds through the whole command: the saved map sums to f(x) - f(black)
        black = model_inputs(run, torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
        with torch.no_grad():
            gap = (logits - run.model(black)).gather(1, logits.argmax(1)[:, None])[:, 0]
        np.testing.assert_allclose(z["integrated_gradients"].sum(axis=(1, 2)), gap.numpy(), rtol=0.05)
    assert (out / ".cnnlab-run").is_file() and (out / "explain.json").is_file()


def test_maps_by_class_mistakes_and_target(mnist_run, tmp_path, capsys, test_images):
    test_x, test_y = test_images
    code, stdout, err = cli(capsys, "explain", mnist_run, "--class", "4", "--count", 2, "--mistakes", 2,
                            "--target", 9, "--methods", "saliency", "--out", tmp_path / "ex", "--json")
    assert code == 0, err
    items = json.loads(stdout)["images"]
    assert [i["true"] for i in items[:2]] == ["4", "4"]
    assert items[0]["index"] == int(torch.nonzero(test_y == 4)[0])
    assert all(i["target"] == "9" for i in items)
    mistakes = items[2:]
    assert len(mistakes) == 2 and all(not m["correct"] for m in mistakes)
    assert mistakes[0]["probability"] >= mistakes[1]["probability"]  # most confident first


def test_maps_of_image_files_with_a_conversion_notice(mnist_run, tmp_path, capsys, test_images):
    test_x, _ = test_images
    digit = tmp_path / "digit.png"
    Image.fromarray(test_x[0, 0].numpy()).save(digit)
    big = tmp_path / "big-rgb.png"
    Image.fromarray(np.stack([test_x[1, 0].numpy()] * 3, -1)).resize((56, 56)).save(big)
    code, stdout, err = cli(capsys, "explain", mnist_run, digit, big, "--methods", "gradcam", "--out",
                            tmp_path / "ex")
    assert code == 0, err
    assert "notice: " + str(big) + " is 56x56 with 3 channel(s); converted to 28x28 with 1 channel(s)" in err
    assert str(digit) + " is" not in err  # a file that fits needs no notice
    assert "digit.png: predicted 7" in stdout
    assert (tmp_path / "ex" / "file-digit.png").is_file() and (tmp_path / "ex" / "file-big-rgb.png").is_file()


def test_default_out_is_inside_the_run_and_is_not_replaced_silently(copy_run, capsys):
    run = copy_run()
    code, stdout, err = cli(capsys, "explain", run, "--methods", "saliency")
    assert code == 0, err
    assert sorted(p.name for p in (run / "explain").glob("*.png")) == [f"test-0000{i}.png" for i in range(4)]
    code, _, err = cli(capsys, "explain", run, "--methods", "saliency")
    assert code == 2 and "already exists; pass --overwrite" in err
    code, _, err = cli(capsys, "explain", run, "--methods", "gradcam", "--index", 9, "--overwrite")
    assert code == 0 and sorted(p.name for p in (run / "explain").glob("*.png")) == ["test-00009.png"]


def test_filters_activations_neurons_predictions(mnist_run, tmp_path, capsys):
    code, stdout, err = cli(capsys, "explain", "filters", mnist_run, "--out", tmp_path / "f.png", "--json")
    assert code == 0, err
    f = json.loads(stdout)
    assert f["layer"] == "features.0.0" and f["filters"] == 16 and f["grid"] == [4, 4] and not f["colour"]
    code, stdout, err = cli(capsys, "explain", "activations", mnist_run, "--index", 0, "--layer", "features.1.0",
                            "--out", tmp_path / "a.png", "--json")
    assert code == 0, err
    a = json.loads(stdout)
    assert a["channels"] == 32 and a["size"] == [14, 14]
    code, stdout, err = cli(capsys, "explain", "neurons", mnist_run, "--layer", "features.2.0", "--count", 10,
                            "--images", 300, "--out", tmp_path / "n.png", "--json")
    assert code == 0, err
    n = json.loads(stdout)
    assert [c["channel"] for c in n["channels"]] == list(range(10))
    # each reported image really is the one (of the 300 searched) that excites its channel most
    from cnnlab.data.datasets import load_dataset
    from cnnlab.explain.filters import layer_output
    from cnnlab.explain.workflow import model_inputs
    from cnnlab.runs import load_run

    run = load_run(mnist_run)
    data = load_dataset(run.config.data)
    acts = layer_output(run.model, "features.2.0", model_inputs(run, data.test_x[:300]))  # (300, 64, 7, 7)
    peaks = acts[:, :10].flatten(2).max(2).values  # (300, 10)
    assert [c["index"] for c in n["channels"]] == peaks.argmax(0).tolist()
    code, stdout, err = cli(capsys, "explain", "predictions", mnist_run, "--rows", 4, "--cols", 5,
                            "--out", tmp_path / "p.png", "--json")
    assert code == 0, err
    p = json.loads(stdout)
    assert p["images"] == 20 and len(p["shown"]) == 20
    assert p["mistakes"] == sum(s["true"] != s["predicted"] for s in p["shown"])
    for name in ("f", "a", "n", "p"):
        assert min(png_size(tmp_path / f"{name}.png")) > 100


BAD = [
    (["--layer", "features.9", "--methods", "gradcam"],
     "layer 'features.9' is not a layer of this model; did you mean 'features.2.0'? conv layers: features.0.0, "
     "features.1.0, features.2.0"),
    (["--target", "10"], "--target 10 is out of range; valid classes are 0..9"),
    (["--class", "x"], "--class 'x' is not a class of this run"),
    (["--methods", "gradcm"], "unknown attribution method 'gradcm'; did you mean 'gradcam'?"),
    (["--index", "10000"], "--index 10000 is out of range; the test set has 10000 images"),
    (["--set", "smoothgrad.samples=3"], "'smoothgrad' is not among the methods run"),
    (["--methods", "occlusion", "--set", "occlusion.windw=3"], "occlusion has no option 'windw'"),
    (["nosuch.png"], "image file nosuch.png does not exist"),
]


@pytest.mark.parametrize("extra,message", BAD, ids=[b[1][:30] for b in BAD])
def test_bad_input_is_one_line_exit_2_nothing_written(mnist_run, tmp_path, capsys, extra, message):
    out = tmp_path / "ex"
    code, stdout, err = cli(capsys, "explain", mnist_run, *extra, "--out", out)
    assert code == 2
    assert err.startswith("cnnlab: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out.exists()


def test_a_run_without_a_checkpoint_or_a_broken_image(copy_run, tmp_path, capsys):
    run = copy_run()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    code, _, err = cli(capsys, "explain", run, broken, "--out", tmp_path / "a")
    assert code == 2 and err.startswith("cnnlab: error: cannot read image") and err.count("\n") == 1
    for name in ("final.pt", "best.pt", "last.pt"):
        (run / name).unlink(missing_ok=True)
    for argv in (["explain", run], ["explain", "filters", run], ["explain", "predictions", run]):
        code, _, err = cli(capsys, *argv, "--out", tmp_path / "b.png" if len(argv) == 3 else tmp_path / "b")
        assert code == 2 and "has no checkpoint" in err and err.count("\n") == 1
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.png").exists()


def test_view_bad_input(mnist_run, tmp_path, capsys):
    cases = [
        (["maps", tmp_path / "none"], "run directory"),
        (["filters", tmp_path / "none"], "run directory"),
        (["activations", mnist_run, "--layer", "head.0", "--index", 0], "layer 'head.0' is not a"),
        (["activations", mnist_run, "--layer", "features.0.0"], "give one image"),
        (["neurons", mnist_run, "--layer", "features.0.0", "--count", 17, "--images", 10], "has 16 channels"),
        (["filters", mnist_run, "--out", tmp_path / "f.jpg"], "must name a .png file"),
        (["filters", mnist_run, "--out", tmp_path / "nope" / "f.png"], "does not exist"),
        (["predictions", mnist_run, "--rows", 0], "--rows and --cols must be at least 1"),
    ]
    for argv, message in cases:
        code, _, err = cli(capsys, "explain", *argv)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
    assert not list(tmp_path.iterdir())


def test_help_shows_both_forms(capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    out = capsys.readouterr().out
    assert "maps,filters,activations,neurons,predictions" in out and "RUN_DIR [IMAGE ...]" in out


def test_a_run_being_written_by_another_process_is_refused(copy_run, tmp_path, capsys):
    import subprocess
    import sys
    import time

    run = copy_run()
    # another process holds the run as a training does
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from cnnlab.rundir import lock_run_dir\n"
        f"with lock_run_dir({str(run)!r}):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for argv in (["explain", run, "--methods", "saliency"], ["explain", "filters", run], ["report", run]):
            code, _, err = cli(capsys, *argv)
            assert code == 2 and "is in use by another cnnlab process" in err, (argv, err)
        assert not (run / "explain").exists() and not (run / "filters.png").exists()
        assert not (run / "report.html").exists()
        # writing elsewhere needs no lock on the run
        code, _, err = cli(capsys, "explain", "filters", run, "--out", tmp_path / "f.png")
        assert code == 0, err
    finally:
        holder.kill()
        holder.wait()
