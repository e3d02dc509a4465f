"""``cnnlab bench ...``: speed and accuracy benchmarks (see :mod:`cnnlab.bench`)."""

from __future__ import annotations

import importlib
import pkgutil


def register(subparsers) -> None:
    import cnnlab.bench

    parser = subparsers.add_parser(
        "bench",
        help="measure speed: training time to a target accuracy, conv algorithms, ...",
        description="Benchmarks print a table and write JSON to benchmarks/results/.",
    )
    inner = parser.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    for name in sorted(m.name for m in pkgutil.iter_modules(cnnlab.bench.__path__)):
        module = importlib.import_module(f"cnnlab.bench.{name}")
        if hasattr(module, "register"):  # helpers such as results_io define no command
            module.register(inner)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
