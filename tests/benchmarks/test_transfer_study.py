"""benchmarks/transfer_study.py: one cell is one `cnnlab train`; --merge joins parts into one table and record."""

import json

import pytest

from tests.benchmarks import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("transfer_study")


def test_every_cell_trains_on_its_subset_with_the_shared_options(script, monkeypatch, tmp_path):
    calls = []

    def fake_cli(*args):
        calls.append(args)
        return {"test_accuracy": 0.5, "train_seconds": 3.0, "wall_seconds": 4.0, "epochs": 2, "steps": 20}

    monkeypatch.setattr(script, "cli", fake_cli)
    row = script.in1k_cell("in1k-full-ld", 10, 2, tmp_path / "feats", tmp_path)
    head = script.in1k_cell("in1k-head", 10, 0, tmp_path / "feats", tmp_path, image_size=160)
    scratch = script.cell("scratch", 100, 1, tmp_path / "pre", tmp_path / "feats", tmp_path)
    assert row == {"method": "in1k-full-ld", "per_class": 10, "seed": 2, "test_accuracy": 0.5, "train_seconds": 3.0,
                   "wall_seconds": 4.0, "epochs": 2, "steps": 20, "image_size": 96}
    assert scratch["method"] == "scratch" and scratch["per_class"] == 100
    full, head_args, plain = calls
    # full fine-tuning frees every stage; freeze_k=K keeps K stages trainable, so the head-only arm is K=0
    assert full[:3] == ("train", "cifar10-finetune", "train.epochs=30") and "model.freeze=none" in full
    assert not any(a.startswith("model.freeze_k") for a in full)
    assert "model.freeze_k=0" in head_args and "data.image_size=160" in head_args
    assert head_args[-3:] == ("--out", str(tmp_path / "in1k-head-160px-10-s0"), "--overwrite")
    assert script.label(head) == "in1k-head @160px" and script.label(row) == "in1k-full-ld"
    assert {"data.limit_train=100", "data.batch_size=32", "train.seed=2"} <= set(full)
    assert {"data.limit_train=1000", "data.batch_size=64", "train.seed=1", "optim.lr=3e-3"} <= set(plain)
    assert full[-3:] == ("--out", str(tmp_path / "in1k-full-ld-10-s2"), "--overwrite")


def test_full_fine_tuning_trains_every_parameter_and_the_head_arm_only_the_head():
    """The arms' overrides do what their names say on the real preset (the built model, weights not loaded)."""
    from cnnlab.classify.task import build_classifier
    from cnnlab.config import load_config

    counts = {}
    for method, extra in (("in1k-full-ld", ["model.freeze=none"]), ("in1k-head", ["model.freeze_k=0"])):
        cfg = load_config("cifar10-finetune", extra)
        model = build_classifier(cfg, (3, 96, 96), 10, pretrained=False)
        counts[method] = (sum(p.numel() for p in model.parameters() if p.requires_grad),
                          sum(p.numel() for p in model.parameters()))
    assert counts["in1k-full-ld"][0] == counts["in1k-full-ld"][1]
    assert counts["in1k-head"][0] == 1280 * 10 + 10


def test_merge_gives_one_table_one_record_and_one_plot(script, tmp_path, capsys):
    parts = []
    for i, accs in enumerate(([0.5, 0.6], [0.7])):
        rows = [{"method": "scratch", "per_class": 10, "seed": s, "test_accuracy": a, "train_seconds": 10.0}
                for s, a in enumerate(accs)]
        parts.append(tmp_path / f"part{i}.json")
        parts[-1].write_text(json.dumps({"rows": rows, "feature_cache_seconds": 1.0}))
    script.merge(parts, tmp_path / "results", tmp_path / "plot.png")
    table = capsys.readouterr().out
    assert "| 10 | 0.600 ± 0.100 (3x, 10 s) |" in table  # the three seeds of both parts together
    (record,) = (tmp_path / "results").iterdir()
    payload = json.loads(record.read_text())
    assert payload["benchmark"] == "transfer-study-merged" and len(payload["rows"]) == 3
    assert [p["file"] for p in payload["parts"]] == ["part0.json", "part1.json"]
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
