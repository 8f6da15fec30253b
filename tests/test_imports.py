"""Import boundaries, checked in fresh interpreters (sys.modules tells what got loaded)."""

import json
import subprocess
import sys

import pytest

GUI_MODULES = ("qtpy", "PyQt6", "PyQt5", "PySide6", "napari", "magicgui", "superqt", "pyqtgraph")


def _loaded_after(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in json.loads(out.stdout.strip().splitlines()[-1])}


def test_import_cellsight_loads_neither_torch_nor_qt():
    loaded = _loaded_after("import cellsight")
    assert "torch" not in loaded
    assert not loaded & set(GUI_MODULES)


@pytest.mark.slow
def test_backend_never_loads_gui_modules():
    code = """
import importlib, pkgutil
import cellsight, cellsight.config, cellsight.core, cellsight.io, cellsight.cli, cellsight.plugin
for pkg in (cellsight.config, cellsight.core, cellsight.io, cellsight.cli, cellsight.plugin):
    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(mod.name)
import cellsight.plugin.samples, cellsight.pipeline
"""
    loaded = _loaded_after(code)
    assert not loaded & set(GUI_MODULES), loaded & set(GUI_MODULES)


def test_config_and_io_do_not_load_torch():
    code = """
import importlib, pkgutil
import cellsight.config, cellsight.io
for pkg in (cellsight.config, cellsight.io):
    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(mod.name)
"""
    assert "torch" not in _loaded_after(code)


def test_io_is_a_leaf():
    """``cellsight.io`` imports nothing from ``cellsight.core`` (nor the GUI)."""
    code = """
import importlib, pkgutil
import cellsight.io
for mod in pkgutil.walk_packages(cellsight.io.__path__, "cellsight.io."):
    importlib.import_module(mod.name)
print(__import__("json").dumps(sorted(m for m in sys.modules if m.startswith("cellsight.core"))))
"""
    out = subprocess.run([sys.executable, "-c", "import sys\n" + code], capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def _env_after_import(env: dict) -> dict:
    import os

    script = ("import os, json, cellsight\n"
              "print(json.dumps({k: os.environ.get(k) for k in "
              "('OMP_WAIT_POLICY', 'ONEDNN_PRIMITIVE_CACHE_CAPACITY')}))")
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_WAIT_POLICY", "ONEDNN_PRIMITIVE_CACHE_CAPACITY")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env=base | env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_sets_thread_settings_before_torch_and_user_values_win():
    # the library sets them itself (napari never runs the test suite's conftest)
    assert _env_after_import({}) == {"OMP_WAIT_POLICY": "PASSIVE",
                                     "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "64"}
    assert _env_after_import({"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"
