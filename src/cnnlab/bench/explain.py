"""How fast is each attribution method? (``cnnlab bench explain``)

Times every attribution method on ResNet-9 at 32x32 (random weights: speed does
not depend on training) over the same images, and reports images per second and
how many forward and backward passes through the model each method made per
image. Occlusion runs twice, side by side: with perturbed copies batched (many
copies of many images per forward pass, the default) and one perturbed image at
a time (batch 1, one copy per pass), the naive loop it replaces. Times are the
best of ``--repeats`` runs after one warm-up, in one process with the same
thread count, so ratios between methods are meaningful on a busy machine;
absolute numbers are not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cnnlab.bench import Progress, to_stderr
from cnnlab.bench.results_io import write_result
from cnnlab.config import max_threads
from cnnlab.errors import CnnlabError, did_you_mean

# why the cnnlab imports inside functions: `cnnlab --help` imports this module for its description, and they load torch or numpy

# Options of each measured configuration (the method's own defaults otherwise).
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "saliency": ("saliency", {}),
    "gradcam": ("gradcam", {}),
    "guided_backprop": ("guided_backprop", {}),
    "guided_gradcam": ("guided_gradcam", {}),
    "smoothgrad": ("smoothgrad", {"samples": 16}),
    "integrated_gradients": ("integrated_gradients", {"steps": 32}),
    "gradient_shap": ("gradient_shap", {"samples": 16}),
    "occlusion": ("occlusion", {"window": 8, "stride": 4}),
    "occlusion_one_at_a_time": ("occlusion", {"window": 8, "stride": 4, "batched": False}),
}


@dataclass
class ExplainBenchSettings:
    images: int = 16  # images explained per measurement
    slow_images: int = 4  # images for the one-at-a-time occlusion (it is slow)
    batch_size: int = 256  # the methods' internal batch size
    repeats: int = 2
    threads: int = 1
    width: int = 64  # ResNet-9 width (64 = the standard network)
    methods: list[str] = field(default_factory=lambda: list(CASES))
    out_dir: str = "benchmarks/results"

    def check(self) -> None:
        limits = {"images": 1024, "slow_images": 1024, "batch_size": 65536, "repeats": 100,
                  "threads": max_threads(), "width": 512}
        for name, high in limits.items():
            if not 1 <= getattr(self, name) <= high:
                raise CnnlabError(f"--{name.replace('_', '-')} must be in [1, {high}], got {getattr(self, name)}")
        unknown = [m for m in self.methods if m not in CASES]
        if unknown:
            raise CnnlabError(f"unknown case '{unknown[0]}'; {did_you_mean(unknown[0], CASES)}")


class PassCounter:
    """Counts forward passes through a model and backward passes through its output (hooks, removed on exit)."""

    def __init__(self, model) -> None:
        self.model, self.forward, self.backward, self.images = model, 0, 0, 0

    def __enter__(self) -> "PassCounter":
        def on_forward(module, inputs, output):
            self.forward += 1
            self.images += output.shape[0]
            if output.requires_grad:
                output.register_hook(self._on_backward)

        self.handle = self.model.register_forward_hook(on_forward)
        return self

    def _on_backward(self, grad):
        self.backward += 1

    def __exit__(self, *exc) -> None:
        self.handle.remove()


def run_explain_bench(settings: ExplainBenchSettings | None = None, say: Progress = to_stderr) -> dict[str, Any]:
    """Measure, print the table, write the JSON; returns the payload plus ``result_path``."""
    import torch

    from cnnlab.explain import get_method
    from cnnlab.models import create_model

    settings = settings or ExplainBenchSettings()
    settings.check()
    before = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        torch.manual_seed(0)
        model = create_model("resnet9", num_classes=10, in_channels=3, image_size=32, width=settings.width).eval()
        x_all = torch.randn(max(settings.images, settings.slow_images), 3, 32, 32)
        baselines = torch.randn(16, 3, 32, 32)
        target = torch.arange(len(x_all)) % 10
        from cnnlab.explain.layers import last_conv_layer

        layer = last_conv_layer(model, (3, 32, 32))
        rows = []
        say(f"ResNet-9 (width {settings.width}) at 3x32x32, {settings.threads} thread(s), best of {settings.repeats}")
        say(f"{'method':<26}{'images':>7}{'images/s':>11}{'fwd/img':>9}{'bwd/img':>9}{'s/run':>9}")
        for case in settings.methods:
            name, options = CASES[case]
            method = get_method(name)
            options = dict(options)
            if name == "gradient_shap":
                options["baselines"] = baselines
            if method.uses_layer:  # named once, as `cnnlab explain` does: finding the default costs a dry run
                options["layer"] = layer
            one_at_a_time = options.get("batched") is False
            n = settings.slow_images if one_at_a_time else settings.images
            x, t = x_all[:n], target[:n]
            batch = 1 if one_at_a_time else settings.batch_size  # the naive loop: one image, one copy per pass
            method.attribute(model, x[:1], t[:1], batch_size=batch, **options)  # warm-up
            best = float("inf")
            for _ in range(settings.repeats):
                with PassCounter(model) as counter:
                    start = time.perf_counter()
                    method.attribute(model, x, t, batch_size=batch, **options)
                    best = min(best, time.perf_counter() - start)
            row = {"case": case, "method": name, "options": {k: v for k, v in options.items() if k != "baselines"},
                   "images": n, "seconds": round(best, 4), "images_per_second": round(n / best, 3),
                   "forward_passes_per_image": counter.forward / n, "backward_passes_per_image": counter.backward / n,
                   "forward_passes": counter.forward, "backward_passes": counter.backward,
                   "images_through_model_per_image": counter.images / n, "internal_batch_size": batch}
            rows.append(row)
            say(f"{case:<26}{n:>7}{row['images_per_second']:>11.2f}{row['forward_passes_per_image']:>9.2f}"
                f"{row['backward_passes_per_image']:>9.2f}{best:>9.2f}")
    finally:
        torch.set_num_threads(before)
    by_case = {r["case"]: r for r in rows}
    conclusions = {}
    if "occlusion" in by_case and "occlusion_one_at_a_time" in by_case:
        ratio = by_case["occlusion"]["images_per_second"] / by_case["occlusion_one_at_a_time"]["images_per_second"]
        conclusions["occlusion_batched_speedup"] = round(ratio, 2)
        say(f"occlusion: batched perturbations are {ratio:.1f}x faster than one perturbed image at a time")
    if "gradcam" in by_case:
        g = by_case["gradcam"]
        passes = g["forward_passes"], g["backward_passes"]
        batches = -(-g["images"] // settings.batch_size)
        conclusions["gradcam_passes_per_batch"] = [passes[0] / batches, passes[1] / batches]
        say(f"Grad-CAM: {passes[0] / batches:.0f} forward and {passes[1] / batches:.0f} backward pass(es) per batch")
    payload = {"settings": {k: v for k, v in vars(settings).items()}, "model": "resnet9", "input": [3, 32, 32],
               "rows": rows, "conclusions": conclusions}
    path = write_result("explain", payload, settings.out_dir)
    say(f"wrote {path}")
    return {**payload, "result_path": str(path)}
