"""The README's tracking table, reproduced: train detect-mnist-scenes, compose the MNIST video, score the tracks.

About 20 minutes on one core (the training); run with ``make test-slow``.
"""

from __future__ import annotations

import json

import pytest

from cnnlab.cli import main

README_MOTA, README_IDF1 = 0.731, 0.730  # seed 0 row of the README's table


@pytest.mark.slow
def test_a_detect_mnist_scenes_run_reaches_the_readmes_mota_and_idf1(tmp_path, mnist_root, capsys):
    run, video = tmp_path / "scenes", tmp_path / "mnist-video"
    assert main(["train", "detect-mnist-scenes", "train.threads=1", "--quiet", "--out", str(run)]) == 0
    assert main(["data", "make-video", "mnist", "--out", str(video)]) == 0
    capsys.readouterr()
    code = main(["predict", str(run), str(video / "video.mp4"), "--track", "--mot-gt", str(video / "gt" / "gt.txt"),
                 "--json"])
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 0
    # Training on the CPU is deterministic for one seed and thread; the margin allows another torch build.
    assert summary["mot"]["mota"] >= README_MOTA - 0.03 and summary["mot"]["idf1"] >= README_IDF1 - 0.03, summary["mot"]
