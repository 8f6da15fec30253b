"""The Examples in the docstrings run: the documentation cannot rot."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import cellsight

SKIP = ("cellsight.gui", "cellsight.__main__")
# examples that train, export packages or run the built-in model: the full suite only
SLOW = {"cellsight.core.bmz.blocks", "cellsight.core.bmz.export", "cellsight.core.bmz.finetune", "cellsight.core.bmz.run",
        "cellsight.core.blocks.dense", "cellsight.core.blocks.instances",
        "cellsight.core.segmentation.instance_model", "cellsight.core.segmentation.semantic"}


def _modules():
    for info in pkgutil.walk_packages(cellsight.__path__, "cellsight."):
        if not info.name.startswith(SKIP):
            marks = [pytest.mark.slow] if info.name in SLOW else []
            yield pytest.param(info.name, marks=marks, id=info.name)


@pytest.mark.parametrize("name", sorted(_modules(), key=lambda p: p.values[0]))
def test_docstring_examples(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, extraglobs={"np": np}, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
