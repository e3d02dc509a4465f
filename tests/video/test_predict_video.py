"""``cnnlab predict RUN VIDEO``: frames give what their PNGs give; JSON lines; the annotated video; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.video import predict_video
from tests.video.conftest import moving_squares, write_audio_only, write_video


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def squares_video(tmp_path_factory) -> Path:
    """20 frames of the detector's own kind of scene (white squares on black, 64x64), moving."""
    from tests.detect.scenes import squares

    data = squares(1, 64, seed=3)
    base = data.images[0, 0].numpy()
    frames = [np.repeat(np.roll(base, 2 * i, axis=1)[:, :, None], 3, axis=2) for i in range(20)]
    return write_video(tmp_path_factory.mktemp("vid") / "squares.mp4", frames)


def decoded_frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_detections_in_a_frame_equal_predict_on_that_frame_saved_as_png(det_run, squares_video, tmp_path):
    from cnnlab.detect.runs import predict_detection_files

    records = list(predict_video(det_run, squares_video, batch=4, score_threshold=0.05))
    assert [r["frame"] for r in records] == list(range(20))
    frames = decoded_frames(squares_video)
    compared = 0
    for k in (0, 7, 13):
        png = tmp_path / f"frame{k}.png"
        Image.fromarray(frames[k]).save(png)
        expected = predict_detection_files(det_run, [str(png)], score_threshold=0.05)[0]["detections"]
        got = records[k]["boxes"]
        assert [d["class"] for d in got] == [d["label"] for d in expected]
        for g, e in zip(got, expected):
            assert g["score"] == pytest.approx(e["score"], abs=1e-3)  # a batch of 4 vs one image: float noise only
            np.testing.assert_allclose(g["box"], e["box"], atol=0.05)
        compared += len(got)
    assert compared > 0  # the comparison saw real boxes


def test_json_lines_then_a_summary_and_the_annotated_video(det_run, squares_video, tmp_path, capsys):
    out = tmp_path / "annotated.mp4"
    code, stdout, _ = cli(capsys, "predict", det_run, squares_video, "--out", out, "--json", "--every", "3",
                          "--track", "--count-line", "32,0,32,64", "--count-region", "0,0,20,0,20,64,0,64")
    assert code == 0
    lines = [json.loads(line) for line in stdout.splitlines()]
    records, summary = lines[:-1], lines[-1]
    assert [r["frame"] for r in records] == list(range(0, 20, 3))
    assert all(set(r) == {"frame", "time", "boxes"} for r in records)
    assert summary["summary"] is True and summary["frames_decoded"] == 20 and summary["frames_processed"] == 7
    assert set(summary["counts"]) == {"lines", "regions"}
    assert summary["tracker"]["min_hits"] == 2  # the thresholds the ids came from
    with av.open(str(out)) as c:  # every input frame is written, at the input's size and rate
        s = c.streams.video[0]
        assert (sum(1 for _ in c.decode(s)), s.width, s.height, s.average_rate) == (20, 64, 64, 25)
    counts = json.loads((tmp_path / "annotated.counts.json").read_text())
    assert counts["lines"] == summary["counts"]["lines"] and "cnnlab" in counts
    # the output policy: an existing file is refused, cnnlab's own replaced with --overwrite
    code, _, err = cli(capsys, "predict", det_run, squares_video, "--out", out)
    assert code == 2 and "already exists" in err
    code, _, _ = cli(capsys, "predict", det_run, squares_video, "--out", out, "--overwrite", "--duration", "0.2")
    assert code == 0 and len(decoded_frames(out)) == 5
    # --tracker sets the tracker's thresholds: they are in the summary
    code, stdout, _ = cli(capsys, "predict", det_run, squares_video, "--json", "--track", "--tracker", "min_hits=3",
                          "--tracker", "low_score=0.05")
    tracker = json.loads(stdout.splitlines()[-1])["tracker"]
    assert code == 0 and (tracker["min_hits"], tracker["low_score"]) == (3, 0.05)


def test_a_classifier_captions_top_classes_and_a_frame_folder_is_a_video(cls_run, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(moving_squares(6, 32, 32)):
        Image.fromarray(f).save(folder / f"{i:04d}.png")
    out = tmp_path / "captioned.mkv"
    code, stdout, _ = cli(capsys, "predict", cls_run, folder, "--video", "--fps", "5", "--json", "-k", "2",
                          "--out", out)
    assert code == 0
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert len(lines) == 7 and all(len(r["top"]) == 2 for r in lines[:-1])
    assert lines[1]["time"] == pytest.approx(0.2) and lines[-1]["fps"] == 5
    frames = decoded_frames(out)
    assert len(frames) == 6 and frames[0].shape == (32, 32, 3)
    assert np.abs(frames[0][:12].astype(int) - moving_squares(1, 32, 32)[0][:12]).mean() > 10  # the caption bar


def test_a_truncated_video_keeps_what_decodes(det_run, tmp_path, capsys):
    full = write_video(tmp_path / "full.mkv", moving_squares(60))
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    code, stdout, err = cli(capsys, "predict", det_run, cut, "--json")
    summary = json.loads(stdout.splitlines()[-1])
    assert code == 0 and 0 < summary["frames_decoded"] < 60
    head = tmp_path / "head.mkv"
    head.write_bytes(data[:300])  # the header and no frame
    out = tmp_path / "never.mp4"
    code, _, err = cli(capsys, "predict", det_run, head, "--out", out)
    assert code == 2 and err.startswith("cnnlab: error:") and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".never*"))


def bad_cases(tmp_path, video):
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    other = tmp_path / "other.mp4"
    with av.open(str(other), "w") as c:  # a video without cnnlab's comment
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        for p in s.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    audio = write_audio_only(tmp_path / "tone.wav")
    return [
        ([fake], "FFmpeg cannot open it"),
        ([audio, "--video"], "no video stream"),
        ([video, "--every", "0"], "--every 0 must be at least 1"),
        ([video, "--batch", "0"], "--batch 0 is out of range"),
        ([video, "--track", "--count-line", "0,0,500,0"], "outside the 64x64 frame"),
        ([video, "--track", "--count-region", "0,0,10,10"], "at least 3 points"),
        ([video, "--count-line", "0,0,10,10"], "add --track"),
        ([video, "--out", other, "--overwrite"], "carries no cnnlab mark"),
        ([video, "--out", tmp_path / "x.gif"], "extension .gif"),
        ([video, "--out", tmp_path / "x.txt"], "extension .txt"),
        ([video, "--start", "-1"], "--start -1"),
        ([video, "--duration", "0"], "--duration 0"),
        ([video, "--fps", "10"], "--fps applies to a folder"),
        ([video, "--mot-gt", tmp_path / "gt.txt"], "add --track"),
        ([video, "--tracker", "min_hits=3"], "add --track"),
        ([video, "--track", "--tracker", "min_hit=3"], "did you mean 'min_hits'"),
        ([video, "--track", "--tracker", "high_score=2"], "high_score"),
        ([video, "--track", "--tracker", "max_age"], "KEY=VALUE"),
    ]


def test_bad_input_is_one_line_and_writes_nothing(det_run, squares_video, tmp_path, capsys):
    for extra, match in bad_cases(tmp_path, squares_video):
        before = sorted(p.name for p in tmp_path.iterdir())
        code, stdout, err = cli(capsys, "predict", det_run, *extra)
        assert code == 2, (extra, err)
        assert err.startswith("cnnlab: error:") and len(err.strip().splitlines()) == 1 and match in err, (extra, err)
        assert sorted(p.name for p in tmp_path.iterdir()) == before, extra


def test_a_classifier_cannot_track_and_image_options_stay_for_images(cls_run, squares_video, tmp_path, capsys):
    code, _, err = cli(capsys, "predict", cls_run, squares_video, "--track")
    assert code == 2 and "--track needs a detection run" in err
    png = tmp_path / "a.png"
    Image.fromarray(moving_squares(1)[0]).save(png)
    code, _, err = cli(capsys, "predict", cls_run, png, "--every", "2")
    assert code == 2 and "--every applies to a video" in err


def test_an_onnx_classifier_gives_the_runs_top_classes_on_video(cls_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    model = tmp_path / "model.onnx"
    code, _, err = cli(capsys, "export", cls_run, "--out", model, "--parity-images", "0")
    assert code == 0, err
    clip = write_video(tmp_path / "clip.mp4", moving_squares(5, 32, 32))
    from_run = [r["top"] for r in predict_video(cls_run, clip, k=2)]
    from_onnx = [r["top"] for r in predict_video(str(model), clip, k=2)]
    assert [[t["class"] for t in top] for top in from_onnx] == [[t["class"] for t in top] for top in from_run]
    for a, b in zip(from_onnx, from_run):
        assert [t["probability"] for t in a] == pytest.approx([t["probability"] for t in b], abs=1e-3)
    import subprocess
    import sys

    probe = (f"import sys; from cnnlab.video import predict_video; n = len(list(predict_video({str(model)!r}, "
             f"{str(clip)!r}))); print(n, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["5", "False"], done.stderr[-500:]  # the ONNX path never imports torch
