"""Fixtures for the ImageNet-pretrained tests: real Imagenette-160 validation photos (their folders are WordNet ids)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def imagenette_root() -> Path:
    from cnnlab.data.locate import find_dataset_dir

    return find_dataset_dir("imagenette-160")


def val_photos(per_class: int) -> list[tuple[Path, str]]:
    """The first ``per_class`` validation photos of each class (sorted names), with their wnid."""
    val = imagenette_root() / "val"
    return [(p, d.name) for d in sorted(val.iterdir()) if d.is_dir() for p in sorted(d.iterdir())[:per_class]]


@pytest.fixture(scope="session")
def lite0():
    from cnnlab.models import create_model

    return create_model("efficientnet_lite0.in1k")


@pytest.fixture(scope="session")
def imagenette_small(tmp_path_factory) -> Path:
    """ROOT/train/<wnid>/ (2 per class) and ROOT/val/<wnid>/ (3 per class) of real Imagenette photos."""
    root = tmp_path_factory.mktemp("imagenette-small")
    source = imagenette_root()
    for split, count in (("train", 2), ("val", 3)):
        for d in sorted(p for p in (source / split).iterdir() if p.is_dir()):
            (root / split / d.name).mkdir(parents=True)
            for f in sorted(d.iterdir())[:count]:
                shutil.copy(f, root / split / d.name / f.name)
    return root
