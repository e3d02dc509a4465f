"""``cnnlab report RUN_DIR``: report.html built from a real MNIST run and opened in headless Chromium."""

from __future__ import annotations

import json
import os
import re

import pytest

from cnnlab.cli import main
from tests.report.chromium import PAGE_CHECK, Browser, find_chromium, require_chromium


@pytest.fixture(scope="module")
def chromium():
    return require_chromium()


def check_page(chromium, url):
    with Browser(chromium) as browser:
        session = browser.open(url)
        page = browser.evaluate(session, PAGE_CHECK)
        return page, browser.errors()


def test_report_opens_in_a_real_browser(copy_run, chromium, capsys):
    run = copy_run()
    summary = json.loads((run / "summary.json").read_text())
    code = main(["report", str(run), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    path = run / "report.html"
    assert json.loads(out)["report"] == str(path)
    source = path.read_text()
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", source)  # nothing outside the file
    page, errors = check_page(chromium, path.as_uri())
    assert errors == []
    assert page["external"] == []
    images = page["images"]
    assert len(images) >= 9, [i["alt"] for i in images]  # curves, confusion, losses, grid, filters, 4 explanations
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in images), images
    text = page["text"]
    accuracy = f"{summary['test_accuracy']:.4f}"
    assert f"test accuracy {accuracy}" in text  # the headline names the run's test accuracy
    assert f"test accuracy (recomputed now)\t{accuracy}" in text  # and evaluating the weights again agrees
    for heading in ("Summary", "Config", "Training curves", "Confusion matrix", "Per-class accuracy", "Top losses",
                    "Predictions", "Filters of features.0.0", "Explanations"):
        assert heading in text
    assert "limit_train: 12000" in text  # the resolved config is shown


def test_the_page_check_can_fail(chromium, tmp_path):
    """A broken image and a console error are caught (the check above is not vacuous)."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><img src='data:image/png;base64,AAAA' alt='broken'>"
                   "<script>console.error('boom')</script><p>hi</p></body></html>")
    page, errors = check_page(chromium, bad.as_uri())
    assert page["images"][0]["width"] == 0
    assert any("boom" in e for e in errors)


def test_report_bad_input(copy_run, tmp_path, capsys):
    run = copy_run()
    for argv, message in ((["report", str(run), "--out", str(tmp_path / "r.txt")], "must name an .html file"),
                          (["report", str(run), "--methods", "gradcm"], "did you mean 'gradcam'"),
                          (["report", str(tmp_path / "none")], "does not exist")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and err.startswith("cnnlab: error:")
    (run / "final.pt").unlink()
    (run / "last.pt").unlink(missing_ok=True)
    (run / "best.pt").unlink(missing_ok=True)
    assert main(["report", str(run)]) == 2
    assert "has no checkpoint" in capsys.readouterr().err
    assert not (run / "report.html").exists()
