"""The manual's Python API block says what profile_model returns, with numbers this test recomputes."""

from __future__ import annotations

import re
from pathlib import Path

from cnnlab.models import create_model
from cnnlab.profile import Profile, profile_model

README = Path(__file__).resolve().parents[2] / "docs" / "manual" / "python-api.md"  # the README's manual page


def test_the_readme_says_profile_model_returns_a_profile_with_these_totals():
    text = README.read_text(encoding="utf-8")
    assert "rows = profile_model(" not in text  # it returns a Profile, not rows
    params, macs, first = re.search(r"print\(prof\.params, prof\.macs, prof\.rows\[0\]\.name\)\s+# (\d+) (\d+) (\S+)",
                                    text).groups()
    prof = profile_model(create_model("resnet18", num_classes=10, variant="cifar"), (3, 32, 32))
    assert isinstance(prof, Profile)
    assert (prof.params, prof.macs, prof.rows[0].name) == (int(params), int(macs), first)
