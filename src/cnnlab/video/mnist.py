"""A video the tests can trust: MNIST test digits on known straight paths, with MOTChallenge ground truth.

``cnnlab data make-video mnist --out DIR`` writes

- ``DIR/video.mp4``: ``frames`` greyscale frames of ``size`` x ``size`` (default 250 at 25 fps,
  128 x 128 -- the frame size ``detect-mnist-scenes`` is trained on, so no rescaling happens);
- ``DIR/gt/gt.txt``: MOTChallenge ground truth (``frame,id,left,top,width,height,1,1,visibility``,
  frames and pixels 1-based, as MOTChallenge counts them), and ``DIR/seqinfo.ini`` as MOTChallenge sequences have;
- ``DIR/objects.json``: every object (its MNIST test index, class, scale, start, velocity,
  first and last frame) and the generation parameters.

The objects: MNIST *test* digits (never seen by a ``detect-mnist-scenes`` run), each rescaled
by a factor in [1, 1.5] (28-42 pixels), moving at constant velocity. Objects 1 and 2 are
scripted to meet head-on and pass through each other (the second occludes the first);
the others enter through one edge and leave through another at random times and speeds
(0.8-2 px a frame), and a few are in the frame from the start. Later objects are drawn in front
(opaque: a digit's square hides what is behind it), so digits really occlude each other.

Every object with any ink in view is in the ground truth of a frame, with its *visibility*: the
fraction of its ink that shows (inside the frame and not hidden), in MOTChallenge's visibility
column (the MOT16/17 layout ``frame,id,left,top,width,height,1,1,visibility``). Its box is the
tight box of its *visible* ink, the convention of the MNIST scenes (a tight box of the ink)
applied to what a camera would see; with ``amodal=True`` (``--amodal``) it is the box of its
whole ink inside the frame, hidden parts included -- MOT16/17's convention, under which a box
keeps its size and moves at the object's speed while the object hides, so a tracker's motion
model is not misled by a box that shrinks behind an occluder. Scoring ignores the objects below :data:`MIN_VISIBLE`
(:mod:`cnnlab.video.mot`): a digit three quarters hidden is neither a miss nor, when found, a
false positive. Everything follows from ``seed``: the same
options give the same frames and ground truth.

>>> import numpy as np
>>> video = compose(np.zeros((20, 28, 28), np.uint8) + 255, np.arange(20) % 10, VideoParams(frames=5))
>>> len(video.frames), video.frames[0].shape, len(video.paths)
(5, (128, 128), 12)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


from cnnlab.errors import CnnlabError
from cnnlab.fileio import write_json_atomic, write_text_atomic

MIN_VISIBLE = 0.25  # objects with less of their ink showing are ignored in scoring (and unlabelled in --scenes)
INK = 40  # a pixel of a rescaled digit at least this bright is ink


@dataclass(frozen=True)
class VideoParams:
    size: int = 128
    frames: int = 250
    fps: int = 25
    objects: int = 12
    seed: int = 0
    amodal: bool = False  # True: a box covers the digit's whole ink in the frame, hidden parts too (MOT16's boxes)

    def check(self) -> "VideoParams":
        for name, value, low, high in (("--size", self.size, 64, 1024), ("--frames", self.frames, 1, 10_000),
                                       ("--fps", self.fps, 1, 120), ("--objects", self.objects, 2, 200)):
            if not low <= value <= high:
                raise CnnlabError(f"{name} {value} is out of range; expected {low} to {high}")
        return self


@dataclass
class Path_:
    index: int  # MNIST test index
    label: int
    side: int  # pixels
    x0: float  # top-left corner at frame `start`
    y0: float
    vx: float  # pixels per frame
    vy: float
    start: int  # first frame the object exists
    end: int  # last frame (inclusive)


@dataclass
class ComposedVideo:
    frames: list[np.ndarray]  # (size, size) uint8 each
    # (frame 1-based, id, left, top, width, height, visibility): every object with any ink in view
    gt: list[tuple[int, int, float, float, float, float, float]]
    paths: list[Path_]


def _plan(rng: np.random.Generator, labels: np.ndarray, p: VideoParams) -> list[Path_]:
    import numpy as np

    s = p.size
    paths = []
    picks = rng.choice(len(labels), size=p.objects, replace=False)
    # Objects 1 and 2: head-on, slightly offset vertically, meeting mid-frame a third of the way in.
    meet = max(1, p.frames // 3)
    for k, direction in enumerate((1, -1)):
        side = int(rng.integers(30, 38))
        speed = 1.2
        x_meet = s / 2 - side / 2
        y = s * 0.35 + 8 * k
        paths.append(Path_(int(picks[k]), int(labels[picks[k]]), side, x_meet - direction * speed * meet, y,
                           direction * speed, 0.0, 0, p.frames - 1))
    for k in range(2, p.objects):
        side = int(rng.integers(28, 43))
        speed = float(rng.uniform(0.8, 2.0))
        if k < 4:  # in the frame from the start, moving in a random direction
            x, y = rng.uniform(0, s - side, size=2)
            angle = rng.uniform(0, 2 * np.pi)
            start = 0
        else:  # enters through a random edge, heads across the frame
            edge = int(rng.integers(4))
            along = rng.uniform(0, s - side)
            x, y = [(-side, along), (s, along), (along, -side), (along, s)][edge]
            target = rng.uniform(s * 0.25, s * 0.75 - side, size=2)
            angle = np.arctan2(target[1] - y, target[0] - x)
            start = int(rng.integers(0, max(1, int(p.frames * 0.7))))
        paths.append(Path_(int(picks[k]), int(labels[picks[k]]), side, float(x), float(y),
                           speed * float(np.cos(angle)), speed * float(np.sin(angle)), start, p.frames - 1))
    return paths


def compose(digits: np.ndarray, labels: np.ndarray, params: VideoParams, keep=None) -> ComposedVideo:
    """Render the frames and the ground truth from MNIST ``digits`` (N, 28, 28) and their ``labels``.

    ``keep``: the 0-based frame indexes to render (default all); the others are skipped, so
    ``frames`` holds only the kept ones (the ground truth keeps their true frame numbers).
    """
    import numpy as np

    from PIL import Image

    p = params.check()
    rng = np.random.default_rng(p.seed)
    paths = _plan(rng, labels, p)
    patches = [np.asarray(Image.fromarray(digits[o.index]).resize((o.side, o.side), Image.BILINEAR), np.uint8)
               for o in paths]
    frames, gt = [], []
    for t in range(p.frames):
        if keep is not None and t not in keep:
            continue
        canvas = np.zeros((p.size, p.size), np.uint8)
        owner = np.full((p.size, p.size), -1, np.int32)  # which object shows at each pixel
        placed = []
        for i, (o, patch) in enumerate(zip(paths, patches)):
            if not o.start <= t <= o.end:
                continue
            x, y = round(o.x0 + o.vx * (t - o.start)), round(o.y0 + o.vy * (t - o.start))
            y0, x0 = max(y, 0), max(x, 0)
            y1, x1 = min(y + o.side, p.size), min(x + o.side, p.size)
            if y1 <= y0 or x1 <= x0:
                continue
            canvas[y0:y1, x0:x1] = patch[y0 - y:y1 - y, x0 - x:x1 - x]  # opaque: later objects in front
            owner[y0:y1, x0:x1] = i
            placed.append((i, x, y))
        for i, x, y in placed:
            ink = patches[i] >= INK  # (side, side)
            total = int(ink.sum())
            ys, xs = np.nonzero(ink)
            ys, xs = ys + y, xs + x
            inside = (ys >= 0) & (ys < p.size) & (xs >= 0) & (xs < p.size)
            ys, xs = ys[inside], xs[inside]
            if total == 0 or len(ys) == 0:
                continue
            shown = owner[ys, xs] == i
            if not shown.any():
                continue
            visibility = round(float(shown.sum() / total), 4)
            if not p.amodal:
                ys, xs = ys[shown], xs[shown]  # the box of what can be seen
            left, top = int(xs.min()), int(ys.min())
            gt.append((t + 1, i + 1, float(left), float(top), float(xs.max() + 1 - left), float(ys.max() + 1 - top),
                       visibility))
        frames.append(canvas)
    return ComposedVideo(frames, gt, paths)


def write_video_dataset(out_dir, digits: np.ndarray, labels: np.ndarray, params: VideoParams) -> dict:
    """Compose and write ``video.mp4``, ``gt/gt.txt``, ``seqinfo.ini`` and ``objects.json`` into ``out_dir``."""
    import numpy as np

    from pathlib import Path

    # why here: `cnnlab --help` imports this module (cnnlab data make-video), and these load numpy
    from cnnlab.video.io import VideoWriter
    from cnnlab.video.mot import mot_lines

    out = Path(out_dir)
    video = compose(digits, labels, params)
    with VideoWriter(out / "video.mp4", params.size, params.size, params.fps) as writer:
        for frame in video.frames:
            writer.write(np.repeat(frame[:, :, None], 3, axis=2))
    (out / "gt").mkdir(exist_ok=True)
    write_text_atomic(out / "gt" / "gt.txt", mot_lines([(f, i, [x, y, x + w, y + h], 1.0, v)
                                                     for f, i, x, y, w, h, v in video.gt]))
    write_text_atomic(out / "seqinfo.ini", f"[Sequence]\nname=mnist-video\nimDir=video.mp4\nframeRate={params.fps}\n"
                                           f"seqLength={params.frames}\nimWidth={params.size}\n"
                                           f"imHeight={params.size}\nimExt=.mp4\n")
    manifest = {"cnnlab": "make-video", "params": asdict(params), "min_visible": MIN_VISIBLE,
                "objects": [{"id": i + 1, "class": str(o.label), **asdict(o)} for i, o in enumerate(video.paths)],
                "boxes": len(video.gt), "boxes_visible": sum(1 for row in video.gt if row[6] >= MIN_VISIBLE)}
    write_json_atomic(out / "objects.json", manifest)
    return manifest
