"""The examples in the video modules' docstrings run and give the numbers they show."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["cnnlab.video.io", "cnnlab.video.track", "cnnlab.video.count", "cnnlab.video.mot",
                                  "cnnlab.video.draw", "cnnlab.video.mnist"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
