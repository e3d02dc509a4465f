"""``cnnlab bench video``: frames/s of decoding, inference, encoding, and the whole pipeline, per detector size.

For each size (default 128x128 and 320x320) a synthetic H.264 clip of that size is encoded
first (moving bright squares on noise, ``frames`` frames at 25 fps), and the detector of a
detection preset (default ``detect-raccoon``'s; random weights, as ``bench detect``: speed
does not depend on them) is timed on it, each stage on its own and then all together, in
``rounds`` interleaved rounds (default 3), keeping each stage's best:

- **decode**: PyAV decoding to RGB arrays (:func:`cnnlab.video.io.decode_batches`, its thread);
- **inference**: the frame model on the decoded frames in batches (letterbox, network, NMS,
  back to frame pixels) -- what ``predict`` runs per batch;
- **encode**: :class:`cnnlab.video.io.VideoWriter` (H.264) writing the decoded frames;
- **end to end**: ``predict RUN VIDEO --out out.mp4`` without the CLI: decode in its
  thread, inference and drawing here, encoding in its thread.

``end_to_end / inference`` says how much the decoding and encoding threads cost the model: 1.0
means they are fully hidden behind inference. Torch runs on ``threads`` threads (default 1).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from cnnlab.bench.results_io import write_result

# why the cnnlab imports inside functions: `cnnlab --help` imports this module for its description, and they load torch or numpy


DEFAULT_SIZES = (128, 320)


def synthetic_frames(size: int, frames: int, seed: int = 0) -> list[np.ndarray]:
    """``frames`` RGB (size, size, 3) frames: three bright squares drifting over mild noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
    out = []
    side = size // 6
    for t in range(frames):
        f = base.copy()
        for k in range(3):
            x = int((size * k / 3 + 2 * t) % (size - side))
            y = int((size / 4 + k * side + t) % (size - side))
            f[y:y + side, x:x + side] = (220, 200 - 40 * k, 60 + 60 * k)
        out.append(f)
    return out


def _detector(cfg, size: int, channels: int, classes: int):
    from cnnlab.detect.evaluate import nms_options
    from cnnlab.runs import LoadedRun, build_model
    from cnnlab.video.models import FrameDetector

    model = build_model(cfg, (channels, size, size), classes, pretrained=False).eval()
    run = LoadedRun(Path("."), cfg, model, (channels, size, size), [str(i) for i in range(classes)],
                    None, None, Path("random"), {})
    return FrameDetector.from_run(run, nms_options(cfg.detect)), sum(p.numel() for p in model.parameters())


def bench_size(cfg, size: int, channels: int, classes: int, frames: int, batch: int, rounds: int = 3) -> dict[str, Any]:
    """Frames/s of each stage, the best of ``rounds`` rounds that take the four stages in turn.

    Interleaving the stages and keeping each one's best round makes the ratios fair on a shared
    machine: a burst of someone else's load hits one round, not one stage.
    """
    from cnnlab.video.io import VideoWriter, decode_batches, probe
    from cnnlab.video.pipeline import VideoJob, VideoOptions

    detector, params = _detector(cfg, size, channels, classes)
    best = {"decode": 0.0, "inference": 0.0, "encode": 0.0, "end_to_end": 0.0}
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-video-") as tmp:
        clip = Path(tmp) / "clip.mp4"
        with VideoWriter(clip, size, size, 25) as w:
            for f in synthetic_frames(size, frames):
                w.write(f)
        info = probe(clip)
        detector(synthetic_frames(size, batch))  # warm-up
        boxes = 0

        def timed(stage: str, fn) -> None:
            t0 = time.perf_counter()
            fn()
            best[stage] = max(best[stage], frames / (time.perf_counter() - t0))

        def infer() -> None:
            nonlocal boxes
            boxes = sum(len(r["boxes"]) for i in range(0, len(decoded), batch) for r in detector(decoded[i:i + batch]))

        def encode() -> None:
            with VideoWriter(Path(tmp) / "encoded.mp4", size, size, 25) as w:
                for f in decoded:
                    w.write(f)

        def end_to_end() -> None:
            job = VideoJob(detector, clip, VideoOptions(batch=batch), draw=True)
            with VideoWriter(Path(tmp) / "annotated.mp4", size, size, 25) as w:
                for _, _, picture in job.frames():
                    w.write(picture)

        decoded: list = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            decoded = [f.rgb for b in decode_batches(info, batch) for f in b]
            best["decode"] = max(best["decode"], len(decoded) / (time.perf_counter() - t0))
            timed("inference", infer)
            timed("encode", encode)
            timed("end_to_end", end_to_end)
    row = {"size": size, "params": params, "frames": len(decoded), "batch": batch, "rounds": rounds,
           "boxes_per_frame": round(boxes / len(decoded), 2),
           **{f"{k}_fps": round(v, 1) for k, v in best.items()}}
    row["end_to_end_over_inference"] = round(row["end_to_end_fps"] / row["inference_fps"], 3)
    return row


def run_video_bench(preset: str = "detect-raccoon", sizes=DEFAULT_SIZES, frames: int = 100, batch: int = 8,
                    threads: int = 1, out_dir: str = "benchmarks/results", say: Callable[[str], None] = print,
                    rounds: int = 3) -> dict[str, Any]:
    """Time each stage at each size; write ``benchmarks/results/video-*.json``."""
    import torch

    from cnnlab.bench.detect import detection_preset
    cfg, channels, classes = detection_preset(preset)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    try:
        for size in sizes:
            say(f"video through the {preset} detector at {size}x{size}: {frames} frames, batch {batch} ...")
            rows.append(bench_size(cfg, size, channels, classes, frames, batch, rounds))
    finally:
        torch.set_num_threads(previous)
    payload = {"preset": preset, "model": cfg.model.name, "threads": threads, "codec": "libx264", "results": rows}
    payload["json_path"] = str(write_result("video", payload, out_dir))
    return payload


def format_table(payload: dict[str, Any]) -> list[str]:
    lines = [f"video through the {payload['preset']} detector ({payload['model']} features, random weights), "
             f"{payload['threads']} torch thread(s), H.264 in and out",
             "", "| frame = input | decode fps | inference fps | encode fps | end to end fps | end to end / inference |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in payload["results"]:
        lines.append(f"| {r['size']}x{r['size']} | {r['decode_fps']:.0f} | {r['inference_fps']:.1f} | "
                     f"{r['encode_fps']:.0f} | {r['end_to_end_fps']:.1f} | {r['end_to_end_over_inference']:.2f} |")
    return lines
