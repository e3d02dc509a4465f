"""The Python API (``cnnlab.train``, ``cnnlab.load``, ``Run``) against the CLI doing the same thing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from tests.conftest import write_folder

ROOT = Path(__file__).resolve().parents[2]


def _cli_json(capsys, argv):
    code = main(argv + ["--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _digit_png(mnist_run, tmp_path) -> Path:
    """A real MNIST test digit as a PNG (from the run's own test split)."""
    from PIL import Image

    from cnnlab.data.datasets import load_dataset
    from cnnlab.runs import load_run_config

    data = load_dataset(load_run_config(mnist_run).data)
    path = tmp_path / "digit.png"
    Image.fromarray(data.test_x[3, 0].numpy()).save(path)
    return path


def test_import_cnnlab_does_not_import_torch():
    code = "import sys, cnnlab; cnnlab.load; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.stdout.strip() == "False"  # cnnlab.load resolves without torch; calling it loads torch


def test_cnnlab_train_stays_callable_after_its_modules_load():
    import cnnlab.train.run  # noqa: F401  (importing a submodule sets cnnlab.train to the package)

    assert callable(cnnlab.train)
    assert cnnlab.train.run.train is not None


def test_predict_equals_the_cli_and_every_image_form_agrees(mnist_run, tmp_path, capsys):
    from PIL import Image

    png = _digit_png(mnist_run, tmp_path)
    run = cnnlab.load(mnist_run)
    cli = _cli_json(capsys, ["predict", str(mnist_run), str(png), "-k", "3"])["predictions"]
    api = run.predict(png, k=3)
    assert list(api) == cli  # same classes, same rounded probabilities
    pixels = np.array(Image.open(png))  # (28, 28) uint8
    forms = [str(png), Image.open(png), pixels, pixels[:, :, None], pixels.astype(np.float32) / 255.0,
             torch.from_numpy(pixels)[None], torch.from_numpy(pixels)[None, None].float() / 255.0]
    for form in forms:
        got = run.predict(form, k=3)
        assert [t["class"] for t in got[0]["top"]] == [t["class"] for t in cli[0]["top"]], type(form)
        assert [t["probability"] for t in got[0]["top"]] == [t["probability"] for t in cli[0]["top"]], type(form)
    many = run.predict([png, pixels, torch.from_numpy(np.stack([pixels, pixels]))[:, None]], k=1)
    assert [p["image"] for p in many] == [str(png), "array[1]", "tensor[2][0]", "tensor[2][1]"]
    assert len({p["top"][0]["class"] for p in many}) == 1
    assert "Predictions(4 images)" in repr(many) and "<table>" in many._repr_html_()


def test_a_colour_image_is_converted_as_a_file_is(mnist_run, tmp_path):
    """An RGB array larger than the run's size goes through the file path's conversion (L, resize)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    run = cnnlab.load(mnist_run)
    assert list(run.predict(rgb, k=10))[0]["top"] == list(run.predict(tmp_path / "c.png", k=10))[0]["top"]


@pytest.mark.parametrize("bad, message", [
    (np.zeros((5, 5), np.int16), "dtype int16"),
    (np.full((5, 5), 1.5, np.float32), "must lie on [0, 1]"),
    (np.full((5, 5), np.nan, np.float32), "NaN"),
    (np.zeros((2, 2, 2, 2, 2), np.uint8), "an array must be"),
    (torch.zeros(2, 5, 5, 7), "a tensor must be"),
    (np.zeros((0, 5), np.uint8), "each side must be"),
    (42, "cannot read an image from a int"),
    ([], "no images given"),
    ([[np.zeros((5, 5), np.uint8)]], "nested list"),
    ("/no/such/image.png", "does not exist"),
])
def test_bad_images_are_one_line_errors(mnist_run, bad, message):
    run = cnnlab.load(mnist_run)
    with pytest.raises(CnnlabError) as info:
        run.predict(bad)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_arguments_are_one_line_errors(mnist_run, tmp_path):
    run = cnnlab.load(mnist_run)
    with pytest.raises(CnnlabError, match="k must be an integer of at least 1"):
        run.predict(np.zeros((28, 28), np.uint8), k=0)
    with pytest.raises(CnnlabError, match="apply to detection runs only"):
        run.predict(np.zeros((28, 28), np.uint8), score_threshold=0.5)
    (tmp_path / "plain").mkdir()
    with pytest.raises(CnnlabError, match="not a cnnlab run directory"):
        cnnlab.load(tmp_path / "plain")
    with pytest.raises(CnnlabError, match="does not exist"):
        cnnlab.load(tmp_path / "missing")
    with pytest.raises(CnnlabError, match="takes a run directory or a .onnx file"):
        cnnlab.load(3)


def test_unknown_override_suggests_the_key_and_creates_nothing(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(CnnlabError, match="did you mean") as info:
        cnnlab.train("mnist-fast", out=out, train__epoch=1)
    assert "train.epoch" in str(info.value)
    with pytest.raises(CnnlabError, match="names no config section"):
        cnnlab.train("mnist-fast", out=out, epochs=1)
    with pytest.raises(CnnlabError, match="given twice"):
        cnnlab.train("mnist-fast", out=out, overrides={"train.epochs": 1}, train__epochs=2)
    assert not out.exists()


def _tiny_config(root: Path) -> dict:
    return {"name": "api-tiny", "data": {"name": "folder", "root": str(root), "image_size": 16,
                                         "val_fraction": 0.2, "test_fraction": 0.2, "batch_size": 16},
            "model": {"name": "convnet", "blocks": 2, "filters": 4, "dense": 0},
            "train": {"epochs": 2, "threads": 1}}


def test_train_writes_what_the_cli_writes(tmp_path, capsys):
    import yaml

    root = write_folder(tmp_path / "images", per_class=20, size=16)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(_tiny_config(root)))
    cli = _cli_json(capsys, ["train", str(config), "--out", str(tmp_path / "cli"), "optim.lr=0.01"])
    run = cnnlab.train(str(config), out=tmp_path / "api", quiet=True, optim__lr=0.01)
    assert isinstance(run, cnnlab.Run) and run.path == tmp_path / "api"
    assert sorted(p.name for p in run.path.iterdir()) == sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert run.summary["test_accuracy"] == cli["test_accuracy"]  # the same deterministic run
    assert run.config.optim.lr == 0.01
    history = run.history
    rows = history.to_dict("records") if hasattr(history, "to_dict") else history
    assert [r["epoch"] for r in rows] == [1, 2]
    a = torch.load(run.path / "final.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cli" / "final.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a dict config trains too, with the same result
    again = cnnlab.train(_tiny_config(root), out=tmp_path / "dict", quiet=True, overrides={"optim.lr": 0.01})
    assert again.summary["test_accuracy"] == cli["test_accuracy"]
    assert "test_accuracy=" in repr(run)


def test_evaluate_profile_and_explain_match_the_library(copy_run, tmp_path, capsys):
    from cnnlab.explain import get_method
    from cnnlab.profile import profile_model

    run_dir = copy_run()
    cli = _cli_json(capsys, ["eval", str(run_dir)])
    run = cnnlab.load(run_dir)
    metrics = run.evaluate()
    assert metrics["test_accuracy"] == cli["test_accuracy"] and metrics["count"] == cli["count"]
    assert "Metrics(test_accuracy=" in repr(metrics) and "data:image/png;base64," in metrics._repr_html_()
    assert run.profile().params == profile_model(run.model, run._load().input_size).params
    png = _digit_png(run_dir, tmp_path)
    explanation = run.explain(png, method="saliency")
    loaded = run._load()
    from cnnlab.api.images import as_uint8_batch

    images, _ = as_uint8_batch(png, loaded.input_size, loaded.config.data.resize)
    target = loaded.model(loaded.normalize(images.float() / 255)).argmax(1)
    expected = get_method("saliency").attribute(loaded.model, loaded.normalize(images.float() / 255), target)
    assert torch.allclose(explanation.maps, expected)
    assert explanation._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = explanation.save(tmp_path / "why.png")
    with pytest.raises(CnnlabError, match="already exists"):
        explanation.save(saved)
    assert explanation.save(saved, overwrite=True) == saved  # a marked explanation PNG is replaced
    with pytest.raises(CnnlabError, match="carries no cnnlab mark"):
        explanation.save(png, overwrite=True)  # the user's own digit.png
    page = run.report(explain_count=0)
    assert page.is_file() and run.report(explain_count=0, overwrite=True) == page
    with pytest.raises(CnnlabError, match="takes no layer"):
        run.explain(png, method="saliency", layer="features.0.0")
    with pytest.raises(CnnlabError, match="did you mean 'gradcam'"):
        run.explain(png, method="grad_cam")


def test_an_interrupt_leaves_a_resumable_run(tmp_path):
    """SIGINT (a notebook's stop button) during cnnlab.train: the run stops resumable, and resumes to the end."""
    root = write_folder(tmp_path / "images", per_class=20, size=16)
    out = tmp_path / "run"
    script = (f"import cnnlab\nrun = cnnlab.train({_tiny_config(root)!r}, out={str(out)!r}, quiet=True, "
              "train__epochs=400)\nprint(run.summary['status'])\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "metrics.jsonl").is_file():
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert stdout.strip() == "interrupted"
    done = cnnlab.load(out).summary["epochs"]  # epochs finished before the interrupt
    run = cnnlab.train(out, resume=True, quiet=True, train__epochs=done + 2)
    assert run.summary["status"] == "completed" and run.summary["epochs"] == done + 2


def test_onnx_file_loads_and_predicts_like_the_run(copy_run, tmp_path):
    run_dir = copy_run()
    run = cnnlab.load(run_dir)
    record = run.export(tmp_path / "m.onnx")
    onnx_run = cnnlab.load(record["file"])
    png = _digit_png(run_dir, tmp_path)
    assert onnx_run.predict(png, k=1)[0]["top"][0]["class"] == run.predict(png, k=1)[0]["top"][0]["class"]
    with pytest.raises(CnnlabError, match="predicts image files or folders"):
        onnx_run.predict(np.zeros((28, 28), np.uint8))


def test_repr_html_renders_in_chromium(mnist_run, tmp_path):
    from tests.report.chromium import PAGE_CHECK, Browser, require_chromium

    path = require_chromium()
    run = cnnlab.load(mnist_run)
    png = _digit_png(mnist_run, tmp_path)
    page = tmp_path / "page.html"
    page.write_text("<html><body>" + run.predict(png)._repr_html_()
                    + f'<img alt="explanation" src="data:image/png;base64,'
                    + __import__("base64").b64encode(run.explain(png, method="saliency")._repr_png_()).decode()
                    + '"/></body></html>')
    with Browser(path) as browser:
        session = browser.open(page.as_uri())
        result = browser.evaluate(session, PAGE_CHECK)
        assert browser.errors() == []
    assert str(png) in result["text"]
    assert result["images"] and all(i["complete"] and i["width"] > 0 for i in result["images"])


@pytest.mark.parametrize("name", ["cnnlab.api", "cnnlab.api.images", "cnnlab.api.results"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_the_progress_bar_shows_in_a_notebook(monkeypatch, capsys):
    """In a Jupyter kernel (stderr is no terminal there) the epoch bar is drawn; in a plain pipe it is not."""
    from types import SimpleNamespace

    from cnnlab.train.callbacks import ProgressPrinter

    trainer = SimpleNamespace(steps_per_epoch=4)
    printer = ProgressPrinter()
    printer.on_step_end(trainer, None)
    assert printer.bar is None  # stderr is captured: not a terminal, not a notebook
    monkeypatch.setitem(sys.modules, "ipykernel", SimpleNamespace())
    printer.on_step_end(trainer, None)
    assert printer.bar is not None and printer.bar.n == 1
    printer.bar.close()
