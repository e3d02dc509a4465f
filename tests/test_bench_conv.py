"""``cnnlab bench conv --quick``: a smoke test of the benchmark (it asserts no timings)."""

import json

import pytest

from cnnlab.cli import main


def test_quick_bench_writes_json_plot_and_reports(tmp_path, capsys):
    plot = tmp_path / "plot.png"
    code = main(["bench", "conv", "--quick", "--out-dir", str(tmp_path), "--plot", str(plot), "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    files = list(tmp_path.glob("conv-*.json"))
    assert len(files) == 1 and plot.stat().st_size > 0
    saved = json.loads(files[0].read_text())
    assert saved["benchmark"] == "conv" and saved["quick"] is True
    assert {r["shape"] for r in payload["rows"]} == {"mnist", "cifar", "large"}
    row = payload["rows"][0]
    assert {"F.conv2d", "FFTConv2d", "direct", "im2col", "fft", "winograd"} <= set(row["forward_ms"])
    assert all(t > 0 for t in row["forward_ms"].values())
    assert set(payload["fft_crossover"]) == {"mnist", "cifar", "large"}
    assert payload["winograd_multiplications"]["ratio"] == pytest.approx(2.25)
    assert all(0 < s["theory_ratio"] < 1 for s in payload["separable"])
    assert "winograd (3x3 only)" in payload["skipped"]


def test_crossover_is_the_first_kernel_from_which_fft_always_wins():
    from cnnlab.bench.conv import crossovers

    rows = [{"shape": "s", "kernel": k, "forward_ms": {"F.conv2d": ref, "FFTConv2d": fft}}
            for k, ref, fft in [(3, 1, 5), (5, 3, 2), (7, 4, 5), (9, 8, 4), (11, 12, 4)]]
    assert crossovers(rows)["s"] == {"crossover_kernel": 9, "largest_kernel": 11, "speedup_at_largest": 3.0}


def test_bad_kernels_are_refused(capsys, tmp_path):
    assert main(["bench", "conv", "--kernels", "3,4", "--out-dir", str(tmp_path)]) == 2
    assert "must be odd" in capsys.readouterr().err
    assert main(["bench", "conv", "--shapes", "imagenet", "--out-dir", str(tmp_path)]) == 2
    assert "unknown --shapes" in capsys.readouterr().err
