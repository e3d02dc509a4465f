"""The EfficientNet-Lite0 rows of ``cnnlab bench transfer``: cnnlab's network beside timm's, in one run.

Fine-tuning: the same training step -- forward, cross-entropy, backward, AdamW -- on the same random
batch, over cnnlab's native ``efficientnet_lite0`` (channels-last, as ``imagenette-finetune`` trains)
and over ``timm.create_model("efficientnet_lite0")`` in a plain PyTorch loop (NCHW, timm's default; its
channels-last rate is reported too). Rounds are interleaved so a busy CPU slows both alike; the
medians are compared. Without timm the independent ``efficientnet-lite-pytorch`` package is the
reference; without either the row says so. Weights are random: speed does not depend on them.

Inference: cnnlab's lite0 in PyTorch -- NCHW, channels-last, and the inference copy ``cnnlab features``
computes with (batch norm folded into the convs, channels-last) -- and ONNX Runtime at batch 1 and
``batch``, with the reference's PyTorch rate (its better layout) beside them, all interleaved in the
same rounds. The row's PyTorch rate is the fastest of cnnlab's three, named.
"""

from __future__ import annotations

import copy
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from cnnlab.models import create_model
from cnnlab.models.inference import inference_copy
from cnnlab.transfer.export import export_model, onnx_session

def reference_lite0(num_classes: int):
    """(the independent lite0, its description) -- timm's if installed, else efficientnet-lite-pytorch's, else None."""
    if importlib.util.find_spec("timm") is not None:
        import timm

        return timm.create_model("efficientnet_lite0", num_classes=num_classes), f"timm {timm.__version__}"
    if importlib.util.find_spec("efficientnet_lite_pytorch") is not None:
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)
        return net, "efficientnet-lite-pytorch"
    return None, "none installed (pip install 'cnnlab[timm]')"


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds of each function over ``rounds`` interleaved rounds, after one warm-up round."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(rounds + 1):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if r:  # round 0 warms up
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def _train_step(model, x, y):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def bench_finetune(size: int = 160, batch: int = 32, rounds: int = 3, num_classes: int = 10) -> dict[str, Any]:
    """Fine-tuning images/s: cnnlab's lite0 (channels-last) against the reference (NCHW and channels-last)."""
    torch.manual_seed(0)
    ours = create_model("efficientnet_lite0", num_classes=num_classes, image_size=size, variant="imagenet")
    ref, described = reference_lite0(num_classes)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, num_classes, (batch,))
    x_cl = x.contiguous(memory_format=torch.channels_last)
    fns = {"cnnlab": _train_step(ours.to(memory_format=torch.channels_last), x_cl, y)}
    if ref is not None:
        fns["reference"] = _train_step(ref, x, y)
        ref_cl = copy.deepcopy(ref).to(memory_format=torch.channels_last)
        fns["reference_channels_last"] = _train_step(ref_cl, x_cl, y)
    seconds = interleaved(fns, rounds)
    rate = {k: round(batch / s, 2) for k, s in seconds.items()}
    row = {"size": size, "batch": batch, "rounds": rounds, "reference": described,
           "cnnlab_images_per_second": rate["cnnlab"], "cnnlab_layout": "channels_last",
           "parameters": sum(p.numel() for p in ours.parameters())}
    if ref is not None:
        row.update(reference_images_per_second=rate["reference"], reference_layout="nchw",
                   reference_channels_last_images_per_second=rate["reference_channels_last"],
                   reference_parameters=sum(p.numel() for p in ref.parameters()),
                   cnnlab_vs_reference=round(rate["cnnlab"] / rate["reference"], 2),
                   cnnlab_vs_reference_best=round(rate["cnnlab"] / max(rate["reference"],
                                                                       rate["reference_channels_last"]), 2))
    return row


def bench_inference_lite0(size: int = 224, batches: tuple[int, ...] = (1, 32), rounds: int = 3) -> list[dict]:
    """Inference images/s at each batch: cnnlab's lite0 (NCHW, channels-last, folded), ONNX Runtime, the reference."""
    torch.manual_seed(0)
    ours = create_model("efficientnet_lite0", num_classes=1000, image_size=size, variant="imagenet").eval()
    ref, _ = reference_lite0(1000)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        path = Path(tmp) / "lite0.onnx"
        export_model(ours, [str(i) for i in range(1000)], (3, size, size), "resize", None, None, "onnx", path,
                     dynamic_batch=True)
        session = onnx_session(path)
        ours_cl = copy.deepcopy(ours).to(memory_format=torch.channels_last)
        folded = inference_copy(ours)  # BN folded into the convs, channels-last: what `cnnlab features` runs
        ref_cl = None if ref is None else copy.deepcopy(ref.eval()).to(memory_format=torch.channels_last)
        for b in batches:
            x = torch.rand(b, 3, size, size)
            x_cl, xn = x.contiguous(memory_format=torch.channels_last), x.numpy()
            fns = {"nchw": lambda: ours(x), "channels_last": lambda: ours_cl(x_cl), "folded": lambda: folded(x_cl),
                   "ort": lambda: session.run(["logits"], {"image": xn})}
            if ref is not None:
                fns.update(ref_nchw=lambda: ref(x), ref_channels_last=lambda: ref_cl(x_cl))
            t = interleaved(fns, rounds)
            layout = min(("nchw", "channels_last", "folded"), key=t.__getitem__)
            row = {"batch": b, "torch_images_per_second": round(b / t[layout], 1), "torch_layout": layout,
                   "torch_nchw_images_per_second": round(b / t["nchw"], 1),
                   "torch_channels_last_images_per_second": round(b / t["channels_last"], 1),
                   "torch_folded_images_per_second": round(b / t["folded"], 1),
                   "onnxruntime_images_per_second": round(b / t["ort"], 1),
                   "onnxruntime_vs_torch": round(t[layout] / t["ort"], 2)}
            if ref is not None:
                best = min(t["ref_nchw"], t["ref_channels_last"])
                row.update(reference_torch_images_per_second=round(b / best, 1),
                           cnnlab_vs_reference=round(best / t[layout], 2))
            rows.append(row)
    return rows


def bench_lite0(size: int = 160, batch: int = 32, rounds: int = 3, inference_size: int = 224,
                say: Callable[[str], None] = print) -> dict[str, Any]:
    """Both lite0 measurements: fine-tuning against the reference, inference in PyTorch and ONNX Runtime."""
    say(f"efficientnet_lite0 fine-tuning at {size} px, batch {batch}: cnnlab vs the reference ...")
    finetune = bench_finetune(size, batch, rounds)
    say(f"efficientnet_lite0 inference at {inference_size} px: PyTorch vs ONNX Runtime vs the reference ...")
    inference = bench_inference_lite0(inference_size, (1, batch), rounds)
    return {"finetune": finetune, "inference": inference, "inference_size": inference_size}


def format_lite0(block: dict[str, Any]) -> list[str]:
    """The lite0 rows of the printed table."""
    f = block["finetune"]
    lines = ["", f"efficientnet_lite0 fine-tuning, {f['size']} px, batch {f['batch']} (median of {f['rounds']} "
             f"interleaved rounds; reference: {f['reference']}):",
             "| network | images/s |", "|---|---:|",
             f"| cnnlab efficientnet_lite0 (channels-last) | {f['cnnlab_images_per_second']:.1f} |"]
    if "reference_images_per_second" in f:
        lines += [f"| reference, plain loop (NCHW) | {f['reference_images_per_second']:.1f} |",
                  f"| reference, channels-last | {f['reference_channels_last_images_per_second']:.1f} |",
                  f"cnnlab / reference: {f['cnnlab_vs_reference']:.2f}x (vs the reference's better layout: "
                  f"{f['cnnlab_vs_reference_best']:.2f}x)"]
    lines += ["", f"efficientnet_lite0 inference, {block['inference_size']} px:",
              "| batch | PyTorch images/s (fastest of NCHW, channels-last, folded) | ONNX Runtime images/s | ORT / PyTorch | reference PyTorch "
              "(best layout) | cnnlab / reference |", "|---:|---:|---:|---:|---:|---:|"]
    for r in block["inference"]:
        ref = r.get("reference_torch_images_per_second")
        versus = "-" if ref is None else f"{ref:,.1f} | {r['cnnlab_vs_reference']:.2f}x"
        lines.append(f"| {r['batch']} | {r['torch_images_per_second']:,.1f} ({r['torch_layout']}) | "
                     f"{r['onnxruntime_images_per_second']:,.1f} | {r['onnxruntime_vs_torch']:.2f}x | {versus} |")
    return lines
