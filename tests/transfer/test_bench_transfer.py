"""`cnnlab bench transfer` runs end to end on a small real folder and writes its JSON (no timing asserts)."""

import json

from cnnlab.bench.transfer import format_table, run_transfer_bench
from cnnlab.config import DataConfig


def test_bench_transfer_writes_both_comparisons(cifar_folder, tmp_path):
    data = DataConfig(name="folder", root=str(cifar_folder), image_size=32,
                      cache_dir=str(cifar_folder.with_name("decoded-b")))
    payload = run_transfer_bench(images=96, models=["mnist-fast"], out_dir=str(tmp_path), say=lambda _: None,
                                 data_cfg=data, budget=0.05)
    saved = json.loads(open(payload["json_path"]).read())
    assert saved["cache"]["images"] == 96 and saved["cache"]["feature_dim"] == 256
    assert saved["cache"]["cached_epoch_seconds"] > 0 and saved["cache"]["live_epoch_seconds"] > 0
    assert [(r["model"], r["batch"]) for r in saved["inference"]] == [("mnist-fast", 1), ("mnist-fast", 64)]
    assert saved["machine"]["cpu_count"] >= 1
    assert "ONNX Runtime images/s" in "\n".join(format_table(payload))
