"""``cnnlab bench transfer``: cached features vs a live frozen backbone; ONNX Runtime vs PyTorch.

Two measurements, each against its baseline in the same run, one thread per
engine (steady on a shared CPU). (1) One epoch of training a linear head on
``--images`` CIFAR-10 images: from cached features (the head's steps alone)
against the frozen backbone run live on every batch (forward without gradients,
then the same head step); the one-time cost of filling the cache is reported
beside it. (2) Inference images/s of the ``mnist-fast``, ``resnet9`` and
``resnet18`` networks (random weights: speed does not depend on them) in PyTorch
(the better of NCHW and channels-last) and in ONNX Runtime at batch 1 and 64. (3) EfficientNet-Lite0
(:mod:`cnnlab.bench.lite0`): fine-tuning images/s of cnnlab's network beside timm's in the same run,
and its inference images/s in PyTorch and ONNX Runtime.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from cnnlab.bench import median_seconds
from cnnlab.bench.results_io import write_result
from cnnlab.config import DataConfig, load_config

# why the cnnlab imports inside functions: `cnnlab --help` imports this module for its description, and they load torch or numpy

INFERENCE_MODELS = {  # name -> (preset or model name, options, input size)
    "mnist-fast": ("mnist-fast", None, (1, 28, 28)),
    "resnet9": ("resnet9", {"num_classes": 10}, (3, 32, 32)),
    "resnet18": ("resnet18", {"num_classes": 10, "variant": "cifar"}, (3, 32, 32)),
}


def _backbone(source: str | None):
    """(model, input size, mean, std): a run's model, or the folder-convnet network (random weights) at 32x32."""
    import torch

    if source:
        from cnnlab.runs import load_run

        run = load_run(source)
        return run.model, run.input_size, run.mean, run.std
    from cnnlab.runs import build_model

    cfg = load_config("folder-convnet")
    torch.manual_seed(0)
    return build_model(cfg, (3, 32, 32), 10).eval(), (3, 32, 32), None, None


def bench_cache(images: int, backbone: str | None, data_dir: str | None, batch: int = 64,
                data_cfg=None) -> dict[str, Any]:
    import torch

    from cnnlab.data.datasets import load_dataset
    from cnnlab.transfer.features import Backbone, prepare_images

    model, size, mean, std = _backbone(backbone)
    model.eval()
    bb = Backbone(model, tuple(size), mean, std, {})
    data = load_dataset(data_cfg or DataConfig(name="cifar10-jpeg", data_dir=data_dir))
    x8, y = data.train_x[:images], data.train_y[:images]
    t0 = time.perf_counter()
    feats = torch.cat([bb(prepare_images(x8[i:i + 256], bb, mean, std)) for i in range(0, len(x8), 256)])
    cache_seconds = time.perf_counter() - t0  # (N, D)
    head = torch.nn.Linear(feats.shape[1], 10)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)

    def step(f, labels):
        loss = torch.nn.functional.cross_entropy(head(f), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def cached_epoch():
        order = torch.randperm(len(feats))
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            step(feats[idx], y[idx])

    def live_epoch():
        order = torch.randperm(len(x8))
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            step(bb(prepare_images(x8[idx], bb, mean, std)), y[idx])

    cached = median_seconds(cached_epoch, budget=min(2.0, 0.002 * len(x8)))
    live = median_seconds(live_epoch, budget=0.0, min_runs=2)
    return {"images": int(len(x8)), "feature_dim": int(feats.shape[1]), "backbone": backbone or "folder-convnet",
            "batch": batch, "cached_epoch_seconds": round(cached, 4), "live_epoch_seconds": round(live, 4),
            "speedup": round(live / cached, 1), "cache_fill_seconds": round(cache_seconds, 3)}


def bench_inference(names: list[str], batches: tuple[int, ...] = (1, 64), budget: float = 2.0) -> list[dict]:
    import torch

    from cnnlab.models import create_model
    from cnnlab.runs import build_model
    from cnnlab.transfer.export import export_model, onnx_session

    rows = []
    for name in names:
        source, options, size = INFERENCE_MODELS[name]
        torch.manual_seed(0)
        if options is None:
            model = build_model(load_config(source), size, 10)
        else:
            model = create_model(source, in_channels=size[0], **options)
        model.eval()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.onnx"
            export_model(model, [str(i) for i in range(10)], size, "resize", None, None, "onnx", path,
                         dynamic_batch=True)
            session = onnx_session(path)
            for b in batches:
                x = torch.rand(b, *size)
                xn = x.numpy()
                with torch.no_grad():
                    # PyTorch gets its better memory layout (channels-last is up to 3.5x faster here on the CPU).
                    t_nchw = median_seconds(lambda: model(x), budget)
                    model_cl = model.to(memory_format=torch.channels_last)
                    x_cl = x.contiguous(memory_format=torch.channels_last)
                    t_cl = median_seconds(lambda: model_cl(x_cl), budget)
                    model.to(memory_format=torch.contiguous_format)
                t_torch = min(t_nchw, t_cl)
                t_ort = median_seconds(lambda: session.run(["logits"], {"image": xn}), budget)
                rows.append({"model": name, "batch": b, "torch_images_per_second": round(b / t_torch, 1),
                             "torch_layout": "channels_last" if t_cl < t_nchw else "nchw",
                             "torch_nchw_images_per_second": round(b / t_nchw, 1),
                             "torch_channels_last_images_per_second": round(b / t_cl, 1),
                             "onnxruntime_images_per_second": round(b / t_ort, 1),
                             "onnxruntime_vs_torch": round(t_torch / t_ort, 2)})
    return rows


def run_transfer_bench(images: int = 5000, backbone: str | None = None, data_dir: str | None = None,
                       models: list[str] | None = None, threads: int = 1, out_dir: str = "benchmarks/results",
                       say: Callable[[str], None] = print, data_cfg=None, budget: float = 2.0,
                       lite0: dict | None = None) -> dict[str, Any]:
    """Both comparisons, then the EfficientNet-Lite0 rows (:mod:`cnnlab.bench.lite0`; ``lite0`` holds its
    keyword arguments, ``{"skip": True}`` leaves them out); the JSON goes to ``out_dir``."""
    import torch

    from cnnlab.bench.lite0 import bench_lite0

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        say(f"cached features vs live frozen backbone: one head epoch over {images} CIFAR-10 images ...")
        cache = bench_cache(images, backbone, data_dir, data_cfg=data_cfg)
        say(f"inference: PyTorch vs ONNX Runtime, {threads} thread(s) ...")
        inference = bench_inference(models or list(INFERENCE_MODELS), budget=budget)
        options = dict(lite0 or {})
        rows = None if options.pop("skip", False) else bench_lite0(say=say, **options)
    finally:
        torch.set_num_threads(previous)
    payload = {"threads": threads, "cache": cache, "inference": inference, "lite0": rows}
    payload["json_path"] = str(write_result("transfer", payload, out_dir))
    return payload


def format_table(payload: dict[str, Any]) -> list[str]:
    c = payload["cache"]
    lines = [f"head epoch on {c['images']} images ({c['feature_dim']}-d features of {c['backbone']}): "
             f"cached {c['cached_epoch_seconds']:.3f}s vs live backbone {c['live_epoch_seconds']:.3f}s = "
             f"{c['speedup']}x faster (filling the cache once: {c['cache_fill_seconds']:.2f}s)",
             "", "| model | batch | PyTorch images/s (best layout) | ONNX Runtime images/s | ORT / PyTorch |",
             "|---|---:|---:|---:|---:|"]
    for r in payload["inference"]:
        lines.append(f"| {r['model']} | {r['batch']} | {r['torch_images_per_second']:,.1f} ({r['torch_layout']}) | "
                     f"{r['onnxruntime_images_per_second']:,.1f} | {r['onnxruntime_vs_torch']:.2f}x |")
    if payload.get("lite0"):
        from cnnlab.bench.lite0 import format_lite0

        lines += format_lite0(payload["lite0"])
    return lines
