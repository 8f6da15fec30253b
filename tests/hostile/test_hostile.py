"""The hostile-input suite (issue 18): every case of ``cases.yaml`` against a fresh workspace.

A case is a ``cellsight`` command line (``run``) or a public API call (``call``). Each must
fail the way a user can act on: the expected exit code (or exception) and ONE line that
names the problem, and no file of the workspace changed or added (hashes before and
after). Adding a case is one line in ``cases.yaml``; a new input file is one entry of
:data:`FILES` below.
"""

import errno
import hashlib
import importlib
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import yaml

from cellsight.cli import main
from cellsight.config.semantic import SemanticConfig
from cellsight.config.unet import UNetConfig
from cellsight.core.nn.unet import UNet
from cellsight.core.segmentation.semantic import SemanticModel
from cellsight.io.ctc import write_track_table
from cellsight.io.tiff import write_image, write_labels

CASES = yaml.safe_load((Path(__file__).parent / "cases.yaml").read_text())
RNG = np.random.default_rng(0)


def _squares(n: int, size: int = 32) -> np.ndarray:
    """``n`` separate 2x2 objects (ids 1..n) in a ``size`` x ``size`` image."""
    out = np.zeros((size, size), np.uint16)
    per_row = size // 3
    for i in range(n):
        r, c = divmod(i, per_row)
        out[3 * r:3 * r + 2, 3 * c:3 * c + 2] = i + 1
    return out


def _classes() -> np.ndarray:
    out = np.zeros((32, 32), np.uint8)
    out[4:12, 4:12], out[18:28, 16:26] = 1, 2
    return out


def _cells() -> np.ndarray:
    out = np.zeros((32, 32), np.uint16)
    out[4:12, 4:12], out[18:28, 16:26], out[20:26, 2:8] = 1, 2, 3
    return out


def _with(array: np.ndarray, index, value) -> np.ndarray:
    array = array.copy()
    array[index] = value
    return array


def _movie() -> np.ndarray:
    out = np.zeros((3, 24, 24), np.uint16)
    for t in range(3):
        out[t, 5:9, 5 + t:9 + t] = 1
    return out


def _tiff(name, data, **kwargs):
    return lambda root: write_image(root / name, data, **kwargs)


def _labels(name, data, **kwargs):
    return lambda root: write_labels(root / name, data, **kwargs)


def _raw_tiff(name, data, **kwargs):
    return lambda root: tifffile.imwrite(root / name, data, **kwargs)


def _text(name, text: str | bytes):
    def make(root):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return make


def _multi_series(root):
    with tifffile.TiffWriter(root / "multi.tif") as tif:
        tif.write(np.zeros((16, 16), np.uint8))
        tif.write(np.ones((8, 8, 3), np.uint8), photometric="rgb")


def _truncated(root):
    tifffile.imwrite(root / "trunc.tif", RNG.random((64, 64)).astype(np.float32),
                     compression="zlib")
    data = (root / "trunc.tif").read_bytes()
    (root / "trunc.tif").write_bytes(data[: len(data) // 2])


def _model(root):
    unet = UNetConfig(depth=1, base_channels=4, out_channels=2)
    model = SemanticModel(SemanticConfig(unet=unet, n_classes=2), UNet(unet))
    model.save(root / "model")
    for name in ("badw", "evilw", "badmeta", "noweights"):
        shutil.copytree(root / "model", root / name)
    (root / "badw" / "weights.pt").write_bytes(b"garbage" * 10)
    torch.save({"w": torch.zeros(2), "evil": object()}, root / "evilw" / "weights.pt")
    (root / "badmeta" / "meta.json").write_text("{not json")
    (root / "noweights" / "weights.pt").unlink()


def _ctc(name: str, table, frames: int = 3):
    def make(root):
        folder = root / name
        movie = np.zeros((frames, 16, 16), np.uint16)
        movie[:, 2:6, 2:6] = 1
        for t in range(frames):
            write_labels(folder / f"mask{t:03d}.tif", movie[t])
        if isinstance(table, str):
            (folder / "res_track.txt").write_text(table)
        else:
            write_track_table(folder / "res_track.txt", np.asarray(table))
    return make


#: every input file of the workspace: name -> how to make it
FILES = [
    _tiff("img.tif", RNG.random((32, 32)).astype(np.float32), axes="YX"),
    _labels("lbl.tif", _classes()),
    _labels("stray.tif", _with(_classes().astype(np.uint16), (0, 0), 30000)),
    _labels("inst.tif", _squares(100)),
    _labels("zero.tif", np.zeros((32, 32), np.uint8)),
    _labels("onepix.tif", _with(np.zeros((32, 32), np.uint8), (5, 5), 1)),
    _tiff("tiny.tif", np.ones((1, 1), np.float32), axes="YX"),
    _labels("tinylbl.tif", np.ones((1, 1), np.uint8), axes="YX"),
    _tiff("imgint.tif", _cells().astype(np.uint8)),
    _tiff("lblfloat.tif", RNG.random((32, 32)).astype(np.float32)),
    _tiff("lblraw.tif", RNG.integers(100, 4000, (32, 32)).astype(np.uint16)),
    _raw_tiff("negative.tif", _with(_cells().astype(np.int16), (0, 0), -1)),
    _labels("zyx.tif", np.repeat(_movie()[:1], 4, axis=0), axes="ZYX"),
    _tiff("raw3d.tif", RNG.integers(100, 4000, (3, 24, 24)).astype(np.uint16), axes="TYX"),
    _tiff("raw3df.tif", RNG.random((3, 24, 24)).astype(np.float32), axes="TYX"),
    _tiff("raw3d_small.tif", RNG.random((3, 16, 16)).astype(np.float32), axes="TYX"),
    _labels("masks.tif", _movie(), axes="TYX"),
    _raw_tiff("bool.tif", RNG.random((16, 16)) > 0.5),
    _raw_tiff("bool32.tif", RNG.random((32, 32)) > 0.5),
    _raw_tiff("cplx.tif", (RNG.random((16, 16)) + 1j).astype(np.complex64)),
    _raw_tiff("cplx32.tif", (RNG.random((32, 32)) + 1j).astype(np.complex64)),
    _multi_series,
    _truncated,
    _text("text.png", "hello, not a picture\n"),
    _text("text.jpg", "hello, not a picture\n"),
    _text("my notes ü.png", "hello, not a picture\n"),
    _text("empty.png", b""),
    _text("img.gif", b"GIF89a"),
    _tiff("adir/a.tif", RNG.random((16, 16)).astype(np.float32)),
    lambda root: (root / "cfgdir").mkdir(),
    _text("bad.yaml", "steps: [1, 2\n"),
    _text("list.yaml", "- 1\n- 2\n"),
    _text("extra.yaml", "frobnicate: 1\n"),
    _model,
    _ctc("ctc_begin_gt_end", [[1, 2, 1, 0]]),
    _ctc("ctc_self_parent", [[1, 0, 0, 0], [2, 1, 2, 2]]),
    _ctc("ctc_missing_parent", [[1, 0, 2, 0], [2, 1, 2, 7]]),
    _ctc("ctc_parent_late", [[1, 0, 2, 0], [2, 1, 2, 1]]),
    _ctc("ctc_duplicate", [[1, 0, 1, 0], [1, 2, 2, 0]]),
    _ctc("ctc_label_zero", [[0, 0, 2, 0]]),
    _ctc("ctc_words", "1 0 two 0\n"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """All the input files, built once; each case works on its own copy."""
    root = tmp_path_factory.mktemp("hostile")
    for make in FILES:
        make(root)
    return root


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def disk_full(ws):
    """``ws/full``: a tiny tmpfs filled to the last byte (skipped where mounting is refused)."""
    full = ws / "full"
    full.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(full)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        with open(full / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 1024)
                f.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    yield full
    subprocess.run(["umount", str(full)], check=False)


@pytest.fixture
def ws(workspace, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the workspace, as the current folder."""
    root = tmp_path / "ws"
    shutil.copytree(workspace, root)
    monkeypatch.chdir(root)
    return root


def _one_line(text: str) -> str:
    """The only line of ``text`` that is not a progress bar (``name: ...  50%|##  |``)."""
    lines = [line for line in re.split(r"[\r\n]", text) if line.strip() and "%|" not in line]
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    return lines[0]


def _param(case: dict):
    marks = [pytest.mark.slow] if case.get("slow") else []
    return pytest.param(case, id=case["id"], marks=marks)


def test_cases_are_well_formed():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in CASES:
        assert ("run" in case) != ("call" in case), case["id"]
        assert "says" in case and ("code" in case or "raises" in case), case["id"]


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_hostile_case(case, ws, request, capsys):
    if case.get("setup"):
        request.getfixturevalue(case["setup"])
    before = _hashes(ws)
    if "run" in case:
        code = main(shlex.split(case["run"]))
        captured = capsys.readouterr()
        assert code == case["code"], captured.err
        line = _one_line(captured.err)
        assert line.startswith("cellsight: error: "), line
    else:
        module, name = case["call"].split(":")
        func = getattr(importlib.import_module(module), name)
        with pytest.raises(Exception) as raised:
            func(*[ws / a for a in case.get("args", [])])
        assert type(raised.value).__name__ == case["raises"] or any(
            k.__name__ == case["raises"] for k in type(raised.value).__mro__)
        line = _one_line(str(raised.value))
    print(f"{case['id']}: {line}")
    says = case["says"] if isinstance(case["says"], list) else [case["says"]]
    for text in says:
        assert str(text) in line, line
    assert "weights_only" not in line and "pip install" not in line
    after = _hashes(ws)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"inputs changed or outputs appeared: {changed[:5]}"
    leftovers = [p.name for p in ws.rglob(".*") if p.name.endswith((".part", ".new", ".old"))]
    assert not leftovers
    assert not os.path.exists(ws / "m") and not os.path.exists(ws / "t")
