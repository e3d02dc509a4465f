"""Still frames composed like the MNIST video, as a detection dataset: train a detector on what the video shows.

``cnnlab data make-video mnist --scenes --out DIR`` writes a VOC folder (the layout of
``cnnlab data make-scenes``, so ``cnnlab train detect-mnist-scenes data.root=DIR`` reads it)
whose images are frames of :func:`cnnlab.video.mnist.compose` clips and whose boxes are that
video's ground truth: opaque occlusion (a digit's square hides what is behind it), digits cut by
the frame's edge, the tight box of the *visible* ink (with ``--amodal`` the whole ink's box inside
the frame, as the ``--amodal`` video's ground truth), and a digit below
:data:`cnnlab.video.mnist.MIN_VISIBLE` of its ink left unlabelled (background).

Why: the MNIST scenes draw every digit whole, inside the frame and blended by a pixel-wise
maximum, so a detector trained on them has never seen half a digit. On the video it boxes a
hidden digit's fragments where the ground truth's visible-ink box is not (IoU < 0.5: a false
positive and a miss at once) -- measured as most of its false positives (docs/video.md).

The training frames use MNIST *training* digits only, the test frames MNIST test digits; the
clips' seeds are spawned from ``seed`` and lie far from ``make-video``'s own seeds. Every
:data:`STRIDE`-th frame of each 250-frame clip is kept (offset by the clip), so consecutive kept
frames are 10 frames apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.data.scenes import CLASSES, start_voc_folder, write_manifest, write_voc_image, write_voc_split
from cnnlab.video.mnist import MIN_VISIBLE, VideoParams, compose

STRIDE = 10  # keep every 10th frame of a clip
CLIP_FRAMES = 250


def clip_seed(seed: int, split: int, clip: int) -> int:
    """The composer's seed of clip ``clip`` of ``split`` (0 train, 1 test): far above make-video's 0, 1, 2, ...

    >>> clip_seed(0, 0, 0) >= 2 ** 20
    True
    """
    return int(np.random.SeedSequence([seed, split, clip]).generate_state(1)[0]) | (1 << 20)


def split_frames(digits: np.ndarray, labels: np.ndarray, count: int, seed: int, split: int, size: int = 128,
                 amodal: bool = False):
    """``count`` (frame (size, size) uint8, objects) pairs; objects ``{"box": [x1, y1, x2, y2], "label": d}``."""
    out = []
    clip = 0
    while len(out) < count:
        params = VideoParams(size=size, frames=CLIP_FRAMES, seed=clip_seed(seed, split, clip), amodal=amodal)
        keep = set(range(clip % STRIDE, CLIP_FRAMES, STRIDE))
        video = compose(digits, labels, params, keep=keep)
        by_frame: dict[int, list] = {}
        for frame, oid, left, top, w, h, visibility in video.gt:
            if visibility < MIN_VISIBLE:
                continue  # unlabelled, as the scorer ignores it: neither an object to find nor background to learn
            by_frame.setdefault(frame - 1, []).append(
                {"box": [int(left), int(top), int(left + w), int(top + h)], "label": video.paths[oid - 1].label})
        for t, image in zip(sorted(keep), video.frames):
            out.append((image, by_frame.get(t, [])))
        clip += 1
    return out[:count]


def write_frame_scenes(out: Path, mnist, train: int = 6000, test: int = 1000, seed: int = 0, size: int = 128,
                       amodal: bool = False) -> dict:
    """Write the VOC folder into the (empty, existing) ``out``; returns the manifest (``scenes.json``, written last).

    ``out`` is a staging folder (:func:`cnnlab.rundir.staged_run_dir`: moved into ``--out`` whole
    once this returns), so the files are staged writes, as :mod:`cnnlab.data.scenes` writes its own.
    """
    train_x, train_y, test_x, test_y = mnist
    out = Path(out)
    start_voc_folder(out, CLASSES)
    boxes = 0
    for split_index, (split, pool, labels, count) in enumerate((("train", train_x, train_y, train),
                                                                ("test", test_x, test_y, test))):
        ids = []
        for i, (image, objects) in enumerate(split_frames(pool, labels, count, seed, split_index, size, amodal)):
            image_id = f"{split}-{i:06d}"
            ids.append(image_id)
            write_voc_image(out, image_id, image, size, objects)
            boxes += len(objects)
        write_voc_split(out, split, ids)
    manifest = {"generator": "cnnlab make-video --scenes", "params": {"size": size, "train": train, "test": test,
                                                                      "seed": seed, "stride": STRIDE, "amodal": amodal},
                "classes": list(CLASSES), "min_visible": MIN_VISIBLE, "boxes": boxes}
    write_manifest(out, manifest)
    return manifest
