"""`cnnlab bench train` on a tiny folder: it runs both presets, writes JSON, and reports the ratio.

Timings are not asserted (tests never assert timings); the structure and the stop-at-target are.
"""

import json

from cnnlab.cli import main


def test_bench_train_writes_results(tiny_folder, cache_dir, tmp_path, capsys):
    out_dir = tmp_path / "results"
    common = [f"data.root={tiny_folder}", f"data.cache_dir={cache_dir}", "data.image_size=16", "data.batch_size=8",
              "model.filters=8", "train.epochs=3", "train.early_stopping.patience=null"]
    code = main(["bench", "train", "folder-convnet", "--baseline", "folder-convnet", "--seeds", "2",
                 "--target", "0.0", "--out-dir", str(out_dir), "--json", *common])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and len(result["results"]) == 2
    first = result["results"][0]
    assert first["reached"] == 2 and [r["epochs"] for r in first["runs"]] == [1, 1]  # target 0 stops at epoch 1
    assert first["pipeline_images_per_second"] > 0 and first["standard_augment_over_training"] > 0
    assert result["speedup_vs_baseline"] > 0
    files = list(out_dir.glob("train-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["machine"]["cpu_count"] >= 1


def test_bench_train_unreachable_target(tiny_folder, cache_dir, tmp_path, capsys):
    common = [f"data.root={tiny_folder}", f"data.cache_dir={cache_dir}", "data.image_size=16", "model.filters=4",
              "train.epochs=1", "train.early_stopping.patience=null"]
    code = main(["bench", "train", "folder-convnet", "--baseline", "folder-convnet", "--seeds", "1",
                 "--target", "1.01", "--out-dir", str(tmp_path), *common])
    out = capsys.readouterr().out
    assert code == 0 and "0/1" in out and "faster" not in out
