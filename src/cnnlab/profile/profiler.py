"""Per-layer accounting: parameters, multiply-accumulates, FLOPs and activation memory.

One forward pass of zeros runs with forward hooks on every layer; the hooks
record what each call produced. The hooks are always removed and every
module's train/eval mode is restored, so the model is left exactly as it
was (the pass runs in eval mode under ``torch.no_grad``: batch-norm running
statistics are not touched).

>>> from cnnlab.models import create_model
>>> prof = profile_model(create_model("lenet5"), (1, 32, 32))
>>> prof.params, prof.macs
(61706, 416520)
>>> prof.rows[0].name, prof.rows[0].output_shape
('features.0', (1, 6, 28, 28))
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Iterator, Optional, Sequence

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.profile.counting import layer_macs, output_bytes, output_shape

CONVENTIONS = {
    "macs": "multiply-accumulates of convolution and linear layers (biases, norms, activations, "
            "pooling and additions are not counted); the same ops torch.utils.flop_counter counts",
    "flops": "1 MAC = 2 FLOPs",
    "activation_bytes": "bytes of each layer's output tensor; the total is what a training step keeps "
                        "for the backward pass at most (in-place reuse and framework buffers ignored)",
}


@dataclass
class LayerRow:
    """One call of one layer. ``name`` is the module path; a second call gets a ``#2`` suffix."""

    name: str
    type: str
    output_shape: tuple
    params_trainable: int
    params_frozen: int
    macs: int
    flops: int  # 2 * macs
    activation_bytes: int

    @property
    def params(self) -> int:
        return self.params_trainable + self.params_frozen


@dataclass
class Profile:
    """The rows of one forward pass and their totals (for the whole batch)."""

    model: str
    input_size: tuple  # (C, H, W)
    batch_size: int
    dtype: str
    rows: list[LayerRow] = field(default_factory=list)
    params_trainable: int = 0
    params_frozen: int = 0
    param_bytes: int = 0
    output_shape: tuple = ()

    @property
    def params(self) -> int:
        return self.params_trainable + self.params_frozen

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def macs_per_image(self) -> float:
        return self.macs / self.batch_size

    @property
    def activation_bytes(self) -> int:
        return sum(r.activation_bytes for r in self.rows)

    def totals(self) -> dict:
        """The headline numbers, JSON-ready."""
        return {
            "parameters": self.params,
            "trainable_parameters": self.params_trainable,
            "frozen_parameters": self.params_frozen,
            "parameter_bytes": self.param_bytes,
            "macs": self.macs,
            "flops": self.flops,
            "macs_per_image": self.macs_per_image,
            "activation_bytes": self.activation_bytes,
        }

    def to_dict(self, layers: bool = True) -> dict:
        out = {
            "model": self.model,
            "input_size": list(self.input_size),
            "batch_size": self.batch_size,
            "dtype": self.dtype,
            "output_shape": list(self.output_shape),
            **self.totals(),
            "conventions": CONVENTIONS,
        }
        if layers:
            out["layers"] = [{**asdict(r), "output_shape": list(r.output_shape)} for r in self.rows]
        return out


@contextlib.contextmanager
def preserved_modes(model: nn.Module) -> Iterator[None]:
    """Restore every submodule's train/eval flag on exit, whatever happens inside."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def hooked(model: nn.Module, pre_hook, post_hook) -> Iterator[None]:
    """Forward pre- and post-hooks on every module, removed on exit."""
    handles = []
    try:
        for name, module in model.named_modules():
            handles.append(module.register_forward_pre_hook(lambda m, i, name=name: pre_hook(name, m, i)))
            handles.append(module.register_forward_hook(lambda m, i, o, name=name: post_hook(name, m, i, o)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def check_input_size(input_size: Sequence[int]) -> tuple[int, int, int]:
    size = tuple(input_size)
    if len(size) != 3 or not all(isinstance(v, int) and v >= 1 for v in size):
        raise CnnlabError(f"input size must be three positive integers (C, H, W), got {input_size!r}; e.g. 3,32,32")
    return size  # type: ignore[return-value]


def profile_model(
    model: nn.Module,
    input_size: Optional[Sequence[int]] = None,
    batch_size: int = 1,
    name: Optional[str] = None,
) -> Profile:
    """Profile one forward pass of a ``(batch_size, *input_size)`` batch of zeros.

    ``input_size`` defaults to ``model.default_input_size``. Rows are the
    layers (modules without children, plus any module holding parameters of
    its own) in call order. An input the model cannot take raises
    :class:`CnnlabError` naming the layer where it fails and the smallest
    square input that works.
    """
    if input_size is None:
        input_size = getattr(model, "default_input_size", None)
        if input_size is None:
            raise CnnlabError(f"{type(model).__name__} has no default_input_size; pass input_size=(C, H, W)")
    input_size = check_input_size(input_size)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise CnnlabError(f"batch size must be a positive integer, got {batch_size!r}")
    name = name or type(model).__name__
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    x = torch.zeros(batch_size, *input_size, device=device, dtype=dtype)

    counted: set[int] = set()
    calls: dict[str, int] = {}
    rows: list[LayerRow] = []
    stack: list[tuple[str, str]] = []  # (module path, type) of the calls in progress

    def is_layer(module: nn.Module) -> bool:
        return next(module.children(), None) is None or next(module.parameters(recurse=False), None) is not None

    def pre_hook(path: str, module: nn.Module, inputs) -> None:
        stack.append((path or "(model)", type(module).__name__))

    def post_hook(path: str, module: nn.Module, inputs, output) -> None:
        stack.pop()
        if not is_layer(module):
            return
        trainable = frozen = 0
        for p in module.parameters(recurse=False):
            if id(p) in counted:
                continue  # shared or already-called module: count its parameters once
            counted.add(id(p))
            trainable += p.numel() if p.requires_grad else 0
            frozen += 0 if p.requires_grad else p.numel()
        calls[path] = calls.get(path, 0) + 1
        label = (path or "(model)") + (f"#{calls[path]}" if calls[path] > 1 else "")
        macs = layer_macs(module, output, inputs)
        rows.append(LayerRow(label, type(module).__name__, output_shape(output), trainable, frozen,
                             macs, 2 * macs, output_bytes(output)))

    failure = None
    with preserved_modes(model), hooked(model, pre_hook, post_hook):
        model.eval()
        try:
            with torch.no_grad():
                out = model(x)
        except (RuntimeError, ValueError) as exc:  # torch shape errors; a layer's own CnnlabError
            failure = (stack[-1] if stack else ("(model)", type(model).__name__), exc)
    if failure is not None:  # diagnose with the hooks gone, in eval mode, then restore the modes again
        with preserved_modes(model):
            model.eval()
            message = _size_message(model, name, input_size, *failure)
        raise CnnlabError(message)

    # Parameters of modules the forward pass never called still belong to the model.
    params = {id(p): p for p in model.parameters()}
    left = [p for i, p in params.items() if i not in counted]
    if left:
        rows.append(LayerRow("(parameters not used in forward)", "-", (), sum(p.numel() for p in left if p.requires_grad),
                             sum(p.numel() for p in left if not p.requires_grad), 0, 0, 0))
    return Profile(
        model=name,
        input_size=input_size,
        batch_size=batch_size,
        dtype=str(dtype).replace("torch.", ""),
        rows=rows,
        params_trainable=sum(p.numel() for p in params.values() if p.requires_grad),
        params_frozen=sum(p.numel() for p in params.values() if not p.requires_grad),
        param_bytes=sum(p.numel() * p.element_size() for p in params.values()),
        output_shape=output_shape(out),
    )


# ----------------------------------------------------------------------------- bad input sizes


def _runs(module: nn.Module, size: tuple[int, int, int], like: torch.Tensor) -> bool:
    try:
        with torch.no_grad():
            module(torch.zeros(1, *size, device=like.device, dtype=like.dtype))
        return True
    except (RuntimeError, ValueError):
        return False


def smallest_square_input(module: nn.Module, channels: int, start: int = 1, limit: int = 4096) -> Optional[int]:
    """Smallest side S for which ``module`` takes a (channels, S, S) input, or None up to ``limit``.

    Runs in the caller's mode; use eval mode (batch norm cannot take one
    value per channel in training). Assumes that if S works, every larger side works.
    """
    first = next(module.parameters(), None)
    like = first if first is not None and first.is_floating_point() else torch.zeros(())
    hi = max(start, 1)
    while not _runs(module, (channels, hi, hi), like):
        hi *= 2
        if hi > limit:
            return None
    lo = 0  # lo fails (or is zero), hi works
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _runs(module, (channels, mid, mid), like):
            hi = mid
        else:
            lo = mid
    return hi


def _size_message(model: nn.Module, name: str, input_size: tuple, failing: tuple[str, str], exc: Exception) -> str:
    c, h, w = input_size
    layer, kind = failing
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = f"model '{name}' cannot take a {c}x{h}x{w} input: layer '{layer}' ({kind}) fails: {reason}"
    features = getattr(model, "features", None)
    body = features if isinstance(features, nn.Module) else model
    like = next(model.parameters(), torch.zeros(()))
    if body is not model and _runs(body, input_size, like) and not _runs(model, input_size, like):
        return text + ("; the features take this size but the head was built for another one: "
                       f"rebuild the model with image_size={h}")
    first_conv = next((m for m in body.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    if first_conv is not None and first_conv.in_channels != c:
        return text + (f"; the model takes {first_conv.in_channels}-channel images: use --input "
                       f"{first_conv.in_channels},{h},{w} or build it with in_channels={c}")
    default = getattr(model, "default_input_size", (c, h, w))
    limit = 2 * max(h, w, *default[1:])
    side = smallest_square_input(body, c, start=max(h, w), limit=limit)
    if side is None:
        return text + f"; no square input up to {limit}x{limit} works either"
    if side <= min(h, w):  # a square of the smaller side works: the shape, not the size, is the problem
        return text
    return text + f"; the smallest square input it takes is {c}x{side}x{side} (e.g. --input {c},{side},{side})"
