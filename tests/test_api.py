"""cellsight.api is the public surface: every name resolves and carries a runnable example."""

import importlib
import subprocess
import sys

import pytest

import cellsight.api as api


@pytest.mark.parametrize("name", api.__all__)
def test_every_public_name_resolves_and_has_an_example(name):
    obj = getattr(api, name)
    assert obj.__module__.startswith("cellsight."), name
    doc = obj.__doc__ or ""
    assert "Examples\n" in doc and ">>> " in doc, f"{name} has no Examples section"


def test_public_names_are_the_defining_objects():
    # no wrappers: the API hands out what the capability modules define
    for name, module in api._WHERE.items():
        assert getattr(api, name) is getattr(importlib.import_module(module), name)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'segment_everything'"):
        api.segment_everything  # noqa: B018


def test_importing_the_api_imports_no_capability():
    code = ("import sys, cellsight.api; "
            "print(any(m.startswith(('torch', 'cellsight.core')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
