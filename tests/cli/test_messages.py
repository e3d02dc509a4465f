"""Messages that misled: each file given as weights or a checkpoint is named for what it is (random bytes,
YAML, TorchScript, ONNX, an image), torch's own warnings stay off stderr, and no message suggests an
action that would fail or overwrite a run."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.errors import CnnlabError
from tests.cli_checks import cli


def torchscript_file(path: Path) -> Path:
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    return path


@pytest.fixture
def foreign_files(tmp_path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what its message must say it is)."""
    rng = np.random.default_rng(0)
    (tmp_path / "random.pt").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    (tmp_path / "config.pt").write_text("name: run\ndata:\n  name: mnist\n")
    (tmp_path / "notes.pt").write_text("[1, 2, 3]\n")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "picture.pt", format="PNG")
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07\x12\x07pytorch\x1a\x03onnx" + bytes(64))
    return {"random": (tmp_path / "random.pt", "its bytes are no format cnnlab reads"),
            "yaml": (tmp_path / "config.pt", "a YAML text file"),
            "text": (tmp_path / "notes.pt", "a text file"),
            "image": (tmp_path / "picture.pt", "an image"),
            "onnx": (tmp_path / "model.onnx", "an ONNX model"),
            "torchscript": (torchscript_file(tmp_path / "ts.pt"), "a TorchScript archive")}


def test_each_foreign_weights_file_is_named_for_what_it_is(foreign_files):
    from cnnlab.models.weights import read_weights

    messages = {}
    for name, (path, says) in foreign_files.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(CnnlabError) as info:
                read_weights(path)
        assert not [w for w in caught if issubclass(w.category, UserWarning)], (name, caught)  # torch's, leaked
        messages[name] = str(info.value)
        assert says in messages[name] and "pickled Python object" not in messages[name], messages[name]
    assert len(set(messages.values())) == len(messages)


def test_a_torchscript_file_as_a_checkpoint_is_named_without_torchs_warning(tmp_path):
    from cnnlab.checkpoint import load_checkpoint

    path = torchscript_file(tmp_path / "final.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CnnlabError, match="corrupt or not a cnnlab checkpoint .*a TorchScript archive"):
            load_checkpoint(path)
    assert not caught, [str(w.message) for w in caught]


def test_a_real_pickle_with_objects_still_says_so(tmp_path):
    from cnnlab.models.weights import read_weights

    torch.save({"w": torch.ones(1), "extra": Path("x")}, tmp_path / "objects.pt")
    with pytest.raises(CnnlabError, match="pickled Python object .*which cnnlab never unpickles"):
        read_weights(tmp_path / "objects.pt")


def test_predict_on_a_torchscript_file_names_what_predict_reads(tmp_path, capsys):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.png")
    code, _, err = cli(capsys, "predict", torchscript_file(tmp_path / "model.pt"), tmp_path / "x.png")
    assert code == 2 and err.count("\n") == 1, err
    assert "a TorchScript archive" in err and "a run directory" in err and "MODEL.onnx" in err, err


def test_features_from_a_training_run_never_suggests_writing_into_it(mnist_run, tmp_path, capsys):
    code, _, err = cli(capsys, "train", "mnist-fast", f"model.features_from={mnist_run}", "--out", tmp_path / "h")
    assert code == 2 and err.count("\n") == 1, err
    assert "is a training run, not a feature cache" in err and f"--out {mnist_run}" not in err, err
    assert f"cnnlab features {mnist_run} --data PRESET --out NEW_DIR" in err, err


def test_a_mysql_storage_names_a_driver_cnnlab_does_not_ship(tmp_path, capsys):
    pytest.importorskip("optuna")
    pytest.importorskip("sqlalchemy")
    try:
        import MySQLdb  # noqa: F401
        pytest.skip("a MySQL driver is installed here")
    except ImportError:
        pass
    from cnnlab.tune.storage import open_storage

    with pytest.raises(CnnlabError) as info:
        open_storage("mysql://me@127.0.0.1:1/db")
    assert "pip install pymysql" in str(info.value) and "cnnlab[sweep]" not in str(info.value)


def test_report_explain_zero_says_nothing_per_method(mnist_run, tmp_path, capsys):
    code, _, err = cli(capsys, "report", mnist_run, "--explain", "0", "--out", tmp_path / "page.html")
    assert code == 0, err
    assert "explaining" not in err, err
    assert "none asked for (--explain 0)" in (tmp_path / "page.html").read_text()
