"""`cnnlab bench transfer` runs end to end on a small real folder and writes its JSON (no timing asserts)."""

import json

import pytest

from cnnlab.bench.transfer import format_table, run_transfer_bench
from cnnlab.config import DataConfig


def test_bench_transfer_writes_both_comparisons(cifar_folder, tmp_path):
    data = DataConfig(name="folder", root=str(cifar_folder), image_size=32,
                      cache_dir=str(cifar_folder.with_name("decoded-b")))
    payload = run_transfer_bench(images=96, models=["mnist-fast"], out_dir=str(tmp_path), say=lambda _: None,
                                 data_cfg=data, budget=0.05, lite0={"skip": True})
    saved = json.loads(open(payload["json_path"]).read())
    assert saved["cache"]["images"] == 96 and saved["cache"]["feature_dim"] == 256
    assert saved["cache"]["cached_epoch_seconds"] > 0 and saved["cache"]["live_epoch_seconds"] > 0
    assert [(r["model"], r["batch"]) for r in saved["inference"]] == [("mnist-fast", 1), ("mnist-fast", 64)]
    assert saved["machine"]["cpu_count"] >= 1
    assert "ONNX Runtime images/s" in "\n".join(format_table(payload))


def test_lite0_rows_time_the_same_network_built_by_timm(monkeypatch):
    """cnnlab's lite0 and timm's have the same parameter count and both train on the same batch; ONNX rows too."""
    pytest.importorskip("timm")
    from cnnlab.bench import lite0

    block = lite0.bench_lite0(size=64, batch=2, rounds=1, inference_size=64, say=lambda _: None)
    f = block["finetune"]
    assert f["reference"].startswith("timm ") and f["parameters"] == f["reference_parameters"] == 3_383_818
    assert f["cnnlab_images_per_second"] > 0 and f["reference_images_per_second"] > 0
    assert f["cnnlab_vs_reference"] == round(f["cnnlab_images_per_second"] / f["reference_images_per_second"], 2)
    assert [r["batch"] for r in block["inference"]] == [1, 2]
    assert all(r["onnxruntime_images_per_second"] > 0 and r["reference_torch_images_per_second"] > 0
               and r["torch_folded_images_per_second"] > 0 for r in block["inference"])
    for r in block["inference"]:  # the row's rate is the fastest of cnnlab's three PyTorch paths, named
        rates = {k: r[f"torch_{k}_images_per_second"] for k in ("nchw", "channels_last", "folded")}
        assert r["torch_layout"] in rates and r["torch_images_per_second"] == max(rates.values())
    table = "\n".join(lite0.format_lite0(block))
    assert "reference, plain loop (NCHW)" in table and "ONNX Runtime images/s" in table


def test_interleaved_medians_each_function_after_a_warm_up():
    from cnnlab.bench.lite0 import interleaved

    calls = []
    seconds = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=2)
    assert calls == ["a", "b"] * 3 and set(seconds) == {"a", "b"}


def test_lite0_options_out_of_range_are_one_line(capsys, tmp_path):
    from cnnlab.cli import main

    for bad in (["--lite0-size", "8"], ["--lite0-batch", "0"], ["--lite0-rounds", "0"]):
        code = main(["bench", "transfer", *bad, "--out-dir", str(tmp_path / "r")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code != 0 and len(err) == 1 and err[0].startswith("cnnlab: error: --lite0-size takes 32..512")
    assert not (tmp_path / "r").exists()
