"""``cnnlab data make-video mnist``: deterministic frames and ground truth; MOT scores of known tracks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnlab.cli import main
from cnnlab.video.mnist import VideoParams, compose
from cnnlab.video.mot import mot_lines, score_tracks


def digits(n=60):
    rng = np.random.default_rng(1)
    d = np.zeros((n, 28, 28), np.uint8)
    d[:, 6:22, 8:20] = rng.integers(120, 255, size=(n, 16, 12))  # a solid block of ink per "digit"
    return d, np.arange(n) % 10


def test_compose_is_deterministic_and_its_boxes_are_the_visible_ink():
    d, labels = digits()
    p = VideoParams(size=96, frames=40, objects=6, seed=3)
    a, b = compose(d, labels, p), compose(d, labels, p)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames)) and a.gt == b.gt
    assert compose(d, labels, VideoParams(size=96, frames=40, objects=6, seed=4)).gt != a.gt
    for frame, oid, x, y, w, h, _ in a.gt[:50]:
        patch = a.frames[frame - 1][int(y):int(y + h), int(x):int(x + w)]
        assert patch.max() >= 40  # ink inside every true box
        assert 0 <= x and x + w <= 96 and 0 <= y and y + h <= 96
    moving = [o for o in a.paths if o.start > 0]
    assert moving and all(o.x0 <= -o.side or o.x0 >= 96 or o.y0 <= -o.side or o.y0 >= 96 for o in moving)


def test_perfect_tracks_score_one_and_a_swap_is_an_id_switch(tmp_path):
    gt = tmp_path / "gt.txt"
    rows = [(f, i, [10.0 * i + f, 10.0, 10.0 * i + f + 8, 18.0], 1.0) for f in range(1, 11) for i in (1, 3)]
    gt.write_text(mot_lines(rows))  # 1-based pixels, as MOTChallenge counts them
    assert gt.read_text().startswith("1,1,12.00,11.00,8.00,8.00,")
    perfect = score_tracks(gt, [(f, i + 100, b, s) for f, i, b, s in rows])  # any ids, consistently
    assert perfect["mota"] == 1.0 and perfect["idf1"] == 1.0 and perfect["num_switches"] == 0
    assert perfect["motp_iou"] == 1.0  # the reader's 1-based -> 0-based shift lines the boxes up exactly
    swapped = [(f, (4 - i if f > 5 else i), b, s) for f, i, b, s in rows]  # ids exchanged from frame 6
    s = score_tracks(gt, swapped)
    assert s["num_switches"] == 2 and s["mota"] == pytest.approx(1 - 2 / 20) and s["idf1"] == pytest.approx(0.5)
    empty = score_tracks(gt, [])
    assert empty["mota"] == 0.0 and empty["num_misses"] == 20


def test_make_video_writes_a_mot_sequence(tmp_path, mnist_root, capsys):
    out = tmp_path / "mv"
    code = main(["data", "make-video", "mnist", "--out", str(out), "--frames", "30", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["frames"] == 30
    import av

    with av.open(str(out / "video.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 30 and c.streams.video[0].width == 128
    lines = (out / "gt" / "gt.txt").read_text().splitlines()
    assert len(lines) == summary["boxes"] > 0 and max(int(line.split(",")[0]) for line in lines) <= 30
    objects = json.loads((out / "objects.json").read_text())["objects"]
    assert len(objects) == 12 and all(o["class"] in "0123456789" for o in objects)
    assert "frameRate=25" in (out / "seqinfo.ini").read_text()
    code = main(["data", "make-video", "mnist", "--out", str(out)])
    assert code == 2 and "already exists" in capsys.readouterr().err
    code = main(["data", "make-video", "mnist", "--out", str(tmp_path / "x"), "--objects", "1"])
    assert code == 2 and "--objects 1 is out of range" in capsys.readouterr().err
