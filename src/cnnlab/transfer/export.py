"""Export a trained run to ONNX or TorchScript, preprocessing folded in, parity checked.

The exported graph takes what a person has after decoding an image: float32
``(N, C, H, W)`` pixels on the [0, 1] scale, already in the run's channels and size.
The run's normalisation (mean/std) is folded into the graph, so nothing but a
decode and a resize stands between a file and a prediction. What the graph does
not do -- decode, convert channels, resize with the run's ``data.resize`` policy --
is recorded as metadata (ONNX ``metadata_props["cnnlab"]``, TorchScript extra file
``cnnlab.json``) for :mod:`cnnlab.transfer.onnx_predict` and any other runtime::

    {"format": "cnnlab-export", "classes": [...], "input_size": [C, H, W],
     "channels": "L"|"RGB", "resize": "resize"|"center_crop"|"pad", "scale": 1/255,
     "normalization": "folded", "mean": [...], "std": [...], "input": "image", "output": "logits"}

Parity: the exported model and the PyTorch model classify the same real test
images (the run's own test split, 256 by default); the largest absolute logit
difference and the top-1 agreement are reported. ONNX is run through ONNX Runtime.

>>> result = export_run("runs/mnist-fast", "onnx")    # doctest: +SKIP
>>> result["parity"]["max_abs_diff"] < 1e-4          # doctest: +SKIP
True

The ONNX export uses torch's TorchScript-based exporter (``dynamo=False``): it
needs no extra packages beyond ``onnx`` and is fast and deterministic for
the convolutional networks here. An operator the chosen opset lacks is a
one-line error naming the operator and the layer that uses it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from cnnlab.data.datasets import load_dataset
from cnnlab.errors import CnnlabError
from cnnlab.fileio import atomic_path
from cnnlab.rundir import check_out_file
from cnnlab.runs import load_run

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt",)}  # what --out may end in, per format
DEFAULT_OPSET = 17
META_KEY = "cnnlab"


class Deployable(nn.Module):
    """[0, 1] pixels (N, C, H, W) -> logits: the run's normalisation, then its model."""

    def __init__(self, model: nn.Module, mean: list[float] | None, std: list[float] | None) -> None:
        super().__init__()
        self.model = model
        c = len(mean) if mean is not None else 1
        self.register_buffer("mean", torch.tensor(mean if mean is not None else [0.0] * c).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std if std is not None else [1.0] * c).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def export_metadata(classes: list[str], input_size, resize: str, mean, std) -> dict[str, Any]:
    return {"format": "cnnlab-export", "version": 1, "classes": list(classes), "input_size": list(input_size),
            "channels": "L" if input_size[0] == 1 else "RGB", "resize": resize, "scale": 1 / 255,
            "normalization": "folded", "mean": mean, "std": std, "input": "image", "output": "logits"}


# ----------------------------------------------------------------------------- which layer uses an op


def layer_using(model: nn.Module, example: torch.Tensor, op: str) -> str | None:
    """The name (and type) of the innermost module whose forward calls the aten operator ``op``."""
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    stack: list[str] = []
    found: list[str] = []
    wanted = op.split("::")[-1]

    def seen(name: str) -> None:
        if name == wanted and stack and not found:
            found.append(stack[-1])

    class Functions(TorchFunctionMode):  # composite ops (fft_rfft2) are visible only at this level
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen(getattr(func, "__name__", ""))
            return func(*args, **(kwargs or {}))

    class Kernels(TorchDispatchMode):  # "convolution.default" -> "convolution"
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen(func.__name__.split(".")[0])
            return func(*args, **(kwargs or {}))

    names = {m: n for n, m in model.named_modules()}
    handles = []
    for module, name in names.items():
        handles.append(module.register_forward_pre_hook(lambda m, a, n=name: stack.append(n)))
        handles.append(module.register_forward_hook(lambda m, a, o: stack.pop()))
    try:
        with torch.no_grad(), Functions(), Kernels():
            model(example)
    except Exception:  # noqa: BLE001 -- the export error is reported either way
        pass
    finally:
        for h in handles:
            h.remove()
    if not found:
        return None
    module = dict(model.named_modules())[found[0]]
    return f"'{found[0] or 'model'}' ({type(module).__name__})"


def _export_error(exc: Exception, model: nn.Module, example: torch.Tensor, opset: int) -> CnnlabError:
    text = " ".join(str(exc).split())
    match = re.search(r"operator '?([\w:.]+)'? to ONNX opset version (\d+)", text) or \
        re.search(r"(aten::\w+)", text)
    if match:
        op = match.group(1)
        layer = layer_using(model, example, op)
        where = f" used by layer {layer}" if layer else ""
        return CnnlabError(f"cannot export to ONNX opset {opset}: the format has no operator {op}{where}; "
                           "try another --opset, or --format torchscript, or a model without that layer")
    layer = failing_layer(exc, model)
    where = f" in layer {layer}" if layer else ""
    return CnnlabError(f"cannot export to ONNX{where}: {type(exc).__name__}: {text[:200]}")


def failing_layer(exc: BaseException, model: nn.Module) -> str | None:
    """The innermost module of ``model`` whose code is on the exception's traceback."""
    names = {id(m): n for n, m in model.named_modules()}
    found = None
    tb = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if owner is not None and id(owner) in names:
            found = owner
        tb = tb.tb_next
    if found is None:
        return None
    return f"'{names[id(found)] or 'model'}' ({type(found).__name__})"


# ----------------------------------------------------------------------------- writers


@contextlib.contextmanager
def quiet_exporter():
    """Send file descriptor 1 to /dev/null while exporting: when an export fails, torch's C++ side
    prints the whole graph to C's stdout (buffered), which is flushed here, before the fd comes back."""
    import ctypes
    import sys

    try:
        sys.stdout.flush()
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stdout (pytest): nothing at the fd level
        yield
        return
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).fflush(None)  # C stdio buffers, where std::cout writes, go to /dev/null
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def write_onnx(wrapper: Deployable, example: torch.Tensor, path: Path, meta: dict[str, Any], opset: int,
               dynamic_batch: bool) -> None:
    """Export ``wrapper`` to ``path`` (atomically) with ``meta`` in the model's metadata."""
    try:
        import onnx
    except ImportError:
        raise CnnlabError("ONNX export needs the onnx package: pip install 'cnnlab[export]'") from None
    axes = {"image": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    buffer = io.BytesIO()
    try:
        with quiet_exporter(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, (example,), buffer, dynamo=False, opset_version=opset,
                              input_names=["image"], output_names=["logits"], dynamic_axes=axes,
                              do_constant_folding=True)
    except CnnlabError:
        raise
    except Exception as exc:  # noqa: BLE001 -- the exporter raises many types
        raise _export_error(exc, wrapper.model, (example - wrapper.mean) / wrapper.std, opset) from None
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    proto.producer_name = "cnnlab"
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))


def write_torchscript(wrapper: Deployable, example: torch.Tensor, path: Path, meta: dict[str, Any]) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(wrapper, (example,), check_trace=False)
    except Exception as exc:  # noqa: BLE001
        layer = failing_layer(exc, wrapper.model)
        raise CnnlabError(f"cannot export to TorchScript{f' in layer {layer}' if layer else ''}: "
                          f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export, yet still works
        torch.jit.save(traced, str(tmp), _extra_files={"cnnlab.json": json.dumps(meta)})


# ----------------------------------------------------------------------------- parity


def onnx_session(path: str | os.PathLike):
    try:
        import onnxruntime as ort
    except ImportError:
        raise CnnlabError("running ONNX models needs onnxruntime: pip install 'cnnlab[export]'") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_exported(path: Path, fmt: str, images01: np.ndarray, batch: int | None) -> np.ndarray:
    """Logits of the exported file for (N, C, H, W) float32 [0, 1] images, ``batch`` at a time."""
    step = batch or len(images01)
    outs = []
    if fmt == "onnx":
        session = onnx_session(path)
        for i in range(0, len(images01), step):
            outs.append(session.run(["logits"], {"image": images01[i:i + step]})[0])
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(str(path))
        with torch.no_grad():
            for i in range(0, len(images01), step):
                outs.append(module(torch.from_numpy(images01[i:i + step])).numpy())
    return np.concatenate(outs)


@torch.no_grad()
def parity(model: nn.Module, mean, std, path: Path, fmt: str, images01: torch.Tensor,
           batch: int | None) -> dict[str, Any]:
    """Max |logit difference| and top-1 agreement between ``model`` and the exported file."""
    wrapper = Deployable(model, mean, std).eval()
    ref = torch.cat([wrapper(images01[i:i + 64]) for i in range(0, len(images01), 64)]).numpy()
    got = run_exported(path, fmt, images01.numpy().astype(np.float32), batch)
    return {"images": int(len(images01)), "max_abs_diff": float(np.abs(got - ref).max()),
            "top1_agreement": float((got.argmax(1) == ref.argmax(1)).mean()),
            "runtime": "onnxruntime" if fmt == "onnx" else "torch.jit"}


def test_images(cfg, count: int) -> torch.Tensor:
    """The first ``count`` test images of a run's dataset as (N, C, H, W) float32 in [0, 1]."""
    data = load_dataset(cfg.data)
    return data.test_x[:count].float() / 255.0


def export_model(model: nn.Module, classes: list[str], input_size, resize: str, mean, std, fmt: str,
                 out: Path, *, opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
                 images01: torch.Tensor | None = None) -> dict[str, Any]:
    """Export an (eval-mode, CPU) model and, given images, check parity. The library entry for tests."""
    if fmt not in FORMATS:
        raise CnnlabError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not 7 <= opset <= 21:
        raise CnnlabError(f"--opset must be between 7 and 21, got {opset}")
    model = model.eval().to(memory_format=torch.contiguous_format)
    wrapper = Deployable(model, mean, std).eval()
    example = torch.rand(1, *input_size)
    meta = export_metadata(classes, input_size, resize, mean, std)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        write_onnx(wrapper, example, out, meta, opset, dynamic_batch)
    else:
        write_torchscript(wrapper, example, out, meta)
    result: dict[str, Any] = {"file": str(out), "format": fmt, "opset": opset if fmt == "onnx" else None,
                              "dynamic_batch": dynamic_batch if fmt == "onnx" else True,
                              "bytes": out.stat().st_size, "metadata": meta}
    if images01 is not None:
        batch = None if (dynamic_batch or fmt == "torchscript") else 1
        result["parity"] = parity(model, mean, std, out, fmt, images01, batch)
    return result


def export_run(run_dir: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None, *,
               opset: int = DEFAULT_OPSET, dynamic_batch: bool = False, parity_images: int = 256,
               overwrite: bool = False, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Export a run's tested weights to ``out`` (default ``RUN_DIR/model.onnx`` or ``model.pt``) and check parity."""
    if fmt not in FORMATS:
        raise CnnlabError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    run = load_run(run_dir)
    if "features_from" in run.config.model.options:
        raise CnnlabError(f"{run_dir} is a head trained on cached features; export the backbone's run instead")
    if run.pretrained_cfg is not None and out is None:  # a name, not a directory to write into
        raise CnnlabError(f"{run_dir} is a pretrained model, not a run directory: give --out FILE")
    # The one output policy: a file with the format's extension; an existing one only with
    # --overwrite and only if it is an export cnnlab wrote (never the run's checkpoints or config).
    inputs = [] if run.pretrained_cfg is not None else [run_dir]  # a pretrained name is no path
    path = check_out_file(Path(out) if out is not None else Path(run_dir) / f"model{SUFFIXES[fmt][0]}", overwrite,
                          kind="export", suffixes=SUFFIXES[fmt], inputs=inputs)
    images = test_images(run.config, parity_images) if parity_images and run.pretrained_cfg is None else None
    if parity_images and run.pretrained_cfg is not None:  # no dataset of its own: seeded uniform images
        images = torch.rand(min(parity_images, 16), *run.input_size, generator=torch.Generator().manual_seed(0))
    return export_model(run.model, run.classes, run.input_size, run.config.data.resize, run.mean, run.std, fmt,
                        path, opset=opset, dynamic_batch=dynamic_batch, images01=images)
