"""benchmarks/mnist_step_layouts.py times the candidates it names and counts their MACs right."""

import json
from pathlib import Path

import pytest

from tests.benchmarks import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("mnist_step_layouts")


def test_the_last_candidate_is_the_shipped_preset(script):
    from cnnlab.config import load_config

    cfg = load_config("mnist-speedrun")
    _, options, fused = script.CANDIDATES[-1]
    shipped = {k: v for k, v in cfg.model.options.items() if k in options}
    assert shipped == options and fused == cfg.optim.fused
    assert cfg.model.options["kernel_size"] == 3 and cfg.model.options["norm"] == "batchnorm"  # the defaults used


def test_macs_by_hand_and_ratios_to_the_first_row(script, tmp_path):
    # stride-2 stem 1->8 at 14x14, 8->16 at 14x14, 16->48 at 7x7, dense 432->128->10
    by_hand = 8 * 9 * 14 * 14 + 16 * 8 * 9 * 14 * 14 + 48 * 16 * 9 * 7 * 7 + 48 * 3 * 3 * 128 + 128 * 10
    first_and_last = [script.CANDIDATES[0], script.CANDIDATES[-1]]
    rows = script.measure(batch=8, rounds=1, min_run_time=0.01, candidates=first_and_last)
    assert rows[1]["macs_per_image"] == by_hand == 635_168
    assert rows[0]["time_vs_first"] == 1.0 and rows[1]["time_vs_first"] > 0
    assert all(r["ms_per_step"] > 0 and r["images_per_second"] == pytest.approx(8e3 / r["ms_per_step"]) for r in rows)
    payload = script.main(["--batch", "4", "--rounds", "1", "--min-run-time", "0.01", "--out-dir", str(tmp_path)])
    written = json.loads(Path(payload["json_path"]).read_text())
    assert [r["name"] for r in written["candidates"]] == [c[0] for c in script.CANDIDATES]
