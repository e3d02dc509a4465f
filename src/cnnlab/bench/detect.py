"""``cnnlab bench detect``: detector training and inference images/s, and what NMS costs.

For each input size (default 128x128 and 320x320) the detector of a detection preset
(default ``detect-raccoon``'s: its backbone, FPN and head; random weights -- speed does
not depend on them) is timed on random images with synthetic boxes: one training step
(forward, assignment, loss, backward, AdamW update) and inference (forward, then decode,
threshold and class-aware batched NMS). Inference is split into the network and the
post-processing, so the post-processing share at batch 32 is measured in the same run as
the whole it is a share of. One thread by default (steady on a shared CPU).
"""

from __future__ import annotations

from typing import Any, Callable

from cnnlab.bench import median_seconds
from cnnlab.bench.results_io import write_result
from cnnlab.config import load_config
from cnnlab.errors import CnnlabError

# why the cnnlab imports inside functions: `cnnlab --help` imports this module for its description, and they load torch or numpy

DEFAULT_SIZES = (128, 320)


def _scene_boxes(n: int, size: int, gen) -> tuple[list, list]:
    """Three boxes per image, 10-40% of the side, at random places (what the assignment and loss see)."""
    import torch

    boxes, labels = [], []
    for _ in range(n):
        wh = (torch.rand(3, 2, generator=gen) * 0.3 + 0.1) * size
        xy = torch.rand(3, 2, generator=gen) * (size - wh)
        boxes.append(torch.cat([xy, xy + wh], 1))
        labels.append(torch.zeros(3, dtype=torch.long))
    return boxes, labels


def bench_size(cfg, size: int, channels: int, classes: int, train_batch: int, infer_batch: int,
               budget: float) -> dict[str, Any]:
    import torch

    from cnnlab.detect.evaluate import nms_options
    from cnnlab.detect.loss import DetectionLoss
    from cnnlab.detect.postprocess import postprocess
    from cnnlab.runs import build_model

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = build_model(cfg, (channels, size, size), classes, pretrained=False)
    params = sum(p.numel() for p in model.parameters())
    points, strides = model.points(), model.point_strides()
    loss_fn = DetectionLoss(cfg.detect, model.strides)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x_train = torch.rand(train_batch, channels, size, size, generator=gen)
    boxes, labels = _scene_boxes(train_batch, size, gen)

    def train_step():
        loss = loss_fn(model(x_train), points, strides, boxes, labels)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    train_s = median_seconds(train_step, budget, max_runs=100)
    model.eval()
    x_infer = torch.rand(infer_batch, channels, size, size, generator=gen)
    opts = nms_options(cfg.detect)
    with torch.no_grad():
        out = model(x_infer)
        # A trained detector is sure about few cells; random weights are unsure everywhere (every score
        # near 0.01 * 0.01), which would leave NMS nothing to do. Give the post-processing a realistic
        # load: objectness high on ~2% of the points, so hundreds of candidates per batch enter NMS.
        realistic = out.clone()
        hot = torch.rand(realistic.shape[:2], generator=gen) < 0.02
        realistic[..., 4] = torch.where(hot, torch.full_like(realistic[..., 4], 3.0), realistic[..., 4])
        realistic[..., 5:] = torch.where(hot.unsqueeze(-1), torch.randn(realistic[..., 5:].shape, generator=gen) * 2,
                                         realistic[..., 5:])
        candidates = sum(len(d["scores"]) for d in postprocess(realistic, points, image_size=(size, size), **opts))
        net_s = median_seconds(lambda: model(x_infer), budget, max_runs=100)
        post_s = median_seconds(lambda: postprocess(realistic, points, image_size=(size, size), **opts), budget,
                               max_runs=100)
    infer_s = net_s + post_s
    return {"size": size, "channels": channels, "params": params, "points": len(points),
            "train_batch": train_batch, "train_images_per_second": round(train_batch / train_s, 2),
            "infer_batch": infer_batch, "infer_images_per_second": round(infer_batch / infer_s, 2),
            "network_seconds": round(net_s, 5), "postprocess_seconds": round(post_s, 5),
            "postprocess_share": round(post_s / infer_s, 4), "detections_after_nms": candidates}


def detection_preset(preset: str, overrides: list[str] | None = None):
    """(config, image channels, class count) of a detection preset; another task is a one-line error."""
    from cnnlab.data.detection import FIXED_CLASSES
    cfg = load_config(preset, overrides or [])
    if cfg.task != "detect":
        raise CnnlabError(f"{preset} is not a detection config (task: {cfg.task}); use detect-raccoon or "
                          "detect-mnist-scenes")
    channels = cfg.data.channels or (1 if cfg.data.name == "mnist-scenes" else 3)
    return cfg, channels, len(cfg.data.classes or FIXED_CLASSES.get(cfg.data.name, ["object"]))


def run_detect_bench(preset: str = "detect-raccoon", sizes=DEFAULT_SIZES, train_batch: int = 16,
                     infer_batch: int = 32, threads: int = 1, overrides: list[str] | None = None,
                     out_dir: str = "benchmarks/results", say: Callable[[str], None] = print,
                     budget: float = 3.0) -> dict[str, Any]:
    """Time the preset's detector at each size; write ``benchmarks/results/detect-*.json``."""
    import torch

    cfg, channels, classes = detection_preset(preset, overrides)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    try:
        for size in sizes:
            say(f"{preset} detector at {size}x{size}: training batch {train_batch}, inference batch {infer_batch} ...")
            rows.append(bench_size(cfg, size, channels, classes, train_batch, infer_batch, budget))
    finally:
        torch.set_num_threads(previous)
    payload = {"preset": preset, "model": cfg.model.name, "strides": cfg.detect.strides, "threads": threads,
               "classes": classes, "score_threshold": cfg.detect.score_threshold,
               "iou_threshold": cfg.detect.iou_threshold, "results": rows}
    payload["json_path"] = str(write_result("detect", payload, out_dir))
    return payload


def format_table(payload: dict[str, Any]) -> list[str]:
    lines = [f"{payload['preset']} detector ({payload['model']} features, strides {payload['strides']}), "
             f"{payload['threads']} thread(s), random weights",
             "", "| input | params | train images/s (batch) | inference images/s incl. NMS (batch) | "
             "network ms | post-processing ms | post-processing share |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in payload["results"]:
        lines.append(f"| {r['size']}x{r['size']} | {r['params']:,} | {r['train_images_per_second']:.1f} "
                     f"({r['train_batch']}) | {r['infer_images_per_second']:.1f} ({r['infer_batch']}) | "
                     f"{r['network_seconds'] * 1000:.1f} | {r['postprocess_seconds'] * 1000:.2f} | "
                     f"{r['postprocess_share'] * 100:.1f}% |")
    return lines
