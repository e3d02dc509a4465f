"""Text tables for profiles: per-layer rows with totals, timings, and two models side by side.

>>> human(1_814_083_944)
'1.814 G'
>>> human_bytes(3 * 1024 * 1024)
'3.00 MiB'
"""

from __future__ import annotations

from typing import Optional, Sequence

from cnnlab.profile.profiler import CONVENTIONS, Profile
from cnnlab.profile.timing import Timing


def human(value: float, digits: int = 3) -> str:
    """1234567 -> '1.235 M' (decimal prefixes, as parameter and FLOP counts are quoted)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}f} {prefix}"
    return f"{value:g}"


def human_bytes(value: float) -> str:
    """Bytes in binary units: KiB, MiB, GiB."""
    for factor, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if value >= factor:
            return f"{value / factor:.2f} {unit}"
    return f"{int(value)} B"


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape) if shape else "-"


def _grid(header: Sequence[str], rows: list[Sequence[str]], right: set[int]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for j, row in enumerate([header, *rows]):
        cells = [str(c).rjust(widths[i]) if i in right else str(c).ljust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_profile(profile: Profile) -> str:
    """The per-layer table with a total line and the counting conventions."""
    header = ("layer", "type", "output", "params", "frozen", "MACs", "FLOPs", "activations")
    rows = [
        (r.name, r.type, _shape(r.output_shape), f"{r.params_trainable:,}", f"{r.params_frozen:,}",
         f"{r.macs:,}", f"{r.flops:,}", human_bytes(r.activation_bytes))
        for r in profile.rows
    ]
    rows.append(("total", "", _shape(profile.output_shape), f"{profile.params_trainable:,}",
                 f"{profile.params_frozen:,}", f"{profile.macs:,}", f"{profile.flops:,}",
                 human_bytes(profile.activation_bytes)))
    c, h, w = profile.input_size
    title = (f"{profile.model}: input {c}x{h}x{w}, batch {profile.batch_size}, {profile.dtype}\n")
    summary = (
        f"\nparameters {profile.params:,} ({human(profile.params)}; {profile.params_frozen:,} frozen; "
        f"{human_bytes(profile.param_bytes)})  MACs per image {human(profile.macs_per_image)}  "
        f"FLOPs per image {human(2 * profile.macs_per_image)}  "
        f"activations {human_bytes(profile.activation_bytes)}\n"
        f"MACs: {CONVENTIONS['macs']}; {CONVENTIONS['flops']}.\n"
        f"activations: {CONVENTIONS['activation_bytes']}."
    )
    return title + _grid(header, rows, right={3, 4, 5, 6, 7}) + summary


def format_timings(timings: Sequence[Timing]) -> str:
    header = ("timing", "device", "batch", "median ms", "min ms", "max ms", "images/s")
    rows = [(t.mode, t.device, str(t.batch_size), f"{t.median_ms:.2f}", f"{t.min_ms:.2f}", f"{t.max_ms:.2f}",
             f"{t.images_per_second:,.1f}") for t in timings]
    note = ""
    if timings:
        t = timings[0]
        note = (f"\nmedian of {t.repeats} timed calls after {t.warmup} warm-up calls"
                f"{'; CPU threads: ' + str(t.threads) if t.device == 'cpu' else ''}; "
                "train_step = forward + loss (cross-entropy on class logits, else the outputs' mean, e.g. a detector) "
                "+ backward + SGD update (on a copy of the model)")
    return _grid(header, rows, right={2, 3, 4, 5, 6}) + note


def comparison(a: Profile, b: Profile, ta: Sequence[Timing] = (), tb: Sequence[Timing] = ()) -> list[tuple]:
    """(quantity, value A, value B, B/A) for the headline numbers of two profiles."""
    items = [
        ("parameters", a.params, b.params),
        ("macs_per_image", a.macs_per_image, b.macs_per_image),
        ("flops_per_image", 2 * a.macs_per_image, 2 * b.macs_per_image),
        ("activation_bytes", a.activation_bytes, b.activation_bytes),
        ("parameter_bytes", a.param_bytes, b.param_bytes),
    ]
    by_mode_b = {t.mode: t for t in tb}
    for t in ta:
        if t.mode in by_mode_b:
            items.append((f"{t.mode}_median_ms", t.median_ms, by_mode_b[t.mode].median_ms))
            items.append((f"{t.mode}_images_per_second", t.images_per_second, by_mode_b[t.mode].images_per_second))
    return [(k, va, vb, (vb / va) if va else None) for k, va, vb in items]


def format_comparison(a: Profile, b: Profile, ta: Sequence[Timing] = (), tb: Sequence[Timing] = ()) -> str:
    def show(key: str, value: float) -> str:
        if key.endswith("bytes"):
            return human_bytes(value)
        if key.endswith("_ms") or key.endswith("per_second"):
            return f"{value:,.2f}"
        return f"{human(value)} ({int(value):,})"

    rows = [(k, show(k, va), show(k, vb), "-" if r is None else f"{r:.3f}") for k, va, vb, r in comparison(a, b, ta, tb)]
    c, h, w = a.input_size
    title = f"A = {a.model} ({c}x{h}x{w}), B = {b.model} ({'x'.join(map(str, b.input_size))}), batch {a.batch_size}\n"
    return title + _grid(("quantity", "A", "B", "B/A"), rows, right={1, 2, 3})


def comparison_dict(a: Profile, b: Profile, ta: Sequence[Timing] = (), tb: Sequence[Timing] = ()) -> dict:
    return {k: r for k, _, _, r in comparison(a, b, ta, tb)}


def profile_dict(profile: Profile, timings: Optional[Sequence[Timing]] = None, layers: bool = True) -> dict:
    out = profile.to_dict(layers=layers)
    out["timing"] = None if timings is None else {t.mode: t.to_dict() for t in timings}
    return out
