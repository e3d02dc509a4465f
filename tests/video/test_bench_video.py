"""``cnnlab bench video`` on a tiny setting: every stage measured, the JSON written, bad sizes refused."""

from __future__ import annotations

import json

from cnnlab.cli import main


def test_bench_video_measures_each_stage(tmp_path, capsys):
    code = main(["bench", "video", "--sizes", "64", "--frames", "6", "--batch", "3", "--rounds", "2", "--out-dir", str(tmp_path),
                 "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    (row,) = payload["results"]
    assert row["size"] == 64 and row["frames"] == 6
    for key in ("decode_fps", "inference_fps", "encode_fps", "end_to_end_fps"):
        assert row[key] > 0
    assert row["end_to_end_over_inference"] == round(row["end_to_end_fps"] / row["inference_fps"], 3)
    assert json.loads(open(payload["json_path"]).read())["benchmark"] == "video"


def test_bench_video_refuses_bad_settings(tmp_path, capsys):
    for argv, match in ((["--sizes", "100"], "multiples of 32"), (["--frames", "0"], "--frames 0"),
                        (["--preset", "mnist-fast"], "not a detection config")):
        code = main(["bench", "video", *argv, "--out-dir", str(tmp_path)])
        err = capsys.readouterr().err
        assert code == 2 and match in err and err.startswith("cnnlab: error:"), (argv, err)
    assert list(tmp_path.iterdir()) == []
