"""Shared fixtures: paths to the real data and small crops of it."""

import os
from pathlib import Path

import pytest

# torch's OpenMP threads spin while they wait; when other processes share the few cores
# (2 here), that stalls small training steps up to 10x. Passive waiting avoids it; this
# must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CELLSIGHT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's shared real-data folder (``../shared/data``)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is not present on this machine")
    return SHARED_DATA


GUI_TESTS = REPO / "tests" / "gui"


@pytest.fixture
def careamics_unloaded(monkeypatch):
    """Forget any imported CAREamics modules for the test (they come back afterwards)."""
    import sys

    for name in [m for m in sys.modules if m == "careamics" or m.startswith("careamics.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.fixture
def no_careamics(careamics_unloaded, monkeypatch):
    """Run as if CAREamics were not installed (it is where it was installed by hand)."""
    import sys

    monkeypatch.setitem(sys.modules, "careamics", None)  # `import careamics...` -> ImportError


def pytest_collection_modifyitems(config, items):
    """Mark every GUI test (under tests/gui) ``slow``: the fast tier runs without a viewer."""
    for item in items:
        if item.path.is_relative_to(GUI_TESTS):
            item.add_marker(pytest.mark.slow)
