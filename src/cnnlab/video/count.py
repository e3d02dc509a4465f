"""Counting tracks: crossings of a line (by direction and class) and entries into a polygon (by class).

A track is represented by its box centre. A **line** ``x1,y1,x2,y2`` is directed from
(x1, y1) to (x2, y2); a track crosses it when its centre moves from one side to the other
*and* the step between the two centres meets the segment (not its extension). The direction
is named by the side it ends on, looking along the line on screen (y grows downward):
``to_right`` or ``to_left``. For a horizontal line drawn left to right, ``to_right`` is moving
*down* the picture. Each track is counted at most once per line (its first crossing), so a
track that hovers on the line is not counted again and again. A centre exactly on the line
keeps the side it had.

A **region** ``x1,y1,x2,y2,x3,y3,...`` is a polygon; a track *enters* when its centre moves
from outside to inside (even-odd rule). A track first seen inside was never outside and is
not an entry; each track is counted at most once per region.

>>> line = LineCounter((0, 10, 20, 10))
>>> for y in (4, 8, 12, 16):                     # one track moving down across y = 10
...     line.update([(1, (5.0, float(y)), "car")])
>>> line.counts()
{'line': [0, 10, 20, 10], 'to_right': {'car': 1}, 'to_left': {}, 'total': 1}
"""

from __future__ import annotations

import math
from collections import Counter

from cnnlab.errors import CnnlabError


def _side(line, p) -> float:
    (x1, y1, x2, y2), (px, py) = line, p
    return (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)  # > 0: right-hand side on screen


def segments_meet(a, b, c, d) -> bool:
    """Whether segment a-b meets segment c-d (touching counts).

    >>> segments_meet((0, 0), (2, 2), (0, 2), (2, 0)), segments_meet((0, 0), (1, 1), (3, 0), (3, 5))
    (True, False)
    """
    def orient(p, q, r):
        v = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
        return int(v > 0) - int(v < 0)

    def on(p, q, r):  # r on segment p-q, given collinear
        return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])

    o1, o2, o3, o4 = orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
    if o1 != o2 and o3 != o4:
        return True
    return any(o == 0 and on(p, q, r) for o, p, q, r in ((o1, a, b, c), (o2, a, b, d), (o3, c, d, a), (o4, c, d, b)))


def inside(polygon, p) -> bool:
    """Even-odd point-in-polygon test; ``polygon`` is [(x, y), ...].

    >>> square = [(0, 0), (10, 0), (10, 10), (0, 10)]
    >>> inside(square, (5, 5)), inside(square, (15, 5))
    (True, False)
    """
    x, y = p
    result = False
    n = len(polygon)
    for i in range(n):
        (xa, ya), (xb, yb) = polygon[i], polygon[(i + 1) % n]
        if (ya > y) != (yb > y) and x < xa + (y - ya) * (xb - xa) / (yb - ya):
            result = not result
    return result


class LineCounter:
    """Counts tracks crossing one directed line segment; feed :meth:`update` ``(track_id, centre, class)`` per frame."""

    def __init__(self, line) -> None:
        self.line = tuple(float(v) for v in line)
        self.last: dict[int, tuple[tuple[float, float], float]] = {}  # track -> (centre, side sign)
        self.counted: set[int] = set()
        self.by_direction = {"to_right": Counter(), "to_left": Counter()}

    def update(self, tracks) -> None:
        a, b = self.line[:2], self.line[2:]
        for track_id, centre, cls in tracks:
            side = _side(self.line, centre)
            if track_id in self.last:
                before, was = self.last[track_id]
                if (track_id not in self.counted and side != 0 and was != 0 and (side > 0) != (was > 0)
                        and segments_meet(before, centre, a, b)):
                    self.by_direction["to_right" if side > 0 else "to_left"][cls] += 1
                    self.counted.add(track_id)
                side = side if side != 0 else was  # on the line: keeps its side
            self.last[track_id] = (centre, side)

    def counts(self) -> dict:
        total = sum(sum(c.values()) for c in self.by_direction.values())
        return {"line": [round(v, 2) if v != int(v) else int(v) for v in self.line],
                **{k: dict(sorted(v.items())) for k, v in self.by_direction.items()}, "total": total}


class RegionCounter:
    """Counts tracks entering one polygon; feed :meth:`update` ``(track_id, centre, class)`` per frame."""

    def __init__(self, polygon) -> None:
        self.polygon = [(float(x), float(y)) for x, y in polygon]
        self.was_inside: dict[int, bool] = {}
        self.counted: set[int] = set()
        self.entered: Counter = Counter()

    def update(self, tracks) -> None:
        for track_id, centre, cls in tracks:
            now = inside(self.polygon, centre)
            if now and self.was_inside.get(track_id) is False and track_id not in self.counted:
                self.entered[cls] += 1
                self.counted.add(track_id)
            self.was_inside[track_id] = now

    def counts(self) -> dict:
        flat = [round(v, 2) if v != int(v) else int(v) for p in self.polygon for v in p]
        return {"region": flat, "entered": dict(sorted(self.entered.items())), "total": sum(self.entered.values())}


def _numbers(text: str, option: str) -> list[float]:
    try:
        values = [float(v) for v in str(text).replace(" ", "").split(",")]
    except ValueError:
        raise CnnlabError(f"{option} {text!r} is not a list of numbers; give x1,y1,x2,y2,... in pixels") from None
    if not all(math.isfinite(v) for v in values):
        raise CnnlabError(f"{option} {text!r} holds a value that is not a finite number")
    return values


def _inside_frame(values: list[float], option: str, text: str, width: int, height: int) -> None:
    for x, y in zip(values[::2], values[1::2]):
        if not (0 <= x <= width and 0 <= y <= height):
            raise CnnlabError(f"{option} {text!r}: the point ({x:g}, {y:g}) is outside the {width}x{height} frame; "
                              f"give points with 0 <= x <= {width} and 0 <= y <= {height}")


def parse_line(text: str, width: int, height: int) -> tuple[float, float, float, float]:
    """``"x1,y1,x2,y2"`` -> a line inside a ``width`` x ``height`` frame; anything else is a one-line error.

    >>> parse_line("0,50,100,50", 100, 100)
    (0.0, 50.0, 100.0, 50.0)
    """
    values = _numbers(text, "--count-line")
    if len(values) != 4:
        raise CnnlabError(f"--count-line {text!r} has {len(values)} number(s); give exactly x1,y1,x2,y2")
    _inside_frame(values, "--count-line", text, width, height)
    if values[:2] == values[2:]:
        raise CnnlabError(f"--count-line {text!r}: both ends are the same point; give two different points")
    return tuple(values)  # type: ignore[return-value]


def parse_region(text: str, width: int, height: int) -> list[tuple[float, float]]:
    """``"x1,y1,x2,y2,x3,y3,..."`` -> a polygon of at least 3 points inside the frame, with an area.

    >>> parse_region("0,0,10,0,10,10", 20, 20)
    [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)]
    """
    values = _numbers(text, "--count-region")
    if len(values) % 2 or len(values) < 6:
        raise CnnlabError(f"--count-region {text!r} has {len(values)} number(s); give at least 3 points "
                          "as x1,y1,x2,y2,x3,y3 (an even count, 6 or more)")
    _inside_frame(values, "--count-region", text, width, height)
    points = list(zip(values[::2], values[1::2]))
    area = sum(xa * yb - xb * ya for (xa, ya), (xb, yb) in zip(points, points[1:] + points[:1])) / 2
    if abs(area) < 1e-9:
        raise CnnlabError(f"--count-region {text!r} encloses no area (its points are on one line); "
                          "give the corners of a polygon")
    return points
