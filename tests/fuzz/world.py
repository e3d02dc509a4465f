"""The sandbox every fuzz input runs in: tiny real-format datasets, a trained run, user files.

Built once per test session (``build_template``) and copied for each input, so an
input may break or delete anything inside its copy. Everything is tiny so a real
training run on it takes a fraction of a second:

    data/mnist, data/fashion-mnist     IDX files (gzipped, raw), 40 train / 20 test images of 28x28
    data/cifar-10-batches-py           CIFAR python batches, 4 images per batch
    data/cifar10-jpeg, data/imagenette-160   JPEG class folders (imagenette with classes.tsv)
    images/<3 classes>/*.png           a folder dataset, 16x16
    img.png, img.jpg, notimage.png     files for `predict`
    clip.mp4, frames/, notvideo.mp4    videos for `predict` (an 8-frame H.264 clip not written by cnnlab,
                                       4 numbered PNG frames, a text file named .mp4)
    run/                               a finished run of folder-convnet on images/ (relative data.root)
    runlink -> run                     a symlink to it
    precious/config.yaml, notes.txt    a user's folder that happens to hold a config.yaml
    afile.txt                          a plain file (paths under it cannot exist)
    tiny.yaml, bad.yaml                a valid tiny config and a broken one

``CNNLAB_DATA`` points at ``data/`` of the copy; ``$HOME`` is outside the sandbox.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# Overrides that keep a training on the sandbox data tiny; generated overrides come after
# them and win, so a generated value for any of these keys is still exercised.
TINY_TRAIN = ["train.epochs=1", "train.plots=false", "data.batch_size=8", "data.eval_batch_size=64"]

RUN_OVERRIDES = ["data.root=images", "data.image_size=16", "model.blocks=2", "model.filters=4",
                 "train.epochs=2", "data.batch_size=8", "train.plots=false", "data.val_fraction=0.25"]

TINY_YAML = """\
name: tiny
data: {name: folder, root: images, image_size: 16, batch_size: 8, val_fraction: 0.25}
model: {name: convnet, blocks: 2, filters: 4, dense: 8}
train: {epochs: 1, plots: false}
"""


TINY_SWEEP_YAML = """\
name: tiny-sweep
base: tiny.yaml
objective: {metric: val_accuracy}
sampler: {name: random, seed: 0}
pruner: {name: median}
trials: 2
space:
  optim.lr: {type: float, low: 0.001, high: 0.03, log: true}
  model.dense: [4, 8]
"""


def _idx_split(rng, n: int, classes: int = 10):
    labels = np.arange(n, dtype=np.uint8) % classes
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    return images, labels


def write_idx_dataset(folder: Path, gz: bool, seed: int) -> None:
    from cnnlab.data.idx import write_idx

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for stem, n in (("train", 40), ("t10k", 20)):
        images, labels = _idx_split(rng, n)
        write_idx(folder / f"{stem}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{stem}-labels-idx1-ubyte{suffix}", labels)


def write_cifar10(folder: Path, seed: int) -> None:
    import pickle

    from cnnlab.data.cifar import write_batch

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, size=(4, 3, 32, 32), dtype=np.uint8)
        write_batch(folder / name, images, [0, 1, 2, 3])
    meta = {b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
                             b"ship", b"truck"], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))


def write_jpeg_folders(root: Path, splits: tuple[str, str], classes: list[str], size: int, seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, count in zip(splits, (4, 2)):
        for name in classes:
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.jpg", quality=90)


def _write_videos(sandbox: Path, rng) -> None:
    """clip.mp4 by plain PyAV (so cnnlab must not overwrite it), frames/0001..0004.png, notvideo.mp4."""
    from PIL import Image

    (sandbox / "notvideo.mp4").write_text("this is not a video\n")
    (sandbox / "frames").mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, size=(16, 24, 3), dtype=np.uint8)).save(sandbox / "frames" / f"{i + 1:04d}.png")
    try:
        import av
    except ImportError:  # without the video extra the video inputs are just missing files
        return
    with av.open(str(sandbox / "clip.mp4"), "w") as c:
        stream = c.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 24, 16, "yuv420p"
        for _ in range(8):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, size=(16, 24, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)


def build_template(root: Path) -> Path:
    """Write the sandbox template under ``root`` and return it. Trains the run in this process."""
    from PIL import Image

    from tests.conftest import write_folder

    sandbox = root / "sandbox"
    data = sandbox / "data"
    write_idx_dataset(data / "mnist", gz=True, seed=1)
    write_idx_dataset(data / "fashion-mnist", gz=False, seed=2)
    write_cifar10(data / "cifar-10-batches-py", seed=3)
    write_jpeg_folders(data / "cifar10-jpeg", ("train", "test"), ["airplane", "cat"], 32, seed=4)
    write_jpeg_folders(data / "imagenette-160", ("train", "val"), ["n01440764", "n02102040"], 40, seed=5)
    (data / "imagenette-160" / "classes.tsv").write_text("n01440764\ttench\nn02102040\tspringer\n")
    write_folder(sandbox / "images", per_class=6, size=16)
    rng = np.random.default_rng(6)
    Image.fromarray(rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)).save(sandbox / "img.png")
    Image.fromarray(rng.integers(0, 256, size=(20, 12, 3), dtype=np.uint8)).save(sandbox / "img.jpg")
    (sandbox / "notimage.png").write_text("this is not a PNG\n")
    _write_videos(sandbox, rng)
    (sandbox / "precious").mkdir()
    (sandbox / "precious" / "config.yaml").write_text("# my own project's config, not a cnnlab run\nkeep: true\n")
    (sandbox / "precious" / "notes.txt").write_text("irreplaceable\n")
    (sandbox / "afile.txt").write_text("a plain file\n")
    (sandbox / "tiny.yaml").write_text(TINY_YAML)
    (sandbox / "tiny-sweep.yaml").write_text(TINY_SWEEP_YAML)
    (sandbox / "bad.yaml").write_text("data: [1, 2\nmodel: {\n")
    _train_run(sandbox)
    os.symlink("run", sandbox / "runlink")
    return sandbox


def _train_run(sandbox: Path) -> None:
    import contextlib
    import io

    from cnnlab.cli import main

    cwd = os.getcwd()
    os.chdir(sandbox)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            code = main(["train", "folder-convnet", *RUN_OVERRIDES, f"data.cache_dir={sandbox.parent / 'cache'}",
                         "--out", "run", "--quiet"])
    finally:
        os.chdir(cwd)
    if code != 0 or not (sandbox / "run" / "final.pt").is_file():
        raise RuntimeError(f"could not train the fuzz sandbox's run (exit {code}): {err.getvalue()[-2000:]}")
