"""The read side of detection does not reach the trainer; ``cnnlab bench detect`` writes its JSON."""

import json

from cnnlab.cli import main

from tests.test_boundaries import modules, offenders

READ_SIDE = ("detect/runs.py", "detect/evaluate.py", "detect/postprocess.py", "detect/model.py", "detect/loss.py",
             "detect/targets.py", "detect/metrics.py", "detect/draw.py", "detect/batches.py")
TRAINER = ("cnnlab.train.trainer", "cnnlab.train.run", "cnnlab.train.callbacks")


def test_eval_and_predict_of_detection_runs_do_not_import_the_trainer():
    files = {k: v for k, v in modules().items() if k in READ_SIDE}
    assert len(files) == len(READ_SIDE)
    assert offenders(files, lambda m: m.startswith(TRAINER)) == {}


def test_bench_detect_writes_json(tmp_path, capsys):
    assert main(["bench", "detect", "--sizes", "32", "--budget", "0.01", "--train-batch", "2", "--infer-batch", "4",
                 "--out-dir", str(tmp_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    row = payload["results"][0]
    assert row["size"] == 32 and row["train_images_per_second"] > 0 and row["infer_images_per_second"] > 0
    assert 0 < row["postprocess_share"] < 1
    written = json.loads(open(payload["json_path"]).read())
    assert written["benchmark"] == "detect" and written["machine"]["cpu_count"]


def test_bench_detect_bad_sizes_are_one_line(capsys):
    assert main(["bench", "detect", "--sizes", "100"]) == 2
    assert "multiples of 32" in capsys.readouterr().err
