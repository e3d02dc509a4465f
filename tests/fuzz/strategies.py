"""Hypothesis strategies: override strings, YAML documents, corrupted files, CLI argument lists.

Keys come from the real config dataclasses and the registered models' options, so
a new config field or model option is fuzzed without touching this file; CLI
options come from each sub-command's real argparse parser for the same reason.

Values are drawn from three pools: small valid values (so the input gets past
validation and runs on the sandbox's tiny data), invalid ones (wrong type, out of
range, malformed), and absurd ones (huge, negative, non-finite). Paths are always
relative to the sandbox, or absolute under a root that does not exist: an input
must never be able to name a real file of the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import typing
from typing import Any

from hypothesis import strategies as st

# ----------------------------------------------------------------------------- keys


@functools.lru_cache(maxsize=None)
def config_keys() -> tuple[str, ...]:
    """Every dotted key of :class:`cnnlab.config.Config` (``train.early_stopping.patience``, ...)."""
    from cnnlab.config import Config

    keys: list[str] = []

    def walk(cls, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if dataclasses.is_dataclass(hint):
                keys.append(prefix + f.name)  # the section itself, e.g. data.augment
                walk(hint, f"{prefix}{f.name}.")
            else:
                keys.append(prefix + f.name)

    walk(Config, "")
    return tuple(keys)


@functools.lru_cache(maxsize=None)
def model_option_keys() -> tuple[str, ...]:
    """``model.<option>`` for every option of every registered model."""
    from cnnlab.models import list_models, model_arguments

    return tuple(sorted({f"model.{k}" for name in list_models() for k in model_arguments(name)}))


@functools.lru_cache(maxsize=None)
def model_names() -> tuple[str, ...]:
    from cnnlab.models import list_models

    return tuple(list_models())


@functools.lru_cache(maxsize=None)
def preset_names() -> tuple[str, ...]:
    from cnnlab.config import preset_names as names

    return tuple(names())


ODD_KEYS = ["", ".", "..", "a..b", ".train", "train.", "train", "data", "model", "optim", "schedule", "name",
            "description", "data.augment", "model.options", "model.options.x", "train.epochs.x", "name.x",
            " train.epochs", "train.epochs ", "TRAIN.EPOCHS", "data.augment.crop_padding.x", "model.name.x",
            "train.early_stopping", "train.early_stopping.x", "x" * 300, "data.augment.x.y.z", "model.model"]
identifier = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)


def keys() -> st.SearchStrategy[str]:
    real = st.sampled_from(config_keys())
    return st.one_of(
        real, real, real,
        st.sampled_from(model_option_keys()),
        st.sampled_from(ODD_KEYS),
        st.tuples(real, identifier).map(lambda t: f"{t[0]}.{t[1]}"),
        st.lists(identifier, min_size=1, max_size=4).map(".".join),
    )


# ----------------------------------------------------------------------------- values


SMALL_INTS = ["0", "1", "2", "3", "-1", "-0", "4", "8", "16"]
ABSURD_NUMBERS = ["100000", "100000000", "99999999999999999999", "-99999999999999999999", str(2 ** 31),
                  str(2 ** 63), str(2 ** 64), "-" + str(2 ** 63), "1e308", "-1e308", "1e309", "1e-320", ".inf",
                  "-.inf", ".nan", "inf", "-inf", "nan", "NaN", "1e6", "1e30"]
YAML_ODDITIES = ["", " ", "null", "~", "true", "false", "yes", "no", "on", "off", "[]", "{}", "[1, 2]", "[16, 32]",
                 "[0]", "[-1]", "[1e308]", "[.nan]", "{a: 1}", "[[[[[1]]]]]", "'quoted'", '"double"', "a: b",
                 "- x", "&a 1", "*a", "[&a 1, *a]", "!!python/object/apply:os.system ['true']",
                 "!!python/name:os.system", "!!binary aGk=", "2001-12-14", "2001-12-14 21:59:43.10",
                 "!!set {a, b}", "? complex key", "|\n  block", "=", "==", "a=b", "#comment", "%", "@", "`",
                 "\t", "x" * 600, "\u00fc", "\u202e", "0x10", "0o17", "1_000", "1:20", "+1", ".5", "1.", "1.5",
                 "0.5", "-0.5", "0.999", "1e-3", "3.0e-3", "{", "[", "}", "]", "'", '"', "!!int x", "!!float x",
                 "!!str", "<<: {a: 1}", "[1, [2, [3, [4]]]]", "{a: {b: {c: {d: 1}}}}"]
WORDS = ["relu", "relu6", "gelu", "silu", "tanh", "batchnorm", "groupnorm", "layernorm", "none", "avg", "max",
         "cifar", "imagenet", "folder", "mnist", "fashion-mnist", "cifar10", "cifar100", "cifar10-jpeg",
         "imagenette-160", "sgd", "adam", "adamw", "rmsprop", "onecycle", "plateau", "cosine", "step", "constant",
         "split", "test", "val", "cpu", "cuda", "cuda:7", "auto", "mps", "meta", "bf16", "fp32", "fp16", "reflect",
         "zero", "resize", "center_crop", "pad", "same", "valid", "double", "single", "dense", "conv", "standard",
         "separable", "fft", "default", "kaiming", "val_loss", "val_accuracy", "images", "run", "data",
         "afile.txt", "precious", "nonexistent"]
safe_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24)


def alias_bomb_flow(levels: int, width: int = 9) -> str:
    """One YAML flow value whose expansion has ``width ** levels`` elements (a "billion laughs")."""
    parts = [f"&a0 [{', '.join(['1'] * width)}]"]
    for i in range(1, levels):
        parts.append(f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "[" + ", ".join(parts) + "]"


def yaml_flow() -> st.SearchStrategy[str]:
    """Nested YAML flow text: lists and maps of scalars."""
    scalar = st.one_of(st.sampled_from(SMALL_INTS + ABSURD_NUMBERS[:8] + WORDS[:10] + ["null", "true", "''"]),
                       st.integers().map(str))
    return st.recursive(
        scalar,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
            st.dictionaries(identifier, inner, max_size=3).map(
                lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"),
        ),
        max_leaves=10,
    )


def values(max_bomb_levels: int = 6) -> st.SearchStrategy[str]:
    """The text after ``=`` in an override."""
    return st.one_of(
        st.sampled_from(SMALL_INTS),
        st.sampled_from(ABSURD_NUMBERS),
        st.sampled_from(YAML_ODDITIES),
        st.sampled_from(WORDS),
        st.integers().map(str),
        st.floats().map(repr),
        st.floats(min_value=0, max_value=1).map(repr),
        safe_text,
        yaml_flow(),
        st.integers(2, max_bomb_levels).map(alias_bomb_flow),
    )


# Keys whose valid values scale the work of a run linearly and without bound: a huge valid
# value is a long run, not a bug, so only small valid values (and invalid ones) are drawn.
WORK_KEYS = {"train.epochs": ["1", "2", "0", "-1", "1.5", "x", "null", "[]", ".inf", ".nan", "-99999999999999999999",
                              "true", "'1'"]}


TYPED_INTS = ["1", "2", "0", "3", "-1", "8", "100000", "100000000", "99999999999999999999", "-99999999999999999999",
              str(2 ** 63), "1.5"]
TYPED_FLOATS = ["0.1", "0.5", "0", "1", "1e-3", "-1", "2", "0.999", ".inf", ".nan", "-.inf", "1e308", "1e-320", "x"]


def _typed_pool(hint: Any) -> list[str]:
    """Values of the right type for a config field (plus a few near misses)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return (_typed_pool(inner[0]) if inner else []) + ["null"]
    if origin is typing.Literal:
        return [str(a) for a in args] + ["nope", "1"]
    if origin is tuple:
        return ["[0.9, 0.999]", "[0.5, 0.5]", "[0.5]", "[.nan, 0.9]", "[0.9, 1.5]", "[-1, 0.9]", "[1, 2, 3]"]
    if hint is bool:
        return ["true", "false", "1", "maybe"]
    if hint is int:
        return TYPED_INTS
    if hint is float:
        return TYPED_FLOATS
    if hint is str:
        return WORDS[:20] + ["", "x" * 600]
    if dataclasses.is_dataclass(hint) or hint is dict:
        return ["{}", "null", "{x: 1}", "1"]
    return ["null", "1", "x"]


def _default_pool(default: Any) -> list[str]:
    """Values for a model option, from the type of its default."""
    if isinstance(default, bool):
        return ["true", "false", "2"]
    if isinstance(default, int):
        return ["1", "2", "0", "4", "-1", "3", "100000000", "99999999999999999999", "1.5", "x"]
    if isinstance(default, float):
        return ["0.5", "0", "0.2", "1", "1.5", "-0.5", ".nan", ".inf", "x"]
    if isinstance(default, str):
        return [default] + WORDS[:24] + ["", "foo"]
    if isinstance(default, (list, tuple)):
        return ["[4, 8]", "[4]", "[]", "[0, 4]", "[-1]", "[4, x]"]
    return ["null", "4", "[4, 8]", "avg", "batchnorm", "foo", "0", "-1", "100000000"]


@functools.lru_cache(maxsize=None)
def typed_values() -> dict[str, tuple[str, ...]]:
    """For every real key, values of the right type (most get past validation into the run)."""
    from cnnlab.config import Config
    from cnnlab.models import list_models, model_arguments

    pools: dict[str, list[str]] = {}

    def walk(cls, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            pools[prefix + f.name] = _typed_pool(hint)
            if dataclasses.is_dataclass(hint):
                walk(hint, f"{prefix}{f.name}.")

    walk(Config, "")
    pools["model.name"] = list(list_models()) + ["nosuchmodel"]
    for name in list_models():
        for option, default in model_arguments(name).items():
            key = f"model.{option}"
            pools[key] = list(dict.fromkeys(pools.get(key, []) + _default_pool(
                None if default is inspect.Parameter.empty else default)))
    for key, pool in WORK_KEYS.items():
        pools[key] = pool
    return {k: tuple(v) for k, v in pools.items()}


def typed_override() -> st.SearchStrategy[str]:
    pools = typed_values()
    return st.sampled_from(sorted(pools)).flatmap(lambda k: st.sampled_from(pools[k]).map(lambda v: f"{k}={v}"))


def override_item(max_bomb_levels: int = 6, bounded_work: bool = False) -> st.SearchStrategy[str]:
    """One command-line override: ``key=value`` (mostly of the right type) or something malformed."""

    def for_key(key: str) -> st.SearchStrategy[str]:
        if bounded_work and key in WORK_KEYS:
            return st.sampled_from(WORK_KEYS[key]).map(lambda v: f"{key}={v}")
        return values(max_bomb_levels).map(lambda v: f"{key}={v}")

    return st.one_of(
        typed_override(),
        typed_override(),
        typed_override(),
        keys().flatmap(for_key),
        keys().flatmap(for_key),
        safe_text,  # usually no "=" at all
        st.tuples(safe_text, safe_text).map("=".join),
    )


def override_lists(max_size: int = 6, **kwargs) -> st.SearchStrategy[list[str]]:
    return st.lists(override_item(**kwargs), max_size=max_size)


# ----------------------------------------------------------------------------- YAML documents


def _yaml_scalar() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(SMALL_INTS + ABSURD_NUMBERS + WORDS + ["null", "true", "''", "[]", "{}"]),
                     st.integers().map(str), yaml_flow())


def yaml_mapping_text() -> st.SearchStrategy[str]:
    """Block-style YAML built from real sections and keys plus random ones."""
    leaf_key = st.one_of(st.sampled_from(config_keys()).map(lambda k: k.rsplit(".", 1)[-1]),
                         st.sampled_from(model_option_keys()).map(lambda k: k.split(".", 1)[1]), identifier)
    section = st.one_of(st.sampled_from(["data", "model", "optim", "schedule", "train", "name", "description"]),
                        identifier)
    body = st.dictionaries(leaf_key, _yaml_scalar(), max_size=5)
    doc = st.dictionaries(section, st.one_of(body, _yaml_scalar()), max_size=5)

    def render(d: dict) -> str:
        lines = []
        for sec, val in d.items():
            if isinstance(val, dict):
                lines.append(f"{sec}:")
                lines += [f"  {k}: {v}" for k, v in val.items()] or ["  {}"]
            else:
                lines.append(f"{sec}: {val}")
        return "\n".join(lines) + "\n"

    return doc.map(render)


def alias_bomb_document(levels: int, width: int, key: str) -> str:
    """A block-style billion-laughs document whose last anchor lands under ``key``."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    section, _, leaf = key.partition(".")
    if leaf:
        lines.append(f"{section}:\n  {leaf}: *a{levels - 1}")
    else:
        lines.append(f"{section}: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def yaml_documents() -> st.SearchStrategy[bytes]:
    """Bytes of a config file: plausible YAML, bombs, deep nesting, other encodings, noise."""
    text_docs = st.one_of(
        yaml_mapping_text(),
        yaml_mapping_text(),
        st.builds(alias_bomb_document, st.integers(2, 9), st.integers(2, 12),
                  st.sampled_from(["model.filters", "model.name", "data.name", "train.epochs", "name", "data",
                                   "optim.betas", "model", "x"])),
        st.integers(1, 5000).map(lambda n: "model:\n  filters: " + "[" * n + "1" + "]" * n + "\n"),
        st.integers(1, 5000).map(lambda n: "model: " + "{a: " * n + "1" + "}" * n + "\n"),
        st.integers(1, 3000).map(lambda n: "".join(f"{'  ' * i}k{i}:\n" for i in range(n)) + "  " * n + "1\n"),
        st.sampled_from([
            "", "---\n", "---\n...\n", "a: 1\n---\nb: 2\n", "- 1\n- 2\n", "just text\n", "null\n", "42\n",
            "model: !!python/object/apply:os.system ['true']\n", "data: !!binary aGk=\n",
            "<<: {train: {epochs: 1}}\n", "train: &t {epochs: 1}\noptim: *t\n", "a: *undefined\n",
            "data:\n  name: folder\n  root: images\n  root: data\n", "? [1, 2]\n: x\n", "train: {epochs: 1\n",
            "\tdata: 1\n", "%YAML 1.1\n---\ntrain: {epochs: 1}\n", "%TAG ! tag:x,2000:\n---\n!x a: 1\n",
            "train:\n  epochs: 1\n" * 3, "model:\n  name: convnet\n  filters: [4, 8]\n  blocks: 2\n",
        ]),
        safe_text,
    )
    return st.one_of(
        text_docs.map(lambda t: t.encode("utf-8")),
        text_docs.map(lambda t: t.encode("utf-16")),
        text_docs.map(lambda t: t.encode("latin-1", "replace") + b"\xff\xfe\xe9"),
        st.binary(max_size=256),
        st.tuples(text_docs, st.binary(min_size=1, max_size=8)).map(lambda t: t[0].encode() + t[1]),
    )


# ----------------------------------------------------------------------------- corrupted bytes


def corruption() -> st.SearchStrategy[tuple]:
    """How to damage a file, as data (so a failing case can be written down as an ``@example``).

    ``("truncate", fraction)``, ``("flip", [(position fraction, xor mask), ...])``, ``("append", bytes)``,
    ``("replace", bytes)``; :func:`apply_corruption` turns it into bytes.
    """
    fraction = st.floats(0, 1, exclude_max=True)
    return st.one_of(
        st.tuples(st.just("truncate"), fraction),
        st.tuples(st.just("flip"), st.lists(st.tuples(fraction, st.integers(1, 255)), min_size=1, max_size=8)),
        st.tuples(st.just("append"), st.binary(min_size=1, max_size=64)),
        st.tuples(st.just("replace"), st.binary(max_size=512)),
    )


def apply_corruption(spec: tuple, original: bytes) -> bytes:
    kind = spec[0]
    if kind == "truncate":
        return original[: int(spec[1] * len(original))]
    if kind == "flip":
        buf = bytearray(original)
        for where, mask in spec[1]:
            if buf:
                buf[int(where * len(buf))] ^= mask
        return bytes(buf)
    if kind == "append":
        return original + spec[1]
    return spec[1]  # replace


def png_header(width: int, height: int, colour_type: int = 2) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels and holds no pixel data (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    data = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def bomb_png(width: int, height: int) -> bytes:
    """A real, valid PNG of ``width`` x ``height`` greyscale zeros (compresses to almost nothing)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * width
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


# ----------------------------------------------------------------------------- CLI arguments

# Paths inside the sandbox (see world.py). Outputs are relative only: an absolute output path
# outside the sandbox could create files on the machine (the tests run as root).
INPUT_PATHS = ["run", "runlink", "run/", "./run", "precious", "images", "images/square", "data", "data/mnist",
               "afile.txt", "afile.txt/sub", "img.png", "img.jpg", "notimage.png", "tiny.yaml", "bad.yaml",
               "missing", "missing.yaml", "missing.png", "run/final.pt", "run/config.yaml", "run/summary.json",
               "x" * 300, "/nonexistent-cnnlab-fuzz/x", "", ".", "-", "images/square/000.png",
               "data/mnist/train-images-idx3-ubyte.gz"]
OUTPUT_PATHS = ["out", "o/sub/dir", "run", "runlink", "run/", "precious", "afile.txt", "afile.txt/sub", "x" * 300,
                "images", "images/square", "data", "data/mnist", ".", "new.png", "grid.png", "run/final.pt",
                "precious/config.yaml", "out.png", "img.png", "runs", "runs/x", "", "a b", "-", "out.yaml",
                "tiny.yaml", "precious/inner", "run/sub"]
NUMBERS = ["0", "1", "2", "3", "-1", "-5", "100000", "100000000", "99999999999999999999", "-99999999999999999999",
           str(2 ** 63), str(2 ** 64), "1.5", "x", "", " 3", "0x10", "1e3", "nan", "inf", "\uff13"]
SMALL_NUMBERS = ["0", "1", "2", "-1", "-5", "1.5", "x", "", "nan", "-99999999999999999999"]
FLOATS = ["0", "1", "0.5", "-1", "1e-3", "1e308", "1e309", "-1e309", "inf", "-inf", "nan", "x", "", "1e-320",
          "0.99", "2"]
INPUT_SIZES = ["1,28,28", "3,32,32", "3,16,16", "1,8,8", "3,224,224", "28", "3,28", "3,0,28", "-1,28,28",
               "3,100000,100000", "3,2147483648,1", "100000,8,8", "a,b,c", "3x32x32", "", ",,", "1,28,28,1",
               "3,32,32 ", "3, 32, 32"]
DEVICES = ["cpu", "auto", "cuda", "cuda:7", "mps", "meta", "xla", "cpu:0", "cpu:99", "", "gpu", "-1", "cuda:-1",
           "cuda:99999999999999999999", "CPU", "cpu,cuda"]
JUNK = ["--", "-", "--unknown", "-x", "--out=", "=", "a=b", "model.filters=4", "--json", "-h", "--help", "--version",
        "train.epochs=1", "\u00fc", "x" * 600, "--top=3", "--debugx", "key=", "=value"]

# Option values by destination name; any option not named here gets a value from its type.
# Video inputs and the values of predict's video options (issue 20).
VIDEO_INPUTS = ["clip.mp4", "frames", "notvideo.mp4", "missing.mp4", "clip.mkv"]
VIDEO_OUTPUTS = ["out.mp4", "out.mkv", "out.avi", "out.webm", "out.gif", "clip.mp4", "img.png", "run/x.mp4",
                 "afile.txt/x.mp4", "frames", "o/sub/v.mp4", "x" * 300 + ".mp4", "runlink", ".mp4"]
SECONDS = ["0", "0.1", "0.2", "1", "-1", "nan", "inf", "1e308", "x", "", "99999999999999999999"]
GEOMETRY = ["0,0,24,16", "0,8,24,8", "1,2,3", "0,0,10,0,10,10", "0,0,10,10", "0,0,500,0", "-1,0,5,5", "a,b,c,d",
            "nan,0,1,1", "5,5,5,5", "0,0,1,1,2,2", "", ",", "1e308,0,0,0", "0,0,24,0,24,16,0,16"]

TRACKER_OPTIONS = ["min_hits=3", "high_score=0.6", "low_score=0.9", "buffer=nan", "birth_iou=0", "fuse_scores=2",
                   "partial_area=0.5", "max_age=-1", "min_hits=2.5", "min_hit=3", "=1", "high_score", "x" * 300 + "=1",
                   "match_iou=1e308", "dedupe_iou=inf", "class_penalty=0.3"]

OPTION_VALUES: dict[str, list[str]] = {
    "every": NUMBERS, "start": SECONDS, "duration": SECONDS, "fps": SECONDS,
    "count_line": GEOMETRY, "count_region": GEOMETRY, "tracker": TRACKER_OPTIONS,
    "counts": VIDEO_OUTPUTS + ["out.json", "counts.json"], "mot_gt": ["gt.txt", "afile.txt", "img.png", "missing"],
    "out": OUTPUT_PATHS, "out_dir": OUTPUT_PATHS, "plot": OUTPUT_PATHS,
    "data_dir": [p for p in INPUT_PATHS if not p.startswith("/")] + ["/nonexistent-cnnlab-fuzz"],
    "resume": INPUT_PATHS,
    "top": NUMBERS, "top_k": NUMBERS, "count": NUMBERS, "batch": NUMBERS, "threads": NUMBERS, "hidden": NUMBERS,
    "limit": NUMBERS, "batch_size": NUMBERS, "seed": NUMBERS,
    # Work counts: a huge valid value is a long run, not a bug.
    "epochs": SMALL_NUMBERS, "repeats": SMALL_NUMBERS, "warmup": SMALL_NUMBERS, "seeds": SMALL_NUMBERS,
    # Tune counts: small valid values, or values far past their bounds (refused before any work).
    "trials": SMALL_NUMBERS + ["1000000", "99999999999999999999"], "folds": SMALL_NUMBERS + ["100000000"],
    "bagging": SMALL_NUMBERS + ["100000000"], "boost": SMALL_NUMBERS + ["100000000"], "workers": SMALL_NUMBERS + ["100000"], "timeout": FLOATS,
    "input": INPUT_SIZES, "device": DEVICES,
    "compare": ["mnist_classic", "lenet5", "resnet9 width=4", "convnet filters=4 blocks=1", "nosuchmodel", "run",
                "", "lenet5 pool=foo", "lenet5 num_classes=0", "mnist_classic hidden=100000000"],
    "weights": ["final.pt", "best.pt", "last.pt", "model.pt", "", "../x"],
    "algorithm": ["im2col", "direct", "fft", "winograd", "winograd4", "nope", ""],
    "optimizer": ["adam", "sgd", "rmsprop", ""],
    "channels": ["32,64", "4,8", "1,1", "0,8", "-1,8", "8", "8,8,8", "a,b", "", "100000000,1", "4 , 8"],
    "kernels": ["3", "3,5", "4", "0", "-3", "a", "", "31", "3,,5", "100001"],
    "shapes": ["mnist", "cifar", "large", "mnist,cifar", "nope", "", ","],
    "lr": FLOATS, "start_lr": FLOATS, "end_lr": FLOATS, "steps": SMALL_NUMBERS + ["5", "1000000"],
    "target": FLOATS, "direct_limit": FLOATS, "backward_limit": FLOATS, "im2col_limit_mb": FLOATS,
    "baseline": None,  # filled with preset-like names below
    "data": None,  # cnnlab features --data: preset-like names too
    "parity_images": SMALL_NUMBERS, "opset": ["7", "13", "17", "21", "22", "0", "-1", "x"], "layer": ["0", "1", "9", ""],
}


def _preset_like() -> list[str]:
    return list(preset_names()[:4]) + ["tiny.yaml", "bad.yaml", "missing.yaml", "run/config.yaml", "nosuchpreset",
                                       "afile.txt", "", "mnist-fats", "precious/config.yaml"]


def _positional_values(command: tuple[str, ...], dest: str) -> st.SearchStrategy[str]:
    if dest in ("config", "spec"):  # ablate/cv CONFIG, sweep SPEC
        return st.sampled_from(["tiny.yaml", "tiny-sweep.yaml", "mnist-fast", "sweep-mnist-quick", "bad.yaml",
                                "missing.yaml", "run"] + INPUT_PATHS)
    if dest == "inputs":  # ensemble RUN_DIR ... (or CONFIG with --bagging)
        return st.sampled_from(["run", "run", "runlink", "tiny.yaml"] + INPUT_PATHS)
    if dest == "preset":
        return st.sampled_from(["tiny.yaml", "mnist-fast", "mnist-classic", "fashion-convnet", "folder-convnet"]
                               + list(preset_names()) + _preset_like())
    if dest == "run_dir":  # pretrained names too: an unknown tag, an architecture without weights
        return st.sampled_from(["run", "run", "runlink", "efficientnet_lite0.in9k", "resnet18.in1k"] + INPUT_PATHS)
    if dest == "images":
        return st.sampled_from(["img.png", "img.jpg", "images/square/000.png"] + VIDEO_INPUTS + INPUT_PATHS)
    if dest == "target":
        return st.sampled_from(list(model_names()) + ["run", "runlink", "nosuchmodel", "precious", "resnet",
                                                      "afile.txt", ""])
    if dest == "dataset":
        return st.sampled_from(["mnist", "fashion-mnist", "cifar10", "folder", "nosuch", "", "MNIST"])
    if dest == "name" and command[:1] == ("data",):
        return st.sampled_from(["mnist", "fashion-mnist", "fashion", "cifar10", "cifar10-jpeg", "imagenette-160",
                                "imagenette", "folder", "cifar100", "nosuch", "tiny.yaml", "mnist-fast", "bad.yaml",
                                "folder-convnet", "missing.yaml", ""])
    if dest == "name" and command[:1] == ("models",):
        return st.sampled_from(list(model_names()) + ["nosuchmodel", "", "convnet "])
    if dest == "name":
        return st.sampled_from(list(preset_names()) + ["nosuch", "", "mnist-fats", "../presets/mnist-fast"])
    return st.one_of(st.sampled_from(INPUT_PATHS), safe_text)


def _option_value(action: argparse.Action) -> st.SearchStrategy[str]:
    pool = OPTION_VALUES.get(action.dest)
    if action.dest in ("baseline", "data"):
        pool = _preset_like()
    if pool is not None:
        return st.one_of(*[st.sampled_from(pool)] * 5, safe_text)
    if action.choices:
        return st.one_of(*[st.sampled_from([str(c) for c in action.choices])] * 5, safe_text)
    if action.type is int:
        return st.sampled_from(NUMBERS)
    if action.type is float:
        return st.sampled_from(FLOATS)
    return st.one_of(st.sampled_from(INPUT_PATHS), safe_text)


def find_parser(parser: argparse.ArgumentParser, command: tuple[str, ...]) -> argparse.ArgumentParser:
    """The sub-parser of ``cnnlab COMMAND...``."""
    for name in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


@functools.lru_cache(maxsize=None)
def _cli_parser():
    from cnnlab.cli import build_parser

    return build_parser()


def profile_rest_tokens() -> st.SearchStrategy[list[str]]:
    """Model options for ``cnnlab profile MODEL key=value ...``."""
    pools = typed_values()
    model_keys = sorted(k for k in pools if k.startswith("model.") and k != "model.name")
    typed = st.sampled_from(model_keys).flatmap(lambda k: st.sampled_from(pools[k]).map(lambda v: f"{k}={v}"))
    item = st.one_of(
        typed.map(lambda o: o.split(".", 1)[1]),  # profile takes options bare (width=4) ...
        typed.map(lambda o: o.split(".", 1)[1]),
        typed,  # ... or as model.width=4
        st.tuples(st.sampled_from(model_option_keys()), values(4)).map(lambda t: f"{t[0].split('.', 1)[1]}={t[1]}"),
        override_item(4),
    )
    return st.lists(item, max_size=3)


@st.composite
def cli_args(draw, command: tuple[str, ...], extra_overrides: tuple[str, ...] = ()) -> list[str]:
    """A random argument list for ``cnnlab COMMAND...`` built from its parser's real options.

    ``extra_overrides`` (e.g. the tiny-training ones) are placed before the generated
    overrides, so the generated ones win when they name the same key.
    """
    parser = find_parser(_cli_parser(), command)
    positionals: list[list[str]] = []  # argparse consumes these in order
    options: list[list[str]] = []  # a flag with its value stays together
    overrides: list[str] = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if not action.option_strings:
            if action.dest == "rest":  # profile: model options after the target
                overrides += draw(profile_rest_tokens())
                continue
            if action.dest == "overrides":
                overrides += draw(override_lists(max_size=2, bounded_work=True))
                continue
            if action.nargs in ("?", "*") and draw(st.integers(0, 5)) == 0:
                continue
            count = draw(st.integers(1, 3)) if action.nargs in ("+", "*") else 1
            positionals += [[draw(_positional_values(command, action.dest))] for _ in range(count)]
            continue
        rarity = 8 if action.dest == "resume" else 4
        if not action.required and draw(st.integers(0, rarity - 1)) != 0:  # most options: a quarter of the time
            continue
        flag = draw(st.sampled_from(action.option_strings))
        if action.nargs == 0:
            options.append([flag])
        elif draw(st.integers(0, 9)) == 0:
            options.append([f"{flag}={draw(_option_value(action))}"])
        else:
            options.append([flag, draw(_option_value(action))])
    if draw(st.integers(0, 7)) == 0:
        options.append([draw(st.sampled_from(JUNK))])
    # Options go anywhere; positionals keep their order among themselves.
    groups = positionals + options
    order = draw(st.permutations(range(len(groups))))
    slots = iter(positionals)
    placed = [next(slots) if i < len(positionals) else groups[i] for i in order]
    flat = [token for group in placed for token in group]
    # key=value items go last: profile needs them after its target, and main() accepts them
    # after the options for the other commands.
    return [*command, *flat, *extra_overrides, *overrides]
