"""Line crossings and region entries on hand-made tracks: exact counts."""

from __future__ import annotations

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.video.count import LineCounter, RegionCounter, parse_line, parse_region


def feed(counter, paths):
    """paths: {track_id: (class, [centres per frame])}, frames fed in order (missing frames: track not seen)."""
    length = max(len(p) for _, p in paths.values())
    for i in range(length):
        counter.update([(tid, pts[i], cls) for tid, (cls, pts) in paths.items() if i < len(pts) and pts[i]])


def test_line_crossings_by_direction_and_class():
    line = LineCounter((0, 50, 100, 50))  # horizontal, drawn left to right: to_right = moving down
    feed(line, {
        1: ("car", [(10, 30), (10, 45), (10, 55), (10, 70)]),  # down: to_right
        2: ("car", [(20, 80), (20, 60), (20, 40)]),  # up: to_left
        3: ("truck", [(30, 10), (30, 90)]),  # down in one step
        4: ("car", [(150, 10), (150, 90)]),  # crosses the line's extension only: not counted
        5: ("car", [(40, 40), (40, 45), (40, 48)]),  # never crosses
        6: ("car", [(50, 40), (50, 60), (50, 40), (50, 60)]),  # back and forth: counted once
        7: ("bus", [(60, 40), (60, 50), (60, 50), (60, 60)]),  # rests on the line, then goes on down
    })
    c = line.counts()
    assert c["to_right"] == {"bus": 1, "car": 2, "truck": 1}
    assert c["to_left"] == {"car": 1}
    assert c["total"] == 5


def test_numpy_centres_count_like_python_floats():
    import numpy as np

    line, region = LineCounter((0, 50, 100, 50)), RegionCounter([(0, 0), (50, 0), (50, 50), (0, 50)])
    for y in np.array([80.0, 60.0, 40.0, 20.0]):  # what the tracker's boxes give: numpy floats
        for counter in (line, region):
            counter.update([(1, (np.float64(10.0), y), "car")])
    assert line.counts()["to_left"] == {"car": 1} and region.counts()["entered"] == {"car": 1}


def test_a_diagonal_line_and_its_direction():
    line = LineCounter((0, 0, 100, 100))  # right-hand side of (0,0)->(100,100) on screen is below-left
    feed(line, {1: ("p", [(60, 40), (40, 60)]), 2: ("p", [(30, 70), (70, 30)])})
    assert line.counts()["to_right"] == {"p": 1} and line.counts()["to_left"] == {"p": 1}


def test_region_entries():
    region = RegionCounter([(0, 0), (50, 0), (50, 50), (0, 50)])
    feed(region, {
        1: ("a", [(70, 20), (40, 20), (30, 20)]),  # enters
        2: ("a", [(20, 20), (25, 20)]),  # first seen inside: not an entry
        3: ("b", [(70, 70), (40, 40), (70, 70), (40, 40)]),  # in, out, in: counted once
        4: ("b", [(70, 70), (80, 80)]),  # never inside
    })
    assert region.counts() == {"region": [0, 0, 50, 0, 50, 50, 0, 50], "entered": {"a": 1, "b": 1}, "total": 2}


def test_a_concave_polygon():
    region = RegionCounter([(0, 0), (60, 0), (60, 60), (40, 60), (40, 20), (20, 20), (20, 60), (0, 60)])  # a U
    feed(region, {1: ("a", [(30, 80), (30, 40)]), 2: ("a", [(70, 40), (50, 40)])})  # the notch is outside
    assert region.counts()["entered"] == {"a": 1}


@pytest.mark.parametrize("text,match", [
    ("1,2,3", "exactly"), ("0,0,200,0", "outside the 100x80 frame"), ("a,b,c,d", "not a list of numbers"),
    ("5,5,5,5", "same point"), ("nan,0,1,1", "finite"), ("-1,0,10,10", "outside")])
def test_bad_lines(text, match):
    with pytest.raises(CnnlabError, match=match):
        parse_line(text, 100, 80)


@pytest.mark.parametrize("text,match", [
    ("0,0,10,10", "at least 3 points"), ("0,0,10,0,10", "even count"), ("0,0,10,0,10,90", "outside"),
    ("0,0,10,10,20,20", "no area")])
def test_bad_regions(text, match):
    with pytest.raises(CnnlabError, match=match):
        parse_region(text, 100, 80)
