"""Classify image files with an exported ``.onnx`` model through ONNX Runtime alone.

This path imports neither torch nor the trainer: NumPy, Pillow and onnxruntime
only (tested in a subprocess through ``sys.modules``). The preprocessing is the
one ``cnnlab predict RUN_DIR`` applies, read from the model's ``cnnlab``
metadata: decode, convert to the model's channels, resize to its input size with
the run's ``data.resize`` policy, scale to [0, 1]; the normalisation is inside
the graph. An image of another size or colour mode is converted, never refused.

>>> predict_onnx("runs/mnist-fast/model.onnx", ["digit.png"], k=3)  # doctest: +SKIP
[{'image': 'digit.png', 'top': [{'class': '7', 'probability': 0.998}, ...]}]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data.folder import decode_image, expand_image_paths
from cnnlab.errors import CnnlabError
from cnnlab.filemeta import check_classes, check_input_size


def read_metadata(session, path: str) -> dict[str, Any]:
    """The model's ``cnnlab`` metadata, checked as user input is (:mod:`cnnlab.filemeta`).

    Its class list must name one class per output of the graph (when the graph says how many).
    """
    raw = session.get_modelmeta().custom_metadata_map.get("cnnlab")
    if raw is None:
        raise CnnlabError(f"{path} has no cnnlab metadata; export it with `cnnlab export RUN_DIR --format onnx`")
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        raise CnnlabError(f"{path}: its cnnlab metadata is not JSON; export the run again") from None
    if not isinstance(meta, dict):
        raise CnnlabError(f"{path}: its cnnlab metadata is not a mapping; export the run again")
    c, h, w = check_input_size(meta.get("input_size"), path)
    if h != w or c not in (1, 3):
        raise CnnlabError(f"{path}: input size {c}x{h}x{w} is not a square 1- or 3-channel image")
    meta["input_size"] = [c, h, w]
    inputs = session.get_inputs()
    graph = list(inputs[0].shape[1:]) if inputs and len(inputs[0].shape) == 4 else None
    if graph is None:
        raise CnnlabError(f"{path}: the model's input is not a batch of images (N, C, H, W); export the run again")
    if any(isinstance(g, int) and g != m for g, m in zip(graph, (c, h, w))):
        raise CnnlabError(f"{path}: the graph takes {'x'.join(map(str, graph))} images but its metadata says "
                          f"{c}x{h}x{w}; the file is damaged or was not written by cnnlab; export the run again")
    shape = session.get_outputs()[0].shape if session.get_outputs() else None
    outputs = shape[1] if shape and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0 else None
    meta["classes"] = check_classes(meta.get("classes"), path, outputs)
    if meta.get("resize", "resize") not in ("resize", "center_crop", "pad"):
        raise CnnlabError(f"{path}: 'resize' is {str(meta['resize'])[:40]!r}; expected resize, center_crop or pad; "
                          "the file is damaged or was not written by cnnlab")
    return meta


def open_model(path: str):
    p = Path(path)
    if not p.is_file():
        raise CnnlabError(f"ONNX model {path} does not exist")
    try:
        import onnxruntime as ort
    except ImportError:
        raise CnnlabError("predicting with an .onnx file needs onnxruntime: pip install 'cnnlab[export]'") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 -- a corrupt or foreign file
        reason = " ".join(str(exc).split())[:160]
        raise CnnlabError(f"cannot load ONNX model {path}: {reason}") from None
    return session, read_metadata(session, path)


def load_images01(paths: list[str], meta: dict[str, Any]) -> np.ndarray:
    """Files -> (N, C, H, W) float32 on [0, 1], converted as ``cnnlab predict`` converts them."""
    import warnings

    from PIL import Image

    c, size, _ = meta["input_size"]
    out = []
    for path in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)  # refused, as predict RUN_DIR does
                out.append(decode_image(Path(path), size, meta.get("resize", "resize"), "L" if c == 1 else "RGB"))
        except CnnlabError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise CnnlabError(f"cannot read image {path}: it is too large to decode safely ({exc})") from None
        except Exception as exc:  # Pillow raises many types for a broken file
            raise CnnlabError(f"cannot read image {path}: {exc}") from None
    return np.stack(out).astype(np.float32) / np.float32(255.0)


def predict_onnx(model_path: str, paths: list[str], k: int = 3) -> list[dict]:
    """Top-``k`` classes and probabilities for each image file."""
    if k < 1:
        raise CnnlabError(f"--top-k must be at least 1, got {k}")
    session, meta = open_model(model_path)
    paths = expand_image_paths(paths)
    images = load_images01(paths, meta)
    fixed = session.get_inputs()[0].shape[0]
    step = fixed if isinstance(fixed, int) and fixed > 0 else len(images)
    try:
        logits = np.concatenate([session.run(None, {session.get_inputs()[0].name: images[i:i + step]})[0]
                                 for i in range(0, len(images), step)])
    except Exception as exc:  # noqa: BLE001 -- onnxruntime's own error types: a graph that does not fit its metadata
        reason = " ".join(str(exc).split())[:160]
        raise CnnlabError(f"{model_path}: ONNX Runtime could not run the model on its own input size ({reason}); "
                          "export the run again") from None
    logits = np.asarray(logits, dtype=np.float32)
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)  # softmax, float32 as torch computes it
    classes = meta["classes"]
    if logits.ndim != 2 or logits.shape[1] != len(classes):  # a graph whose output size is not static
        raise CnnlabError(f"{model_path}: the model gives {'x'.join(map(str, logits.shape[1:]))} outputs per image "
                          f"but its metadata names {len(classes)} classes; export the run again")
    results = []
    for path, row in zip(paths, probs):
        order = np.argsort(-row, kind="stable")[: min(k, len(classes))]
        results.append({"image": path, "top": [{"class": classes[int(i)], "probability": round(float(row[i]), 4)}
                                               for i in order]})
    return results
