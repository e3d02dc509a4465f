"""Visibility in the MNIST video's ground truth, the scorer's ignore rule, the video-like training frames,
and pictures drawn in the encoding thread."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.errors import CnnlabError
from cnnlab.video import mnist
from cnnlab.video.mnist import Path_, VideoParams, compose
from cnnlab.video.mot import mot_lines, score_tracks


def blocks(n=10, value=200):
    """``n`` 28x28 "digits": a solid 12 x 16 block of ink at columns 8-19, rows 6-21."""
    d = np.zeros((n, 28, 28), np.uint8)
    d[:, 6:22, 8:20] = value
    return d, np.arange(n) % 10


def test_a_digit_half_hidden_behind_a_later_one_has_visibility_one_half_and_its_visible_box(monkeypatch):
    # A sits still at (10, 10): ink x 18..29, y 16..31. B (drawn in front) stands at x = 24, so its
    # 28-px square hides A's ink columns 24..29: 6 of 12 columns -> visibility 0.5, box x 18..23.
    a = Path_(0, 0, 28, 10.0, 10.0, 0.0, 0.0, 0, 2)
    b = Path_(1, 1, 28, 24.0, 10.0, 0.0, 0.0, 1, 2)  # appears in frame 1
    monkeypatch.setattr(mnist, "_plan", lambda rng, labels, p: [a, b])
    video = compose(*blocks(), VideoParams(size=64, frames=3, objects=2))
    rows = {(f, i): (x, y, w, h, v) for f, i, x, y, w, h, v in video.gt}
    assert rows[(1, 1)] == (18.0, 16.0, 12.0, 16.0, 1.0)  # frame 1 (1-based): A alone, all of it shows
    assert rows[(2, 1)] == (18.0, 16.0, 6.0, 16.0, 0.5)
    assert rows[(2, 2)] == (32.0, 16.0, 12.0, 16.0, 1.0)
    monkeypatch.setattr(mnist, "_plan", lambda rng, labels, p: [a, Path_(1, 1, 28, 20.0, 10.0, 0, 0, 1, 2)])
    hidden = compose(*blocks(), VideoParams(size=64, frames=3, objects=2))
    assert [v for f, i, *_, v in hidden.gt if (f, i) == (2, 1)] == [pytest.approx(2 / 12, abs=1e-4)]
    assert compose(*blocks(), VideoParams(size=64, frames=3, objects=2), keep={1}).frames[0].shape == (64, 64)


def test_amodal_boxes_cover_a_hidden_digits_whole_ink_inside_the_frame(monkeypatch):
    # the scene of the test above: A half hidden behind B. Amodal: A's box stays its whole ink
    # (x 18..29) with the same visibility 0.5; a digit cut by the frame's edge is cut there.
    a = Path_(0, 0, 28, 10.0, 10.0, 0.0, 0.0, 0, 2)
    b = Path_(1, 1, 28, 24.0, 10.0, 0.0, 0.0, 1, 2)
    edge = Path_(2, 2, 28, 50.0, 30.0, 0.0, 0.0, 0, 2)  # ink x 58..69: columns 58..63 in a 64-px frame
    monkeypatch.setattr(mnist, "_plan", lambda rng, labels, p: [a, b, edge])
    video = compose(*blocks(), VideoParams(size=64, frames=3, objects=3, amodal=True))
    rows = {(f, i): (x, y, w, h, v) for f, i, x, y, w, h, v in video.gt}
    assert rows[(2, 1)] == (18.0, 16.0, 12.0, 16.0, 0.5)
    assert rows[(2, 3)] == (58.0, 36.0, 6.0, 16.0, 0.5)
    visible = compose(*blocks(), VideoParams(size=64, frames=3, objects=3))
    assert np.array_equal(np.stack(visible.frames), np.stack(video.frames))  # the same pictures
    assert {(f, i): v for f, i, *_, v in visible.gt} == {(f, i): v for f, i, *_, v in video.gt}


def test_objects_below_the_visibility_threshold_are_ignored_not_missed_nor_false_positives(tmp_path):
    gt = tmp_path / "gt.txt"
    # object 1 always fully visible; object 2 10 % visible in frames 1-5, fully from frame 6
    rows = [(f, 1, [10.0, 10.0, 20.0, 20.0], 1.0, 1.0) for f in range(1, 11)]
    rows += [(f, 2, [40.0, 10.0, 50.0, 20.0], 1.0, 0.1 if f <= 5 else 1.0) for f in range(1, 11)]
    gt.write_text(mot_lines(rows))
    assert gt.read_text().splitlines()[0] == "1,1,11.00,11.00,10.00,10.00,1.00,1,1.0000"
    tracks = [(f, 7, [10.0, 10.0, 20.0, 20.0], 0.9) for f in range(1, 11)]
    only_one = score_tracks(gt, tracks)  # nothing on object 2: its 5 hidden frames are not misses
    assert only_one["num_objects"] == 15 and only_one["num_misses"] == 5 and only_one["ignored_boxes"] == 0
    both = score_tracks(gt, tracks + [(f, 8, [40.0, 10.0, 50.0, 20.0], 0.9) for f in range(1, 11)])
    assert both["num_false_positives"] == 0 and both["mota"] == 1.0 and both["ignored_boxes"] == 5
    strict = score_tracks(gt, tracks, min_visibility=0)  # every visible box counts
    assert strict["num_objects"] == 20 and strict["num_misses"] == 10
    # a box that is not on the ignored object is still a false positive
    stray = score_tracks(gt, tracks + [(3, 9, [80.0, 80.0, 90.0, 90.0], 0.9)])
    assert stray["num_false_positives"] == 1 and stray["ignored_boxes"] == 0
    with pytest.raises(CnnlabError, match="min_visibility 2"):
        score_tracks(gt, tracks, min_visibility=2)


def test_video_like_training_frames_are_labelled_with_the_videos_visible_boxes(tmp_path):
    from cnnlab.data.annotations import Problems
    from cnnlab.data.formats.voc import read_voc
    from cnnlab.video.frame_scenes import STRIDE, clip_seed, split_frames, write_frame_scenes

    train, test = blocks(30, 200), blocks(30, 90)
    frames = split_frames(*train, 30, seed=5, split=0)
    video = compose(*train, VideoParams(seed=clip_seed(5, 0, 0)))  # the first clip, every frame
    for k, (image, objects) in enumerate(frames[:250 // STRIDE]):
        t = k * STRIDE  # clip 0 keeps frames 0, 10, 20, ...
        assert np.array_equal(image, video.frames[t])
        expected = sorted([int(x), int(y), int(x + w), int(y + h)] for f, i, x, y, w, h, v in video.gt
                          if f == t + 1 and v >= mnist.MIN_VISIBLE)
        assert sorted(o["box"] for o in objects) == expected
    # training frames hold training digits only (ink 200), test frames test digits (ink 90)
    assert {int(image.max()) for image, objects in frames if objects} == {200}
    assert max(int(image.max()) for image, _ in split_frames(*test, 5, seed=5, split=1)) <= 90
    out = tmp_path / "fs"
    out.mkdir()
    manifest = write_frame_scenes(out, (*train, *test), train=12, test=4, seed=5)
    splits, classes = read_voc(out, None, Problems(strict=False))  # the reader `train ... data.root=DIR` uses
    expected = [frames[:12], split_frames(*test, 4, seed=5, split=1)]
    for name, want in zip(("train", "test"), expected):
        got = sorted(splits[name], key=lambda a: str(a.image))
        assert len(got) == len(want)
        for ann, (_, objects) in zip(got, want):
            assert sorted(np.asarray(ann.boxes).tolist()) == sorted(o["box"] for o in objects)
            assert sorted(classes[i] for i in ann.labels) == sorted(str(o["label"]) for o in objects)
    assert manifest["boxes"] == sum(len(o) for part in expected for _, o in part)


def test_a_picture_is_drawn_in_the_writers_thread_and_a_bad_one_fails_the_write(tmp_path):
    import av

    from cnnlab.video.draw import annotate
    from cnnlab.video.io import VideoWriter
    from cnnlab.video.pipeline import Picture

    rgb = np.zeros((32, 48, 3), np.uint8)
    record = {"boxes": [{"class": "7", "score": 0.9, "box": [4, 4, 20, 20], "track": 2}]}
    picture = Picture(rgb, record, [(0, 16, 47, 16)], [], ["line 1: 0 to_right, 0 to_left"])
    assert np.array_equal(np.asarray(picture), annotate(rgb, record, [(0, 16, 47, 16)], [],
                                                          ["line 1: 0 to_right, 0 to_left"]))
    with VideoWriter(tmp_path / "p.mp4", 48, 32, 25) as w:
        for _ in range(5):
            w.write(picture)
    with av.open(str(tmp_path / "p.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 5
    with pytest.raises(CnnlabError, match="expected a uint8 frame"):
        with VideoWriter(tmp_path / "bad.mp4", 48, 32, 25) as w:
            w.write(lambda: np.zeros((8, 8, 3), np.uint8))
    assert not (tmp_path / "bad.mp4").exists()
