"""The examples in the detect modules' docstrings run and give the numbers they show."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["model", "targets", "loss", "postprocess", "draw"])
def test_docstring_examples(name):
    module = importlib.import_module(f"cnnlab.detect.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
