"""Random, truncated and damaged bytes as images, IDX files, CIFAR batches, classes.tsv and checkpoints.

Dataset files go through :func:`cnnlab.data.datasets.load_dataset`: it returns a
well-formed dataset (uint8 images (N, C, H, W), one label per image, every label a
class index) or raises CnnlabError with one line under 500 characters. Checkpoints go
through the commands that read them (eval, predict, profile, train --resume), with
the CLI properties of test_cli_fuzz.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
from pathlib import Path

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz import harness
from tests.fuzz.cli_cases import run_cli_case
from tests.fuzz.harness import examples
from tests.fuzz.strategies import apply_corruption, bomb_png, corruption, png_header


def _load(**data_options):
    """load_dataset in the child, plus the shape of what it returned."""
    import torch

    from cnnlab.config import DataConfig
    from cnnlab.data.datasets import load_dataset

    data = load_dataset(DataConfig(**data_options))
    problems = []
    for split, x, y in (("train", data.train_x, data.train_y), ("test", data.test_x, data.test_y)):
        if x.dtype != torch.uint8 or x.dim() != 4:
            problems.append(f"{split} images are {x.dtype} of shape {tuple(x.shape)}, not uint8 (N, C, H, W)")
        if len(x) != len(y):
            problems.append(f"{split}: {len(x)} images but {len(y)} labels")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= data.num_classes):
            problems.append(f"{split} labels span [{int(y.min())}, {int(y.max())}] but there are "
                            f"{data.num_classes} classes")
    assert not problems, "; ".join(problems)
    return f"{data.num_classes} classes, {len(data.train_y)} train, {len(data.test_y)} test"


def _library_case(template: Path, *parts: str) -> harness.Case:
    case = harness.new_case()
    for part in parts:
        shutil.copytree(template / part, case.sandbox / part)
    return case


# ----------------------------------------------------------------------------- image folders


def image_damage() -> st.SearchStrategy[tuple]:
    """A damaged copy of an image, a bomb, or a file of another kind."""
    side = st.sampled_from([1, 16, 100000, 2 ** 31 - 1])
    return st.one_of(
        corruption(), corruption(),
        st.tuples(st.just("png_header"), side, side, st.sampled_from([0, 2, 3, 6])),
        st.just(("replace", b"BM" + b"\xff" * 60)),
        st.just(("bomb",)),  # a valid 20000 x 20000 PNG, over Pillow's decompression-bomb limit
    )


def damaged_image(spec: tuple, original: bytes) -> bytes:
    if spec[0] == "bomb":
        return _bomb()
    if spec[0] == "png_header":
        return png_header(*spec[1:])
    return apply_corruption(spec, original)


@examples(40)
@given(damage=st.lists(st.tuples(st.integers(0, 17), image_damage()), min_size=1, max_size=4),
       whole_class=st.booleans(), extra=st.sampled_from([None, "dir.png", "empty.jpg", "link.png"]),
       image_size=st.sampled_from([None, 8, 16]), channels=st.sampled_from([None, 1, 3]), strict=st.booleans())
@example(damage=[(0, ("bomb",))], whole_class=False, extra=None, image_size=None, channels=None, strict=False)
def test_image_folder(template, damage, whole_class, extra, image_size, channels, strict):
    """``whole_class`` breaks every image of one class with the first damage: that class must not stay silently."""
    harness.count("data.folder")
    case = _library_case(template, "images")
    try:
        files = sorted(p for p in (case.sandbox / "images").rglob("*.png"))
        original = files[0].read_bytes()
        targets = [(p, damage[0][1]) for p in files if p.parent.name == "square"] if whole_class else \
            [(files[i % len(files)], spec) for i, spec in damage]
        for path, spec in targets:
            path.write_bytes(damaged_image(spec, original))
        if extra == "dir.png":
            (case.sandbox / "images" / "hstripes" / "dir.png").mkdir()
        elif extra == "empty.jpg":
            (case.sandbox / "images" / "vstripes" / "empty.jpg").write_bytes(b"")
        elif extra == "link.png":
            (case.sandbox / "images" / "hstripes" / "link.png").symlink_to("link.png")
        options = dict(name="folder", root="images", image_size=image_size, channels=channels, strict=strict,
                       cache_dir=str(case.tmp / "cache"))
        outcome = harness.run_isolated(lambda: _load(**options), case)
        harness.check_library(outcome, f"load_dataset(folder with damaged images {damage}, {options})")
    finally:
        harness.remove_case(case)


_BOMB: list[bytes] = []


def _bomb() -> bytes:
    if not _BOMB:
        _BOMB.append(bomb_png(20000, 20000))
    return _BOMB[0]


@examples(25)
@given(table=st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.lists(st.tuples(st.sampled_from(["hstripes", "square", "vstripes", "", " ", "x"]),
                       st.text(max_size=600)), max_size=5).map(
        lambda rows: "\n".join(f"{a}\t{b}" for a, b in rows).encode("utf-8", "surrogatepass")),
    st.just("hstripes\th\u00e9\n".encode("latin-1")),
    st.just(b"\xff\xfe" + "hstripes\tx\n".encode("utf-16-le")),
))
@example(table=b"\x99\x11\x9c{")  # UnicodeDecodeError in datasets.readable_class_names
def test_classes_tsv(template, table):
    harness.count("data.classes_tsv")
    case = _library_case(template, "images")
    try:
        tsv = case.sandbox / "images" / "classes.tsv"
        tsv.write_bytes(table)
        outcome = harness.run_isolated(
            lambda: _load(name="folder", root="images", cache_dir=str(case.tmp / "cache")), case)
        harness.check_library(outcome, f"load_dataset(folder with classes.tsv {table[:200]!r})")
    finally:
        harness.remove_case(case)


# ----------------------------------------------------------------------------- IDX files

IDX_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@st.composite
def idx_header(draw) -> bytes:
    """A well-formed IDX header with random type, rank and dimensions, then some data."""
    import struct

    dtype = draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07]))
    dims = draw(st.lists(st.sampled_from([0, 1, 2, 10, 28, 40, 2 ** 32 - 1, 65536]), max_size=4))
    body = draw(st.binary(max_size=64))
    return bytes([0, 0, dtype, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body


def idx_damage() -> st.SearchStrategy[tuple]:
    """Damage to the bytes on disk, to the content inside the gzip, a new header, or new labels."""
    return st.one_of(
        st.tuples(st.just("file"), corruption()),
        st.tuples(st.just("content"), corruption()),
        st.tuples(st.just("header"), idx_header()),
        st.tuples(st.just("labels"), st.lists(st.integers(0, 255), min_size=1, max_size=40)),
    )


@examples(35)
@given(dataset=st.sampled_from(["mnist", "fashion-mnist"]), stem=st.sampled_from(IDX_NAMES), damage=idx_damage())
@example(dataset="mnist", stem="train-labels-idx1-ubyte", damage=("labels", [200]))  # label 200 of 10 classes
def test_idx_files(template, dataset, stem, damage):
    """mnist holds .gz files, fashion-mnist raw ones."""
    harness.count("data.idx")
    from cnnlab.data.idx import write_idx

    case = _library_case(template, f"data/{dataset}")
    try:
        folder = case.sandbox / "data" / dataset
        path = folder / (stem + ".gz") if (folder / (stem + ".gz")).exists() else folder / stem
        gz = path.suffix == ".gz"
        stored = path.read_bytes()
        content = gzip.decompress(stored) if gz else stored
        layer, spec = damage
        if layer == "file":
            new = apply_corruption(spec, stored)
        else:
            if layer == "content":
                content = apply_corruption(spec, content)
            elif layer == "header":
                content = spec
            else:  # as many labels as the file held (so the counts agree), some outside 0..9
                count = int.from_bytes(content[4:8], "big") if content[3] == 1 else len(spec)
                labels = (spec * (count // len(spec) + 1))[:count]
                write_idx(case.tmp / "labels", np.array(labels, dtype=np.uint8))
                content = (case.tmp / "labels").read_bytes()
            new = gzip.compress(content, mtime=0) if gz else content
        path.write_bytes(new)
        outcome = harness.run_isolated(lambda: _load(name=dataset, data_dir="data"), case)
        harness.check_library(outcome, f"load_dataset({dataset}) with {path.name} damaged by {damage!r}"[:2000])
    finally:
        harness.remove_case(case)


# ----------------------------------------------------------------------------- CIFAR batches

CIFAR_FILES = ["data_batch_1", "data_batch_3", "test_batch", "batches.meta"]
EVIL_PICKLE = b"cos\nsystem\n(S'echo pwned > pwned.txt'\ntR."


@st.composite
def cifar_payload(draw) -> bytes:
    """A pickled object in place of a batch: wrong types, shapes, lengths, labels or names."""
    n = draw(st.sampled_from([0, 1, 4, 5]))
    width = draw(st.sampled_from([3072, 3071, 1024, 0]))
    dtype = draw(st.sampled_from([np.uint8, np.float32, np.int64, object]))
    data = draw(st.one_of(
        st.just(np.zeros((n, width), dtype=dtype)),
        st.just(np.zeros((n, 3, 32, 32), dtype=np.uint8)),
        st.sampled_from([None, "data", b"data", [1, 2, 3], 7, {}]),
    ))
    labels = draw(st.one_of(
        st.lists(st.integers(-5, 300), max_size=6),
        st.sampled_from([None, "abc", [1.5] * 4, [None] * 4, np.arange(4), [[1]] * 4, 3]),
    ))
    names = draw(st.one_of(st.lists(st.one_of(st.binary(max_size=8), st.text(max_size=8), st.integers()),
                                    max_size=12), st.sampled_from([None, "abc", 5])))
    obj = draw(st.one_of(
        st.just({b"data": data, b"labels": labels, b"label_names": names}),
        st.just({"data": data, "labels": labels}),
        st.just({b"label_names": names}),
        st.sampled_from([[], "text", 42, None, (1, 2), {1: 2}]),
    ))
    return pickle.dumps(obj, protocol=draw(st.sampled_from([2, 4])))


@examples(35)
@given(name=st.sampled_from(CIFAR_FILES),
       damage=st.one_of(corruption(), cifar_payload().map(lambda b: ("replace", b)),
                        cifar_payload().map(lambda b: ("replace", b)), st.just(("replace", EVIL_PICKLE))))
@example(name="test_batch", damage=("replace", pickle.dumps({b"label_names": []}, protocol=2)))  # TypeError
@example(name="data_batch_1", damage=("replace", pickle.dumps({"data": None, "labels": [1]}, protocol=2)))
@example(name="data_batch_3", damage=("replace", pickle.dumps({"data": "data", "labels": [1]}, protocol=2)))
@example(name="batches.meta", damage=("replace", pickle.dumps({b"label_names": [b"\xdb"]}, protocol=2)))
def test_cifar_batches(template, name, damage):
    harness.count("data.cifar")
    case = _library_case(template, "data/cifar-10-batches-py")
    try:
        path = case.sandbox / "data" / "cifar-10-batches-py" / name
        new = apply_corruption(damage, path.read_bytes())
        path.write_bytes(new)
        outcome = harness.run_isolated(lambda: _load(name="cifar10", data_dir="data"), case)
        harness.check_library(outcome, f"load_dataset(cifar10) with {name} = {new[:120]!r}...")
        assert not (case.sandbox / "pwned.txt").exists(), "a pickled payload ran"
    finally:
        harness.remove_case(case)


# ----------------------------------------------------------------------------- checkpoints

CHECKPOINT_FIELDS = ["input_size", "classes", "mean", "std", "model", "format", "format_version", "kind",
                     "model_name", "model_options", "num_classes", "config", "epoch"]
ODD_VALUES = [None, "abc", [], [3], [3, -8, 8], [3, 16, 16.5], [0, 0, 0], ["3", "16", "16"], [3, 100000, 100000],
              [10 ** 20, 1, 1], {"a": 1}, float("nan"), 10 ** 30, [[1]], True, [0.5], [0.0, 0.0, 0.0],
              [float("nan")] * 3, ["a"], [1, 2, 3], [None, None], 99, -1, "cnnlab-checkpoint", {}]


def checkpoint_damage() -> st.SearchStrategy[tuple]:
    """Damaged bytes, or a loadable checkpoint with one or two fields replaced (or dropped)."""
    field = st.tuples(st.sampled_from(CHECKPOINT_FIELDS), st.sampled_from(range(len(ODD_VALUES) + 2)))
    return st.one_of(
        st.tuples(st.just("bytes"), corruption()),
        st.tuples(st.just("fields"), st.lists(field, min_size=1, max_size=2)),
    )


def damaged_checkpoint(spec: tuple, original: bytes) -> bytes:
    if spec[0] == "bytes":
        return apply_corruption(spec[1], original)
    import io

    import torch

    record = torch.load(io.BytesIO(original), weights_only=True)
    for key, index in spec[1]:
        if index == len(ODD_VALUES):
            record.pop(key, None)
        elif index == len(ODD_VALUES) + 1:
            record[key] = torch.zeros(3)
        else:
            record[key] = ODD_VALUES[index]
    buffer = io.BytesIO()
    torch.save(record, buffer)
    return buffer.getvalue()


READERS = [["eval", "run"], ["eval", "run", "--weights", "last.pt"], ["eval", "run", "--weights", "best.pt"],
           ["predict", "run", "img.png"], ["predict", "run", "img.jpg", "-k", "2"], ["profile", "run", "--no-timing"],
           ["train", "--resume", "run", "--quiet"], ["train", "--resume", "run", "train.epochs=3", "--quiet"]]


@examples(30)
@given(names=st.sampled_from([["final.pt"], ["last.pt"], ["best.pt"], ["final.pt", "best.pt", "last.pt"]]),
       damage=checkpoint_damage(), argv=st.sampled_from(READERS))
@example(names=["final.pt"], damage=("fields", [("input_size", 0)]), argv=["eval", "run"])  # TypeError, load_run
@example(names=["final.pt"], damage=("fields", [("mean", 1)]), argv=["predict", "run", "img.png"])  # normalize
@example(names=["final.pt"], damage=("fields", [("format_version", 1)]), argv=["predict", "run", "img.png"])
@example(names=["best.pt"], damage=("fields", [("mean", 1)]), argv=["eval", "run", "--weights", "best.pt"])
def test_checkpoints(template, names, damage, argv):
    """The same damage goes into each named checkpoint of the sandbox's run, then a reader runs."""

    def damage_run(sandbox: Path) -> None:
        for name in names:
            path = sandbox / "run" / name
            path.write_bytes(damaged_checkpoint(damage, path.read_bytes()))

    run_cli_case(template, argv, "checkpoint.cli", prepare=damage_run)
