"""The Examples in the docstrings run: the documentation cannot rot."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import cellsight

SKIP = ("cellsight.gui", "cellsight.__main__")


def _modules():
    for info in pkgutil.walk_packages(cellsight.__path__, "cellsight."):
        if not info.name.startswith(SKIP):
            yield info.name


@pytest.mark.parametrize("name", sorted(_modules()))
def test_docstring_examples(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, extraglobs={"np": np}, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
