"""What TensorFlow-SAME padding costs a fine-tuning step of EfficientNet-Lite0, and how SameConv2d avoids it.

The ImageNet Lite0 weights need SAME's grid: a stride-2 conv on an even side pads one zero fewer
before than after. Padding the input explicitly copies the whole activation of each of the five
strided convs (forward and backward); ``SameConv2d`` instead grows its kernel by one zero tap at the
start of that axis and lets the conv pad symmetrically (same outputs and gradients). This times one
training step -- forward, cross-entropy, backward, AdamW -- on the same random batch for:

* ``zero_tap``    cnnlab's lite0 as it is (channels-last, as ``imagenette-finetune`` trains)
* ``input_pad``   the same network with the strided convs padding their input (the old way)
* ``timm_cl`` / ``timm_nchw``  ``timm.create_model("efficientnet_lite0")`` channels-last / NCHW
  (timm pads symmetrically, which these TensorFlow-trained weights cannot use)

in interleaved rounds (the first a warm-up) so a busy CPU slows all alike; medians compared.

    python benchmarks/lite0_same_conv.py            # needs timm (cnnlab[timm]); about 2 min on 2 cores

Prints a table and writes ``benchmarks/results/lite0-same-conv-*.json``.
"""

from __future__ import annotations

import argparse
import copy

import torch

from cnnlab.bench.lite0 import _train_step, interleaved
from cnnlab.bench.results_io import write_result
from cnnlab.models import create_model
from cnnlab.models import efficientnet_lite as lite


class InputPadConv(lite.SameConv2d):
    """SameConv2d as it was: an even side's SAME zeros copied into a padded input before the conv."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.Conv2d.forward(self, x) if self.stride[0] == 1 else self.conv_padded_input(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=8)
    a = ap.parse_args()
    import timm

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    ours = create_model("efficientnet_lite0", num_classes=10, image_size=a.size, variant="imagenet")
    old = copy.deepcopy(ours)
    for module in old.modules():
        if isinstance(module, lite.SameConv2d):
            module.__class__ = InputPadConv
    ref = timm.create_model("efficientnet_lite0", num_classes=10)
    x = torch.randn(a.batch, 3, a.size, a.size)
    y = torch.randint(0, 10, (a.batch,))
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():  # the two cnnlab versions compute the same function
        assert torch.allclose(ours.eval()(x), old.eval()(x), atol=1e-5)
    fns = {"zero_tap": _train_step(ours.to(memory_format=torch.channels_last), x_cl, y),
           "input_pad": _train_step(old.to(memory_format=torch.channels_last), x_cl, y),
           "timm_cl": _train_step(copy.deepcopy(ref).to(memory_format=torch.channels_last), x_cl, y),
           "timm_nchw": _train_step(ref, x, y)}
    seconds = interleaved(fns, a.rounds)
    rate = {k: round(a.batch / s, 2) for k, s in seconds.items()}
    best_timm = max(rate["timm_cl"], rate["timm_nchw"])
    print(f"EfficientNet-Lite0 fine-tuning step, batch {a.batch} at {a.size} px, {a.threads} threads, "
          f"median of {a.rounds} interleaved rounds (timm {timm.__version__}):")
    print("| version | images/s | / timm's better layout |\n|---|---:|---:|")
    for name, r in rate.items():
        print(f"| {name} | {r:.1f} | {r / best_timm:.2f}x |")
    path = write_result("lite0-same-conv", {"threads": a.threads, "size": a.size, "batch": a.batch,
                                            "rounds": a.rounds, "timm": timm.__version__, "images_per_second": rate,
                                            "zero_tap_vs_input_pad": round(rate["zero_tap"] / rate["input_pad"], 3),
                                            "zero_tap_vs_timm_best": round(rate["zero_tap"] / best_timm, 3)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
