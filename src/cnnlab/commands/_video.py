"""``cnnlab predict RUN VIDEO``: the video half of ``predict`` (its options, checks and output).

``predict.py`` registers these options and hands a video over to :func:`run_video`. Unlike
other ``--json`` outputs, a video prints JSON *lines*: one object per processed frame, then
one summary object (``"summary": true``), so a long video streams instead of piling up.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from cnnlab.commands.common import notice, print_json
from cnnlab.errors import CnnlabError
from cnnlab.fileio import write_json_atomic
from cnnlab.rundir import check_out_dir, check_out_file, open_run_dir, staged_run_dir
from cnnlab.version import __version__

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use

VIDEO_SUFFIXES = (".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".gif")
VIDEO_ONLY = ("every", "start", "duration", "batch", "threads", "track", "count_line", "count_region", "fps", "mot_gt",
              "counts", "tracker")


def add_video_arguments(p) -> None:
    g = p.add_argument_group("video (a video file, or a folder of numbered frames with --video)")
    g.add_argument("--video", action="store_true",
                   help="read the one folder given as a video of numbered frames (a file with a video "
                        f"extension {'/'.join(VIDEO_SUFFIXES[:6])}... is a video anyway)")
    g.add_argument("--every", type=int, metavar="N", help="run the model on every N-th frame (default 1)")
    g.add_argument("--start", type=float, metavar="S", help="begin at S seconds (default 0)")
    g.add_argument("--duration", type=float, metavar="D", help="read D seconds (default: to the end)")
    g.add_argument("--batch", type=int, metavar="B", help="frames per model call (default 8)")
    g.add_argument("--fps", type=float, help="frame rate of a folder of frames (default 25)")
    g.add_argument("--threads", type=int, metavar="T",
                   help="torch threads for the model (default 1; decoding and encoding have threads of their own)")
    g.add_argument("--track", action="store_true", help="detection runs: link boxes into tracks with stable ids")
    g.add_argument("--tracker", action="append", metavar="KEY=VALUE",
                   help="with --track: one of the tracker's thresholds (repeatable; high_score, low_score, "
                        "match_iou, min_hits, max_age, dedupe_iou, class_penalty, buffer, partial_area, birth_iou; "
                        "see docs/manual/video.md)")
    g.add_argument("--count-line", action="append", metavar="x1,y1,x2,y2",
                   help="with --track: count tracks crossing this line, by direction and class (repeatable)")
    g.add_argument("--count-region", action="append", metavar="x1,y1,x2,y2,x3,y3,...",
                   help="with --track: count tracks entering this polygon, by class (repeatable)")
    g.add_argument("--counts", metavar="FILE",
                   help="write the counts as JSON here (default: OUT_STEM.counts.json beside --out)")
    g.add_argument("--mot-gt", metavar="GT.txt",
                   help="with --track: score the tracks against this MOTChallenge ground truth "
                        "(MOTA, IDF1, ID switches in the summary)")


def is_video_request(args) -> bool:
    """A single path with a video extension, or ``--video``; a video-only option elsewhere is an error."""
    named = len(args.images) == 1 and Path(args.images[0]).suffix.lower() in VIDEO_SUFFIXES
    if args.video or named:
        if len(args.images) != 1:
            raise CnnlabError(f"--video reads one video (a file or a folder of numbered frames); got {len(args.images)} "
                              "paths")
        return True
    given = [name for name in VIDEO_ONLY if getattr(args, name, None) not in (None, False)]
    if given:
        raise CnnlabError(f"--{given[0].replace('_', '-')} applies to a video (a video file, or a folder with "
                          "--video); these inputs are images")
    return False


def _progress(total: int | None):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", file=sys.stderr, disable=None, dynamic_ncols=True, mininterval=0.5)


def run_video(args) -> int:
    from cnnlab.video.io import ENCODERS, VideoWriter, check_encodable
    from cnnlab.video.pipeline import open_job

    if getattr(args, "native_size", False):
        raise CnnlabError("--native-size applies to image files; video frames are fitted to the run's input size")
    counting = bool(args.count_line or args.count_region)
    if args.mot_gt and not args.track:
        raise CnnlabError("--mot-gt scores tracks: add --track")
    if args.mot_gt and not Path(args.mot_gt).is_file():
        raise CnnlabError(f"--mot-gt {args.mot_gt} does not exist (MOTChallenge text, e.g. DIR/gt/gt.txt)")
    if args.counts and not counting:
        raise CnnlabError("--counts writes line/region counts: add --count-line or --count-region")
    threads = 1 if args.threads is None else args.threads
    if not 1 <= threads <= 256:
        raise CnnlabError(f"--threads {threads} is out of range; expected 1 to 256")
    if args.out:  # the output policy, before any work: nothing is decoded or created yet
        check_encodable(args.out)
        check_out_file(args.out, args.overwrite, kind="video", suffixes=tuple(ENCODERS), inputs=[args.images[0]])
    counts_path = args.counts or (str(Path(args.out).with_suffix(".counts.json")) if args.out and counting else None)
    if counts_path:
        check_out_file(counts_path, args.overwrite, kind="counts", suffixes=(".json",), flag="--counts",
                       inputs=[args.images[0]])
    elif args.overwrite and not args.out:
        raise CnnlabError("--overwrite replaces --out; give --out")
    from cnnlab.video.track import parse_tracker_options

    tracker = parse_tracker_options(args.tracker) if args.tracker else None
    job = open_job(args.run_dir, args.images[0], k=3 if args.top_k is None else args.top_k,
                   score_threshold=args.score_threshold,
                   iou_threshold=args.iou_threshold, max_detections=args.max_detections, draw=bool(args.out),
                   every=1 if args.every is None else args.every, start=0.0 if args.start is None else args.start,
                   duration=args.duration, batch=8 if args.batch is None else args.batch, track=args.track,
                   count_lines=args.count_line or [], count_regions=args.count_region or [], fps=args.fps,
                   tracker=tracker)
    if "torch" in sys.modules:  # a run's model (not ONNX Runtime alone): set torch's threads
        import torch

        torch.set_num_threads(threads)
    info = job.info
    records = [] if args.mot_gt else None
    bar = _progress(info.frames)
    try:
        writer = VideoWriter(args.out, info.width, info.height, info.rate) if args.out else None
        with writer if writer is not None else contextlib.nullcontext():
            for frame, record, picture in job.frames():
                if writer is not None:
                    writer.write(picture)
                if record is not None:
                    if args.json:
                        sys.stdout.write(json.dumps(record) + "\n")
                    if records is not None:
                        records.append(record)
                bar.update(1)
    finally:
        bar.close()
    summary = {**job.summary, "run_dir": str(args.run_dir)}
    if args.out:
        summary["out"] = str(args.out)
    if counts_path:
        write_json_atomic(counts_path, {"cnnlab": __version__, "kind": "counts", "video": str(info.path),
                                        **job.counts()})
        summary["counts_json"] = str(counts_path)
    if records is not None:
        from cnnlab.video.mot import records_to_rows, score_tracks

        summary["mot"] = score_tracks(args.mot_gt, records_to_rows(records))
    if job.decoder.error:
        notice(f"cnnlab: {info.path}: read {job.decoder.decoded} frame(s), then stopped: {job.decoder.error}")
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
        sys.stdout.flush()
        return 0
    _print_summary(summary)
    return 0


def _print_summary(s: dict) -> None:
    print(f"{s['video']} ({s['width']}x{s['height']}, {s['fps']:g} fps): {s['frames_decoded']} frame(s) decoded, "
          f"{s['frames_processed']} processed in {s['seconds']:.1f} s ({s['frames_per_second'] or 0:.1f} frames/s)")
    if "tracks" in s:
        print(f"tracks: {s['tracks']}")
    for i, line in enumerate(s.get("counts", {}).get("lines", []), 1):
        print(f"line {i} {line['line']}: to_right {line['to_right']}, to_left {line['to_left']} (total {line['total']})")
    for i, region in enumerate(s.get("counts", {}).get("regions", []), 1):
        print(f"region {i}: entered {region['entered']} (total {region['total']})")
    if "mot" in s:
        m = s["mot"]
        print(f"MOTA {m['mota']:.4f}  IDF1 {m['idf1']:.4f}  ID switches {m['num_switches']}  "
              f"precision {m['precision']:.4f}  recall {m['recall']:.4f}")
    if "out" in s:
        print(f"wrote {s['out']}")


# ----------------------------------------------------------------------------- data make-video


def add_make_video(inner) -> None:
    from cnnlab.video.mnist import VideoParams

    d = VideoParams()
    p = inner.add_parser(
        "make-video", help="write a video of moving MNIST test digits with MOTChallenge ground truth",
        description="MNIST test digits on known constant-velocity paths (two meet head-on, others enter and "
                    "leave, later ones occlude earlier ones): DIR/video.mp4, DIR/gt/gt.txt (MOTChallenge), "
                    "DIR/seqinfo.ini, DIR/objects.json. Score a detection run on it with "
                    "`cnnlab predict RUN DIR/video.mp4 --track --mot-gt DIR/gt/gt.txt`.")
    p.add_argument("source", choices=["mnist"], help="where the digits come from (mnist)")
    p.add_argument("--out", required=True, help="output folder (must not exist, or --overwrite a cnnlab one)")
    p.add_argument("--size", type=int, default=d.size, help=f"frame side in pixels (default {d.size})")
    p.add_argument("--frames", type=int, default=d.frames, help=f"frames (default {d.frames})")
    p.add_argument("--fps", type=int, default=d.fps, help=f"frames per second (default {d.fps})")
    p.add_argument("--objects", type=int, default=d.objects, help=f"digits over the whole video (default {d.objects})")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default 0)")
    p.add_argument("--scenes", action="store_true",
                   help="instead of a video, write still frames composed like it (occlusion, digits cut by the "
                        "edge, visible-ink boxes) as a VOC detection folder: train on it with "
                        "`cnnlab train detect-mnist-scenes data.root=DIR`")
    p.add_argument("--amodal", action="store_true",
                   help="boxes cover each digit's whole ink inside the frame, the hidden part too (MOT16/17's "
                        "convention), instead of the visible ink only")
    p.add_argument("--train", type=int, default=6000, help="--scenes: training frames, MNIST training digits (6000)")
    p.add_argument("--test", type=int, default=1000, help="--scenes: test frames, MNIST test digits (1000)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder made by cnnlab")
    p.add_argument("--data-dir", help="folder holding the MNIST files (default: $CNNLAB_DATA, ./data)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_make_video)


def run_make_frame_scenes(args) -> int:
    """``make-video mnist --scenes``: the video's kind of frames as a VOC folder (cnnlab.video.frame_scenes)."""
    from cnnlab.data.locate import load_idx_dataset
    from cnnlab.data.scenes import MANIFEST
    from cnnlab.video.frame_scenes import write_frame_scenes

    for name in ("train", "test"):
        if not 1 <= getattr(args, name) <= 1_000_000:
            raise CnnlabError(f"--{name} {getattr(args, name)} is out of range; expected 1 to 1,000,000 frames")
    check_out_dir(args.out, args.overwrite, kind="scenes")
    mnist = load_idx_dataset("mnist", args.data_dir)
    with staged_run_dir(args.out, overwrite=args.overwrite, kind="scenes", last=(MANIFEST,)) as staging:
        manifest = write_frame_scenes(staging, mnist, args.train, args.test, args.seed, args.size, args.amodal)
    summary = {"out": str(args.out), **manifest["params"], "boxes": manifest["boxes"]}
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {args.train} + {args.test} frames ({args.size}x{args.size}, {manifest['boxes']} boxes) to "
              f"{args.out}; train with `cnnlab train detect-mnist-scenes data.root={args.out}`")
    return 0


def run_make_video(args) -> int:
    from cnnlab.data.locate import load_idx_dataset
    from cnnlab.video.mnist import MIN_VISIBLE, VideoParams, write_video_dataset

    params = VideoParams(args.size, args.frames, args.fps, args.objects, args.seed, args.amodal).check()
    if args.scenes:
        return run_make_frame_scenes(args)
    check_out_dir(args.out, args.overwrite, kind="make-video")
    _, _, test_x, test_y = load_idx_dataset("mnist", args.data_dir)
    with open_run_dir(args.out, overwrite=args.overwrite, kind="make-video") as out:
        manifest = write_video_dataset(out, test_x, test_y, params)
    summary = {"out": str(args.out), "video": str(Path(args.out) / "video.mp4"),
               "gt": str(Path(args.out) / "gt" / "gt.txt"), **manifest["params"], "boxes": manifest["boxes"],
               "boxes_visible": manifest["boxes_visible"]}
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {params.frames} frames ({params.size}x{params.size}, {params.fps} fps, {params.objects} digits, "
              f"{manifest['boxes']} true boxes, {manifest['boxes_visible']} of them at least {MIN_VISIBLE:.0%} visible) "
              f"to {args.out}; score a detection run with `cnnlab predict RUN "
              f"{summary['video']} --track --mot-gt {summary['gt']}`")
    return 0
