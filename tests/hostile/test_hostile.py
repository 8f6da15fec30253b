"""The hostile-input suite (issue 18): every case of ``cases.yaml`` against a fresh workspace.

A case is a ``cellsight`` command line (``run``) or a public API call (``call``). Each must
fail the way a user can act on: the expected exit code (or exception) and ONE line that
names the problem, and no file of the workspace changed or added (hashes before and
after). Adding a case is one line in ``cases.yaml``; a new input file is one entry of
:data:`FILES` below.
"""

import errno
import importlib
import os
import re
import shlex
import shutil
import subprocess
import zipfile
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
BMZ = Path(__file__).parents[1] / "data" / "bmz"
#: running as root: file modes do not stop reads or writes (cases that rely on them skip)
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


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
    for name in ("badw", "evilw", "badmeta", "noweights", "noconfig", "badcfg", "listcfg",
                 "notask", "frobtask", "otherarch", "emptyw"):
        shutil.copytree(root / "model", root / name)
    (root / "badw" / "weights.pt").write_bytes(b"garbage" * 10)
    torch.save({"w": torch.zeros(2), "evil": object()}, root / "evilw" / "weights.pt")
    (root / "badmeta" / "meta.json").write_text("{not json")
    (root / "noweights" / "weights.pt").unlink()
    (root / "noconfig" / "config.yaml").unlink()
    (root / "badcfg" / "config.yaml").write_text("task: semantic\nunet: {depth: [\n")
    (root / "listcfg" / "config.yaml").write_text("- semantic\n- 2\n")
    config = yaml.safe_load((root / "model" / "config.yaml").read_text())
    (root / "notask" / "config.yaml").write_text(
        yaml.safe_dump({k: v for k, v in config.items() if k != "task"}))
    (root / "frobtask" / "config.yaml").write_text(yaml.safe_dump(dict(config, task="frob")))
    other = UNetConfig(depth=2, base_channels=8, out_channels=2)  # weights of another U-Net
    torch.save(UNet(other).state_dict(), root / "otherarch" / "weights.pt")
    (root / "emptyw" / "weights.pt").write_bytes(b"")
    (root / "emptymodel").mkdir()


def _packages(root):
    """bioimage.io zips: not a zip, a zip without rdf.yaml, a package with a changed file."""
    (root / "notzip.zip").write_text("PK? no, just text\n")
    with zipfile.ZipFile(root / "nordf.zip", "w") as z:
        z.writestr("README.md", "no rdf.yaml here\n")
    with zipfile.ZipFile(BMZ / "careamics_n2v_w2s_ts.zip") as src, \
            zipfile.ZipFile(root / "tampered.zip", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "weights_torchscript.pt":
                data = data[:-4] + bytes(4)  # four changed bytes: the sha256 no longer matches
            dst.writestr(info, data)
    with zipfile.ZipFile(root / "badrdf.zip", "w") as z:
        z.writestr("rdf.yaml", "type: model\nformat_version: [\n")
    shutil.copy(BMZ / "careamics_n2v_w2s.zip", root / "careamics.zip")


def _ctc_folder(name: str, shapes=((16, 16),) * 3, table="1 0 2 0\n", extra=None):
    """A CTC-style folder of frame TIFFs (shapes may differ) and an optional table."""
    def make(root):
        folder = root / name
        folder.mkdir()
        for t, shape in enumerate(shapes):
            frame = np.zeros(shape, np.uint16)
            frame[2:6, 2:6] = 1
            write_labels(folder / f"mask{t:03d}.tif", frame)
        if table is not None:
            (folder / "res_track.txt").write_text(table)
        for fname, text in (extra or {}).items():
            (folder / fname).write_text(text)
    return make


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
    _ctc_folder("ctc_shapes", shapes=((16, 16), (16, 16), (20, 16))),
    _ctc_folder("ctc_notable", table=None),
    _ctc_folder("ctc_text", shapes=(), table=None, extra={"notes.txt": "hello\n"}),
    _ctc_folder("ctc_frame_beyond", table="1 0 5 0\n"),
    _ctc_folder("ctc_missing_label", table="1 0 2 0\n2 0 2 0\n"),
    _ctc_folder("ctc_empty_table", table=""),
    _packages,
    lambda root: (root / "emptydir").mkdir(),
    lambda root: (root / "full").mkdir(),
    _tiff("my image ü.tif", RNG.random((32, 32)).astype(np.float32), axes="YX"),
    _tiff("nan.tif", _with(RNG.random((32, 32)).astype(np.float32), (3, 3), np.nan), axes="YX"),
    _tiff("inf.tif", _with(RNG.random((32, 32)).astype(np.float32), (3, 3), np.inf), axes="YX"),
    _tiff("allnan.tif", np.full((32, 32), np.nan, np.float32), axes="YX"),
    _raw_tiff("empty0.tif", np.zeros((0, 16), np.float32)),
    _tiff("line.tif", RNG.random((1, 64)).astype(np.float32), axes="YX"),
    _tiff("img16.tif", RNG.random((16, 16)).astype(np.float32), axes="YX"),
    _tiff("vol.tif", RNG.random((4, 32, 32)).astype(np.float32), axes="ZYX"),
    _raw_tiff("rgba.tif", RNG.integers(0, 255, (32, 32, 4)).astype(np.uint8)),
    _raw_tiff("six.tif", RNG.random((2, 2, 2, 2, 8, 8)).astype(np.float32)),
    _labels("lbl16.tif", _classes()[:16, :16]),
    _labels("lbl3d.tif", np.stack([_classes()] * 4), axes="ZYX"),
    _labels("huge.tif", _with(_cells().astype(np.uint32), (30, 30), 4_000_000_000)),
    _labels("huge_movie.tif", _with(_movie().astype(np.uint32), (1, 20, 20), 4_000_000_000),
            axes="TYX"),
    _labels("empty_movie.tif", np.zeros((3, 24, 24), np.uint16), axes="TYX"),
    _labels("one_frame.tif", _movie()[:1], axes="TYX"),
    _raw_tiff("bool_movie.tif", _movie() > 0),
    _raw_tiff("neg_movie.tif", _with(_movie().astype(np.int16), (0, 0, 0), -3)),
    _labels("masks_small.tif", _movie()[:, :16, :16], axes="TYX"),
    _labels("masks4.tif", np.repeat(_movie()[:, None], 2, axis=1), axes="TZYX"),
    _text("weird.zarr/.zgroup", "{not json"),
    _text("cfg_negsteps.yaml", "steps: -5\n"),
    _text("cfg_wrongtype.yaml", "steps: many\n"),
    _text("empty.yaml", ""),
]


def _semantic_model(root):
    return SemanticModel.load(root / "model")


def _n2v_model(root):
    from cellsight.config.n2v import N2VConfig
    from cellsight.core.denoise.model import N2VModel, unet_config_for

    config = N2VConfig(depth=1, base_channels=4)
    return N2VModel(UNet(unet_config_for(config, ndim=2, channels=1)), config, mean=(0.0,),
                    std=(1.0,))


def _tracking(root):
    from cellsight.config.tracking import TrackingConfig
    from cellsight.core.tracking import track

    return track(_movie(), config=TrackingConfig(solver="greedy"))


#: Python values an API case passes as ``=name`` (in ``args`` or ``kwargs``); each gets
#: the workspace folder
VALUES = {
    "image": lambda root: RNG.random((32, 32)).astype(np.float32),
    "disc": lambda root: _cells().astype(np.float32),
    "nan_image": lambda root: _with(RNG.random((32, 32)).astype(np.float32), (3, 3), np.nan),
    "inf_image": lambda root: _with(RNG.random((32, 32)).astype(np.float32), (3, 3), -np.inf),
    "bool_image": lambda root: RNG.random((32, 32)) > 0.5,
    "complex_image": lambda root: (RNG.random((32, 32)) + 1j).astype(np.complex64),
    "object_image": lambda root: np.full((8, 8), "a", object),
    "empty_image": lambda root: np.zeros((0, 0), np.float32),
    "line_image": lambda root: RNG.random(64).astype(np.float32),
    "image_5d": lambda root: RNG.random((2, 2, 2, 8, 8)).astype(np.float32),
    "constant_image": lambda root: np.ones((32, 32), np.float32),
    "labels": lambda root: _cells(),
    "labels_16": lambda root: _cells()[:16, :16],
    "movie": lambda root: _movie(),
    "float_movie": lambda root: RNG.random((3, 24, 24)).astype(np.float32),
    "empty_movie": lambda root: np.zeros((3, 24, 24), np.uint16),
    "no_clicks": lambda root: [],
    "click_outside": lambda root: [(500.0, 500.0)],
    "click_negative_only": lambda root: [(10.0, 10.0, False)],
    "click_words": lambda root: [("here", "there")],
    "semantic_model": _semantic_model,
    "n2v_model": _n2v_model,
    "tracking": _tracking,
    "other_shape": lambda root: np.zeros((16, 16), np.uint16),
}


def _value(root: Path, arg):
    """``=name``: a :data:`VALUES` entry; ``:text``: the string ``text``; another string: a
    path in the workspace; a list: each item so; anything else as is."""
    if isinstance(arg, list):
        return [_value(root, a) for a in arg]
    if isinstance(arg, str) and arg.startswith("="):
        return VALUES[arg[1:]](root)
    if isinstance(arg, str) and arg.startswith(":"):
        return arg[1:]
    if isinstance(arg, str):
        return root / arg
    return arg


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """All the input files, built once; each case works on its own copy."""
    root = tmp_path_factory.mktemp("hostile")
    for make in FILES:
        make(root)
    return root


def _digest(path: Path) -> str:
    """Size, mode, modification time and inode: a write in place changes the time, a
    replacement (a new file renamed over it) the inode; no file is read (fast)."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mode:o}:{st.st_mtime_ns}:{st.st_ino}"


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _digest(p)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _mount_tmpfs(where: Path, options: str) -> bool:
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True).returncode == 0


@pytest.fixture
def disk_full(ws):
    """``ws/full``: a tiny tmpfs filled to the last byte (skipped where mounting is refused)."""
    full = ws / "full"
    if not _mount_tmpfs(full, "size=16k"):
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
def read_only(ws):
    """``ws/ro``: a folder nobody may write into, holding ``old.tif``.

    As root, file modes do not stop writes: there ``ro`` is a read-only tmpfs (skipped where
    mounting is refused); otherwise a folder of mode 0555.
    """
    ro = ws / "ro"
    ro.mkdir()
    if ROOT_USER:
        if not _mount_tmpfs(ro, "size=64k"):
            pytest.skip("cannot mount a tmpfs here (needs root)")
        write_image(ro / "old.tif", np.ones((8, 8), np.float32))
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        yield ro
        subprocess.run(["umount", str(ro)], check=False)
    else:
        write_image(ro / "old.tif", np.ones((8, 8), np.float32))
        ro.chmod(0o555)
        yield ro
        ro.chmod(0o755)


@pytest.fixture
def unreadable(ws):
    """``img.tif``, ``model/weights.pt`` and ``adir`` with mode 000 (skipped as root, who
    reads them anyway)."""
    if ROOT_USER:
        pytest.skip("running as root: mode 000 does not stop reading")
    paths = [ws / "img.tif", ws / "model" / "weights.pt", ws / "adir"]
    for p in paths:
        p.chmod(0o000)
    yield paths
    for p in paths:
        p.chmod(0o755 if p.is_dir() else 0o644)


@pytest.fixture
def read_only_file(ws):
    """``lbl.tif`` with mode 0444 (cellsight must keep it even with --overwrite)."""
    (ws / "lbl.tif").chmod(0o444)
    yield ws / "lbl.tif"
    (ws / "lbl.tif").chmod(0o644)


@pytest.fixture
def ws(workspace, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the workspace, as the current folder.

    The files are hard links to the module's workspace (a copy took 17 ms a case): a case
    that wrote into an input in place would change it for the cases after it too, and
    fails itself on the check that no input changed.
    """
    root = tmp_path / "ws"
    try:
        shutil.copytree(workspace, root, copy_function=os.link)
    except OSError:  # no hard links here (another file system): copy
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(workspace, root)
    monkeypatch.chdir(root)
    return root


def _one_line(text: str) -> str:
    """The only line of ``text`` that is not a progress bar (``name: ...  50%|##  |``)."""
    lines = [line for line in re.split(r"[\r\n]", text) if line.strip() and "%|" not in line]
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    return lines[0]


#: the fast tier (``-m "not slow"``) runs every FAST_SAMPLE-th case (and none marked slow);
#: the full suite (CI) runs them all
FAST_SAMPLE = 4


def _param(index: int, case: dict):
    slow = case.get("slow") or index % FAST_SAMPLE
    marks = [pytest.mark.slow] if slow else []
    return pytest.param(case, id=case["id"], marks=marks)


def test_cases_are_well_formed():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in CASES:
        assert ("run" in case) != ("call" in case), case["id"]
        assert "says" in case and ("code" in case or "raises" in case), case["id"]


@pytest.mark.parametrize("case", [_param(i, c) for i, c in enumerate(CASES)])
def test_hostile_case(case, ws, request, capsys):
    if case.get("setup"):
        request.getfixturevalue(case["setup"])
    before = _hashes(ws)
    if "run" in case:
        try:
            code, usage = main(shlex.split(case["run"])), False
        except SystemExit as exc:  # argparse: its usage lines, then one error line
            code, usage = exc.code, True
        captured = capsys.readouterr()
        assert code == case["code"], captured.err
        if usage:
            line = captured.err.strip().splitlines()[-1]
            assert re.match(r"cellsight( \w+)?: error: ", line), captured.err
        else:
            line = _one_line(captured.err)
            assert line.startswith("cellsight: error: "), line
    else:
        module, name = case["call"].split(":")
        func = getattr(importlib.import_module(module), name)
        args = [_value(ws, a) for a in case.get("args", [])]
        kwargs = {k: _value(ws, v) for k, v in case.get("kwargs", {}).items()}
        with pytest.raises(Exception) as raised:
            func(*args, **kwargs)
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
