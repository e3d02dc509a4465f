"""Experiment trackers, for real and offline: what each one stored is read back with its own reader."""

from __future__ import annotations

import json
import struct
import sys
import time

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.train.run import train
from tests.train.helpers import toy_config, toy_data


def need(module: str, extra: str):
    """Import a tracker package; without it the test is skipped locally but fails under CI (the dev extra has it)."""
    import importlib
    import os

    try:
        return importlib.import_module(module)
    except ImportError:
        message = f"{module} is not installed (pip install 'cnnlab[{extra}]'; the dev extra includes it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def read_wandb_log(path):
    """The records of a ``.wandb`` file: LevelDB's log format (32 KiB blocks; records split FULL / FIRST, MIDDLE,
    LAST, each with a 7-byte header: CRC32 (4), length (2), type (1)) after a 7-byte file header ``:W&B``."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    block, pos, pending, out = 32768, 7, b"", []
    while pos + 7 <= len(data):
        space = block - pos % block
        if space < 7:  # a block's tail too short for a header is padding
            pos += space
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:  # zero padding up to the block end
            pos += space
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if len(chunk) < length:  # polled while wandb is still writing this record: it is not there yet
            break
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            out.append(pending + chunk)
            pending = b""
    return out


def kinds_of(path) -> bytes:
    """The record types in a .wandb file so far, as one space-separated byte string (for polling)."""
    from wandb.proto import wandb_internal_pb2

    found = []
    for data in read_wandb_log(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        found.append(record.WhichOneof("record_type") or "")
    return " ".join(found).encode()


def metrics_of(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if r["type"] == "step"], [r for r in lines if r["type"] == "epoch"]


def run_with(tmp_path, loggers: str):
    out = tmp_path / "run"
    summary = train(toy_config(f"train.loggers={loggers}", "train.epochs=2", "train.threads=1"), out,
                    data=toy_data(), quiet=True)
    steps, epochs = metrics_of(out)
    assert len(steps) >= 3 and len(epochs) == 2
    return out, summary, steps, epochs


def test_tensorboard_event_files_read_back(tmp_path):
    need("tensorboard", "tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, summary, steps, epochs = run_with(tmp_path, "[tensorboard]")
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    loss = acc.Scalars("step/loss")
    assert [e.step for e in loss] == [r["step"] for r in steps]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in steps], rel=1e-6)
    assert [e.value for e in acc.Scalars("epoch/train_accuracy")] == pytest.approx(
        [r["train_accuracy"] for r in epochs], rel=1e-6)
    assert acc.Scalars("summary/test_accuracy")[0].value == pytest.approx(summary["test_accuracy"], rel=1e-6)
    assert "epoch/val_accuracy" in scalars and "step/lr" in scalars
    texts = acc.Tags()["tensors"]  # add_text is stored as a string tensor
    assert "config/text_summary" in texts and "summary/text_summary" in texts


def test_mlflow_local_sqlite_store_reads_back_with_mlflow_client(tmp_path, monkeypatch):
    need("mlflow", "mlflow")
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    out, summary, steps, epochs = run_with(tmp_path, "[mlflow]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (out / "mlartifacts").is_dir()
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cnnlab")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["train.epochs"] == "2" and run.data.params["model.name"] == "convnet"
    history = client.get_metric_history(run.info.run_id, "step.loss")
    assert sorted(m.step for m in history) == [r["step"] for r in steps]
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx([r["loss"] for r in steps])
    assert run.data.metrics["summary.test_accuracy"] == pytest.approx(summary["test_accuracy"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "summary.json"} <= artifacts


def test_wandb_offline_run_folder(tmp_path, monkeypatch):
    need("wandb", "wandb")
    for var in ("WANDB_MODE", "WANDB_PROJECT", "WANDB_DIR", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    out, summary, steps, epochs = run_with(tmp_path, "[wandb]")
    (folder,) = (out / "wandb").glob("offline-run-*")
    (records,) = folder.glob("*.wandb")
    # read the offline records back: wandb's record log, parsed with wandb's own protobuf classes
    from wandb.proto import wandb_internal_pb2

    # wandb's service process writes the file behind the run: wait (bounded) for its closing "exit" record
    deadline = time.monotonic() + 60
    while b"exit" not in kinds_of(records) and time.monotonic() < deadline:
        time.sleep(0.2)
    logged, summary_items, config_items, kinds = [], {}, {}, []
    for data in read_wandb_log(records):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        kinds.append(kind)
        key = lambda item: item.key or "/".join(item.nested_key)  # noqa: E731
        if kind == "history":
            logged.append({key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            summary_items.update({key(i): json.loads(i.value_json) for i in record.summary.update})
        elif kind == "run":
            config_items.update({key(i): json.loads(i.value_json) for i in record.run.config.update})
    assert [h["_step"] for h in logged if "step/loss" in h] == [r["step"] for r in steps], (kinds, records.stat().st_size)
    assert [h["step/loss"] for h in logged if "step/loss" in h] == pytest.approx([r["loss"] for r in steps])
    epoch_acc = [h["epoch/train_accuracy"] for h in logged if "epoch/train_accuracy" in h]
    assert epoch_acc == pytest.approx([r["train_accuracy"] for r in epochs])
    assert summary_items["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    assert config_items["train"]["epochs"] == 2 and config_items["model"]["name"] == "convnet"


def test_unknown_or_missing_tracker_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    from cnnlab.config import load_config
    from cnnlab.train.trackers import check_trackers

    with pytest.raises(CnnlabError, match="expected a list of distinct trackers among tensorboard, mlflow, wandb"):
        load_config("mnist-fast", ["train.loggers=[tensorbord]"])
    with pytest.raises(CnnlabError, match="did you mean 'tensorboard'"):
        check_trackers(["tensorbord"])
    # a tracker whose package is missing (an import that fails): one line from the CLI, nothing created
    from cnnlab.cli import main

    monkeypatch.setitem(sys.modules, "mlflow", None)
    assert main(["train", "mnist-fast", "--out", str(tmp_path / "run"), "train.loggers=[mlflow]"]) == 2
    assert capsys.readouterr().err == ("cnnlab: error: train.loggers names mlflow, but its package is not "
                                       "installed: pip install 'cnnlab[mlflow]'\n")
    assert not (tmp_path / "run").exists()
