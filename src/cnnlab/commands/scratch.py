"""``cnnlab scratch ...``: the from-scratch NumPy implementations (see :mod:`cnnlab.scratch`).

``cnnlab scratch train mnist --out runs/scratch-mnist`` trains the classic
two-convolution net in pure NumPy (forward and backward written by hand) on
the real MNIST and writes ``summary.json`` (``test_accuracy``,
``train_seconds``, ``images_per_second``, ...) and ``model.npz``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cnnlab.commands.common import notice, print_json
from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.fileio import atomic_path, write_json_atomic
from cnnlab.rundir import check_out_dir, open_run_dir
from cnnlab.version import __version__

# why the cnnlab imports inside functions: `cnnlab --help` imports every command module; the library loads on use

DATASETS = ("mnist", "fashion-mnist")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "scratch",
        help="CNNs in pure NumPy with hand-written backward passes",
        description="Convolution from scratch: NumPy layers with explicit backward passes.",
    )
    inner = parser.add_subparsers(dest="scratch_command", metavar="ACTION")
    train = inner.add_parser(
        "train",
        help="train the two-convolution net in pure NumPy",
        description=(
            "Train conv(32)-pool-conv(64)-pool-dense(128)-dense(10) in NumPy with Adam and a linearly "
            "decaying learning rate; writes summary.json and model.npz to --out."
        ),
    )
    train.add_argument("dataset", help="mnist (or fashion-mnist)")
    train.add_argument("--algorithm", default="im2col",
                       help="convolution algorithm: direct, im2col (default), fft, winograd, winograd4")
    train.add_argument("--epochs", type=int, default=1, help="passes over the training set (default 1: 98.8%% on MNIST)")
    train.add_argument("--batch-size", type=int, default=64, help="examples per step (default 64)")
    train.add_argument("--lr", type=float, default=2e-3, help="peak learning rate, decayed linearly to 0 (default 2e-3)")
    train.add_argument("--optimizer", default="adam", help="adam (default) or sgd (momentum 0.9)")
    train.add_argument("--channels", default="32,64", help="filters of the two convolutions (default 32,64)")
    train.add_argument("--hidden", type=int, default=128, help="width of the dense layer (default 128)")
    train.add_argument("--limit", type=int, default=None,
                       help="use only the first N training and N test images (quick runs)")
    train.add_argument("--seed", type=int, default=0, help="seed for initialisation and shuffling")
    train.add_argument("--threads", type=int, default=1,
                       help="BLAS threads (default 1: on a CPU shared with other jobs one thread is fastest; "
                            "try 2+ on an idle machine)")
    train.add_argument("--data-dir", default=None, help="folder holding the dataset (else $CNNLAB_DATA, ./data)")
    train.add_argument("--out", default=None, help="output folder (default runs/scratch-<dataset>-<algorithm>)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace --out if it is a run directory cnnlab made (marked by .cnnlab-run)")
    train.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    train.set_defaults(func=run_train)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _parse_channels(text: str) -> tuple[int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 2 or min(values) < 1:
        raise CnnlabError(f"--channels must be two positive integers like 32,64, got '{text}'")
    return values  # type: ignore[return-value]


def _check_args(args) -> None:
    from cnnlab.scratch.algorithms import ALGORITHMS

    if args.dataset not in DATASETS:
        raise CnnlabError(f"scratch train supports {', '.join(DATASETS)}, got '{args.dataset}'; "
                          f"{did_you_mean(args.dataset, DATASETS)}")
    if args.algorithm not in ALGORITHMS:
        raise CnnlabError(f"unknown --algorithm '{args.algorithm}'; {did_you_mean(args.algorithm, ALGORITHMS)}")
    if args.optimizer not in ("adam", "sgd"):
        raise CnnlabError(f"--optimizer must be 'adam' or 'sgd', got '{args.optimizer}'")
    for name in ("epochs", "batch_size", "hidden"):
        if getattr(args, name) < 1:
            raise CnnlabError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.threads < 1:
        raise CnnlabError(f"--threads must be >= 1, got {args.threads}")
    if args.limit is not None and args.limit < 1:
        raise CnnlabError(f"--limit must be >= 1, got {args.limit}")
    if not args.lr > 0:
        raise CnnlabError(f"--lr must be > 0, got {args.lr}")


def run_train(args) -> int:
    _check_args(args)
    channels = _parse_channels(args.channels)
    out = Path(args.out or f"runs/scratch-{args.dataset}-{args.algorithm}")
    check_out_dir(out, args.overwrite, kind="scratch-train")  # before any work; the folder itself is made once the data has loaded

    import numpy as np

    from cnnlab.data.locate import find_dataset_dir, load_idx_dataset
    from cnnlab.scratch.mnist import train_mnist
    from cnnlab.scratch.threads import blas_threads

    data_dir = find_dataset_dir(args.dataset, args.data_dir)
    train_x, train_y, test_x, test_y = load_idx_dataset(args.dataset, args.data_dir)
    if args.limit:
        train_x, train_y = train_x[: args.limit], train_y[: args.limit]
        test_x, test_y = test_x[: args.limit], test_y[: args.limit]
    with open_run_dir(out, overwrite=args.overwrite, kind="scratch-train"):
        notice(f"scratch train {args.dataset}: {len(train_x)} train / {len(test_x)} test images from {data_dir}, "
               f"algorithm {args.algorithm}, {args.epochs} epoch(s), batch {args.batch_size}")
        with blas_threads(args.threads):
            net, summary = train_mnist(
                train_x, train_y, test_x, test_y, algorithm=args.algorithm, epochs=args.epochs,
                batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, seed=args.seed,
                channels=channels, hidden=args.hidden, progress=notice,
            )
        with atomic_path(out / "model.npz") as tmp:
            net.save(tmp)
        summary.update({
            "dataset": args.dataset,
            "data_dir": str(data_dir),
            "model": "scratch two-conv net (NumPy)",
            "cnnlab_version": __version__,
            "numpy": np.__version__,
            "cpu_count": os.cpu_count(),
            "blas_threads": args.threads,
            "command": "cnnlab " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("cnnlab") else None,
            "out": str(out),
        })
        write_json_atomic(out / "summary.json", summary)
    if args.json:
        print_json(summary)
    else:
        print(f"test accuracy {summary['test_accuracy']:.4f}  train {summary['train_seconds']:.1f} s  "
              f"{summary['images_per_second']:.0f} images/s  -> {out / 'summary.json'}")
    return 0
