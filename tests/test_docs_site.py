"""The documentation site builds in strict mode (a warning or a broken link fails) and its pages open
in headless Chromium with no console error and every image loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.chromium import Browser, require_chromium

ROOT = Path(__file__).resolve().parents[1]
# The page's images (loaded or not), its text, and anything it would fetch from outside the site (none).
PAGE_CHECK = """(() => ({
  images: Array.from(document.images).map(i => ({src: i.src.slice(0, 60), complete: i.complete,
                                                   width: i.naturalWidth})),
  text: document.body.innerText,
  external: Array.from(document.querySelectorAll('[src], link[href]'))
    .map(e => e.getAttribute('src') || e.getAttribute('href') || '')
    .filter(u => /^(https?:)?\\/\\//.test(u)),
}))()"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def chromium():
    return require_chromium()


@pytest.mark.parametrize("page, expect", [
    ("index.html", "Two commands"),
    ("reference/index.html", "dotted_overrides"),
    ("tutorials/03-explain/index.html", "Attribution methods"),
])
def test_page_opens_without_errors(site, chromium, page, expect):
    path = site / page
    assert path.is_file(), sorted(p.name for p in site.iterdir())
    with Browser(chromium) as browser:
        session = browser.open(path.as_uri())
        result = browser.evaluate(session, PAGE_CHECK)
        errors = browser.errors()
    assert errors == []
    assert expect in result["text"]
    assert result["external"] == []  # nothing is fetched from outside: the site works offline
    assert all(i["complete"] and i["width"] > 0 for i in result["images"]), result["images"]


def test_the_site_holds_every_design_note_and_tutorial(site):
    notes = {p.stem for p in (ROOT / "docs").glob("*.md")}
    built = {p.name for p in site.iterdir() if p.is_dir()}
    assert notes - {"index"} <= built, notes - built
    tutorials = {p.stem for p in (ROOT / "docs" / "tutorials").glob("*.ipynb")}
    assert tutorials <= {p.name for p in (site / "tutorials").iterdir()}
