"""The plumbing every attribution method shares: :class:`AttributionMethod`.

A method implements one thing, ``_attribute(model, x, target, **options)``,
which turns a chunk of model inputs ``x`` (n, C, H, W) and their target classes
(n,) into maps (n, H, W). The base class owns the rest, so each method file
reads as the method itself:

- the inputs are checked (a 4-D float batch, one target per image, each in range);
- the images go through in chunks of ``batch_size`` (divided by the method's own
  expansion: 32 integration steps of 8 images make a forward batch of 256), so
  memory stays bounded whatever N is;
- the model is put in eval mode and its parameters stop requiring gradients
  (only the input's gradient is wanted), and *both are restored afterwards, even
  after an error*, as are its hooks: any forward or backward hook a method (or
  Captum inside it) registered and did not remove is removed here;
- the caller's tensor is never modified (methods see a detached copy);
- random draws (SmoothGrad's noise, gradient SHAP's baselines) come from a
  seeded generator inside ``torch.random.fork_rng``: the same call gives the
  same maps, and the caller's random state is left as it was.

>>> import torch
>>> from cnnlab.explain import get_method
>>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
>>> with torch.no_grad():
...     _ = model[1].weight.copy_(torch.tensor([[1., -2., 3., -4.], [0., 0., 0., 0.]]))
>>> get_method("saliency").attribute(model, torch.ones(1, 1, 2, 2), target=0)
tensor([[[1., 2.],
         [3., 4.]]])
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any, ClassVar, Iterator

import torch
from torch import nn

from cnnlab.errors import CnnlabError

MAX_SAMPLES = 4096  # integration steps / noise samples per image: far past where the maps stop changing

# The hook dictionaries of nn.Module (those present in this torch version are snapshotted).
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
               "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called")


@contextlib.contextmanager
def prepared(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode, no parameter gradients, for the block; mode, flags and hooks restored on exit.

    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout()).train()
    >>> with prepared(net):
    ...     net.training, net[0].weight.requires_grad
    (False, False)
    >>> net.training, net[0].weight.requires_grad
    (True, True)
    """
    modes = {m: m.training for m in model.modules()}  # a module may be in a mode unlike its parent's
    flags = [(p, p.requires_grad) for p in model.parameters()]
    hooks = {m: {d: set(getattr(m, d).keys()) for d in _HOOK_DICTS if hasattr(m, d)} for m in model.modules()}
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield model
    finally:
        for module, names in hooks.items():
            for name, before in names.items():
                table = getattr(module, name)
                for key in set(table.keys()) - before:
                    del table[key]
        for module, mode in modes.items():
            module.training = mode
        for p, flag in flags:
            p.requires_grad_(flag)


def hook_count(model: nn.Module) -> int:
    """How many hooks of any kind the model's modules hold (the shared test checks it is unchanged)."""
    return sum(len(getattr(m, d)) for m in model.modules() for d in _HOOK_DICTS if hasattr(m, d))


def as_targets(target: Any, count: int, num_classes: int | None) -> torch.Tensor:
    """One class index per image as an int64 tensor (n,); an int applies to every image."""
    t = torch.as_tensor(target)
    if t.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise CnnlabError(f"target must be class indices (integers), got {t.dtype}")
    t = t.to(torch.int64).reshape(-1)
    if t.numel() == 1:
        t = t.expand(count).clone()
    if t.numel() != count:
        raise CnnlabError(f"got {t.numel()} targets for {count} images; give one class per image or one for all")
    if num_classes is not None and count and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        bad = int(t.min()) if int(t.min()) < 0 else int(t.max())
        raise CnnlabError(f"target class {bad} is out of range; valid classes are 0..{num_classes - 1}")
    return t


class AttributionMethod:
    """Base class: subclasses set ``name`` and ``signed`` and implement ``_attribute``.

    ``signed`` says whether a map's sign carries meaning (evidence for vs against the
    target: integrated gradients, occlusion, gradient SHAP) or the map is a magnitude
    (saliency, Grad-CAM, guided backprop); figures draw the two differently.
    ``expansion(**options)`` is how many forward passes one image costs at once
    (integration steps, noise samples), used to size the chunks.
    """

    name: ClassVar[str] = ""
    signed: ClassVar[bool] = False
    uses_layer: ClassVar[bool] = False  # takes ``layer=`` (a conv layer by name)
    random: ClassVar[bool] = False  # draws random numbers (seeded by ``seed=``)
    needs_grad: ClassVar[bool] = True  # differentiates with respect to the input
    defaults: ClassVar[dict[str, Any]] = {}

    def expansion(self, **options: Any) -> int:
        return 1

    def attribute(self, model: nn.Module, images: torch.Tensor, target: Any, *, batch_size: int = 256,
                  seed: int = 0, **options: Any) -> torch.Tensor:
        """Maps (N, H, W) for model inputs ``images`` (N, C, H, W) and ``target`` classes (int or (N,)).

        ``batch_size`` bounds the images sent through the model at once (perturbed
        or interpolated copies included); ``options`` are the method's own (see its
        ``defaults``); unknown ones are an error naming the valid ones.
        """
        require_captum()
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise CnnlabError(f"expected images of shape (N, C, H, W), got {shape}")
        if not images.is_floating_point():
            raise CnnlabError(f"expected float model inputs (normalised images), got {images.dtype}")
        if batch_size < 1:
            raise CnnlabError(f"batch_size must be at least 1, got {batch_size}")
        unknown = set(options) - set(self.defaults)
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "none"
            raise CnnlabError(f"{self.name} has no option '{sorted(unknown)[0]}'; its options: {valid}")
        opts = {**self.defaults, **options}
        for key in ("steps", "samples", "window", "stride"):
            value = opts.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise CnnlabError(f"{self.name} option {key} must be an integer, got {value!r}")
        for key in ("noise", "blur_sigma"):
            value = opts.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise CnnlabError(f"{self.name} option {key} must be a finite number, got {value!r}")
        n = images.shape[0]
        classes = _num_classes(model, images)
        targets = as_targets(target, n, classes).to(images.device)
        chunk = max(1, batch_size // max(1, self.expansion(**opts)))
        out = []
        with prepared(model), torch.random.fork_rng(devices=[images.device] if images.is_cuda else []), \
                warnings.catch_warnings():
            # Captum announces the hooks it sets on ReLUs (guided backprop); removing them is our job, done above.
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
            torch.manual_seed(seed)
            for start in range(0, n, chunk):
                x = images[start:start + chunk].detach().clone()  # never the caller's tensor
                x.requires_grad_(self.needs_grad)
                maps = self._attribute(model, x, targets[start:start + chunk], batch_size=batch_size, **opts)
                out.append(maps.detach().to(images.dtype))
        if not out:
            return images.new_zeros((0, *images.shape[2:]))
        return torch.cat(out)

    def _attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, batch_size: int,
                   **options: Any) -> torch.Tensor:
        raise NotImplementedError


def require_captum() -> None:
    """Captum is an optional extra: a missing one is a one-line error saying what to install."""
    try:
        import captum.attr  # noqa: F401
    except ImportError:
        raise CnnlabError("the attribution methods need Captum: pip install 'cnnlab[explain]' "
                          "(or pip install captum)") from None


def _num_classes(model: nn.Module, images: torch.Tensor) -> int | None:
    """The model's class count when it says (cnnlab models do), for checking targets before any work."""
    try:
        return int(model.num_classes)  # type: ignore[attr-defined]
    except (AttributeError, CnnlabError, TypeError):
        return None


# ------------------------------------------------------------------ helpers the methods share


def channel_max_abs(grad: torch.Tensor) -> torch.Tensor:
    """(n, C, H, W) -> (n, H, W): the largest magnitude over channels (Simonyan et al., 2014)."""
    return grad.abs().amax(dim=1)


def channel_sum(attr: torch.Tensor) -> torch.Tensor:
    """(n, C, H, W) -> (n, H, W): the signed sum over channels (keeps completeness: the map sums to the total)."""
    return attr.sum(dim=1)


def fill_value(kind: Any, x: torch.Tensor, black: Any, mean_colour: Any) -> torch.Tensor:
    """A constant baseline image (1, C, 1, 1) in model-input space: ``black``, ``mean`` or a number."""
    c = x.shape[1]
    if isinstance(kind, str):
        if kind not in ("black", "mean"):
            raise CnnlabError(f"baseline '{kind}' is not one of black, mean (or a number)")
        value = black if kind == "black" else mean_colour
    else:
        value = kind
    t = torch.as_tensor(0.0 if value is None else value, dtype=x.dtype, device=x.device).reshape(-1)
    if t.numel() not in (1, c):
        raise CnnlabError(f"a baseline colour needs 1 or {c} values, got {t.numel()}")
    return t.expand(c).reshape(1, c, 1, 1)
