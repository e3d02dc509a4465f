"""The Python API on video and on a detector: Run.predict_video yields what cnnlab.video does, and an
in-memory frame gets the boxes its PNG gets."""

from __future__ import annotations

import av
import numpy as np
import pytest

import cnnlab
from cnnlab.video import predict_video
from tests.video.test_predict_video import squares_video  # noqa: F401  (the module's fixture)


def test_run_predict_video_is_the_library_generator(det_run, squares_video):  # noqa: F811
    run = cnnlab.load(det_run)
    got = list(run.predict_video(squares_video, batch=4, score_threshold=0.05))
    assert got == list(predict_video(det_run, squares_video, batch=4, score_threshold=0.05))
    assert [r["frame"] for r in got] == list(range(20))


def test_an_array_frame_gets_the_boxes_of_its_png(det_run, squares_video, tmp_path):  # noqa: F811
    from PIL import Image

    with av.open(str(squares_video)) as c:
        frame = next(iter(c.decode(video=0))).to_ndarray(format="rgb24")  # (H, W, 3) uint8
    Image.fromarray(frame).save(tmp_path / "f.png")
    run = cnnlab.load(det_run)
    from_array = run.predict(frame, score_threshold=0.05)[0]
    from_png = run.predict(tmp_path / "f.png", score_threshold=0.05)[0]
    assert from_array["image"] == "array[0]" and from_array["detections"] == from_png["detections"]
    assert from_png["detections"], "the comparison saw no box"
    with pytest.raises(cnnlab.CnnlabError, match="unknown option 'k2'"):
        run.predict(frame, k2=1)
