"""Open a bioimage.io model package and load its network, safely.

* Files are read from the zip or the folder and their sha256 is checked against the
  description (:meth:`Package.read_bytes`).
* ``pytorch_state_dict`` weights load with ``torch.load(weights_only=True)``; the
  architecture file is Python code and runs only with ``trust=True``
  (:class:`UntrustedCode` otherwise, naming the file and its sha256).
* ``torchscript`` weights load with ``torch.jit.load`` (TorchScript, no Python code);
  ``onnx`` weights run through onnxruntime when it is installed.
"""

import hashlib
import importlib.util
import io
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellsight.io.bmz import CONFIG_KEY

DESCRIPTION_NAMES = ("rdf.yaml", "bioimageio.yaml")
#: weights formats cellsight runs, in the order it prefers them (code-free ones first)
FORMATS = ("torchscript", "pytorch_state_dict", "onnx")


class UntrustedCode(ValueError):
    """A package's architecture is Python code and the user has not trusted it."""

    def __init__(self, name: str, sha256: str):
        self.file, self.sha256 = name, sha256
        super().__init__(f"The package's architecture file {name} (sha256 {sha256}) is Python "
                         "code that would run on this computer; pass --trust (trust=True) if "
                         "you trust its source.")


def is_package(path: str | os.PathLike) -> bool:
    """True for a ``.zip`` file or a folder holding ``rdf.yaml`` / ``bioimageio.yaml``."""
    path = Path(path)
    if path.is_file():
        return zipfile.is_zipfile(path)
    return path.is_dir() and _description_file(path) is not None


def _description_file(folder: Path) -> Path | None:
    for name in DESCRIPTION_NAMES:
        if (folder / name).is_file():
            return folder / name
    found = sorted(folder.glob("*.bioimageio.yaml"))
    return found[0] if found else None


@dataclass
class Package:
    """An opened model package: its description and access to its files."""

    path: Path
    descr: Any  # bioimageio.spec.model.v0_5.ModelDescr

    @property
    def cellsight(self) -> dict:
        """``config.cellsight`` of packages cellsight wrote (empty otherwise)."""
        config = self.descr.config.model_dump() if self.descr.config else {}
        return dict(config.get(CONFIG_KEY) or {})

    def _raw(self, name: str) -> bytes:
        if self.path.is_dir():
            target = self.path / name
            if not target.is_file():
                raise ValueError(f"The package {self.path} lacks its file {name}.")
            return target.read_bytes()
        with zipfile.ZipFile(self.path) as z:
            try:
                return z.read(name)
            except KeyError:
                raise ValueError(f"The package {self.path} lacks its file {name}.") from None

    def read_bytes(self, file_descr) -> bytes:
        """Bytes of a file of the package, checked against the described sha256.

        Raises
        ------
        ValueError
            If the file is missing or its sha256 differs from the description.
        """
        name = file_name(file_descr)
        data = self._raw(name)
        want = getattr(file_descr, "sha256", None)
        if want is not None:
            got = hashlib.sha256(data).hexdigest()
            if got != str(want):
                raise ValueError(f"{name} in {self.path} has sha256 {got}, but the package "
                                 f"description says {want}: the file was changed or damaged.")
        return data

    def attachment(self, name: str) -> bytes | None:
        """An attached file by name (checked), or None if the package has none of that name."""
        for descr in self.descr.attachments:
            if file_name(descr) == name:
                return self.read_bytes(descr)
        return None


def file_name(file_descr) -> str:
    """The file name inside the package of a file description (or a bare source)."""
    source = getattr(file_descr, "source", file_descr)
    text = str(getattr(source, "path", source))
    return text.replace("\\", "/").rsplit("/", 1)[-1]


def open_package(path: str | os.PathLike) -> Package:
    """Read the description of a package (zip, or folder with ``rdf.yaml``).

    Older formats (0.4) are converted to 0.5.

    Raises
    ------
    ValueError
        If the path is not a package, not a model, or its description is invalid.
    """
    from bioimageio.spec import InvalidDescr, load_description
    from bioimageio.spec.model.v0_5 import ModelDescr

    path = Path(path)
    if not path.exists():
        raise ValueError(f"Model package {path} does not exist.")
    if not is_package(path):
        raise ValueError(f"{path} is not a bioimage.io package (a .zip, or a folder with "
                         "rdf.yaml / bioimageio.yaml).")
    source = path if path.is_file() else _description_file(path)
    try:
        descr = load_description(source, format_version="latest", perform_io_checks=False)
    except ValueError:
        raise
    except Exception as exc:  # unparsable YAML, a damaged zip: one line, not a traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: its bioimage.io description cannot be read "
                         f"({type(exc).__name__}: {first[:200]}).") from exc
    if isinstance(descr, InvalidDescr):
        errors = descr.validation_summary.details[-1].errors if descr.validation_summary else []
        first = f": {errors[0].loc} {errors[0].msg}" if errors else ""
        raise ValueError(f"{path} holds an invalid bioimage.io description{first}.")
    if not isinstance(descr, ModelDescr):
        raise ValueError(f"{path} describes a {descr.type}, not a model.")
    return Package(path=path, descr=descr)


def available_formats(package: Package) -> list[str]:
    """Weights formats of the package that cellsight can run, preferred first."""
    weights = package.descr.weights
    found = [f for f in FORMATS if getattr(weights, f, None) is not None]
    if "onnx" in found and importlib.util.find_spec("onnxruntime") is None:
        found.remove("onnx")
    return found


def choose_format(package: Package, trust: bool, wanted: str | None = None) -> str:
    """The weights format to load: ``wanted``, else code-free weights, else trusted code.

    Raises
    ------
    ValueError
        If the package has no weights cellsight can run (or not the ``wanted`` ones).
    """
    found = available_formats(package)
    if wanted is not None:
        if wanted not in found:
            raise ValueError(f"{package.path} has no {wanted} weights cellsight can run "
                             f"(it has: {', '.join(found) or 'none'}).")
        return wanted
    if trust and "pytorch_state_dict" in found and _buildable(package):
        return "pytorch_state_dict"
    for fmt in found:
        return fmt
    have = [k for k, v in package.descr.weights.model_dump().items() if v]
    raise ValueError(f"{package.path} has weights cellsight cannot run ({', '.join(have)}); "
                     "cellsight runs torchscript, pytorch_state_dict and (with onnxruntime) onnx.")


def _buildable(package: Package) -> bool:
    """False for a state dict whose network comes from a Python package not installed here."""
    arch = package.descr.weights.pytorch_state_dict.architecture
    if not hasattr(arch, "import_from"):
        return True
    try:
        # import it, not just look for it: an installed package can still fail to import
        # (e.g. a torchvision build that does not match torch), and then the package's
        # torchscript / onnx weights are the ones to use
        importlib.import_module(str(arch.import_from))
    except Exception:  # noqa: BLE001 - any failure means "cannot build it here"
        return False
    return True


def _architecture(package: Package, arch, trust: bool):
    """The callable that builds the network (importing the package's file when trusted)."""
    if hasattr(arch, "import_from"):
        try:
            module = importlib.import_module(arch.import_from)
        except ImportError:
            raise ValueError(f"The network of {package.path.name} comes from the Python "
                             f"package {arch.import_from!r}, which is not installed, and the "
                             "package has no torchscript or onnx weights to use instead.") from None
        except Exception as exc:  # noqa: BLE001 - installed but broken: name the cause
            raise ValueError(f"The network of {package.path.name} comes from the Python "
                             f"package {arch.import_from!r}, which is installed but fails to "
                             f"import ({type(exc).__name__}: {exc}), and the package has no "
                             "torchscript or onnx weights to use instead.") from None
        return getattr(module, str(arch.callable))
    data = package.read_bytes(arch)
    name = file_name(arch)
    if not trust:
        raise UntrustedCode(name, hashlib.sha256(data).hexdigest())
    folder = Path(tempfile.mkdtemp(prefix="cellsight-arch-"))
    (folder / name).write_bytes(data)
    module_name = f"_cellsight_package_{hashlib.sha256(data).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, folder / name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return getattr(module, str(arch.callable))


def load_state_dict_network(package: Package, trust: bool):
    """The ``pytorch_state_dict`` network (eval mode); the architecture runs if trusted."""
    import torch

    entry = package.descr.weights.pytorch_state_dict
    build = _architecture(package, entry.architecture, trust)
    data = package.read_bytes(entry)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{file_name(entry)} in {package.path} holds more than plain weights "
                         f"(or is damaged); cellsight loads weights only: {exc}") from None
    net = build(**dict(entry.architecture.kwargs))
    net.load_state_dict(state, strict=entry.strict)
    return net.eval()


def load_torchscript_network(package: Package):
    """The ``torchscript`` network (eval mode)."""
    import torch

    data = package.read_bytes(package.descr.weights.torchscript)
    return torch.jit.load(io.BytesIO(data), map_location="cpu").eval()


class OnnxNetwork:
    """An onnxruntime session behind a torch-like call (tensor in, tensor out)."""

    training = False

    def __init__(self, data: bytes):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x):
        import torch

        out = self.session.run(None, {self.input: x.detach().cpu().numpy()})[0]
        return torch.from_numpy(out)


def load_network(package: Package, trust: bool = False, weights: str | None = None):
    """Load the package's network.

    Parameters
    ----------
    package : Package
    trust : bool
        Allow the package's architecture file (Python code) to run.
    weights : str, optional
        Weights format to use (default: :func:`choose_format`).

    Returns
    -------
    network, format : callable, str
        A ``torch.nn.Module`` in eval mode (or :class:`OnnxNetwork`) and the format used.

    Raises
    ------
    UntrustedCode
        If only a state dict with an architecture file is there and ``trust`` is False.
    """
    fmt = choose_format(package, trust, weights)
    if fmt == "torchscript":
        return load_torchscript_network(package), fmt
    if fmt == "onnx":
        return OnnxNetwork(package.read_bytes(package.descr.weights.onnx)), fmt
    return load_state_dict_network(package, trust), fmt
