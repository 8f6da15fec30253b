"""Model folders: ``config.yaml`` + ``weights.pt`` + ``meta.json`` (+ ``last.pt``).

* ``config.yaml``: the model's pydantic config dumped to YAML, with a ``task`` field
  (``semantic``, ``instance``, ``n2v``...) and its normalisation.
* ``weights.pt``: the network's ``state_dict`` only (tensors), loaded with
  ``torch.load(weights_only=True)``, so no pickled code ever runs.
* ``meta.json``: training-data summary, metrics, creation time, versions.
* ``last.pt`` (optional): last training state (weights, optimiser, step) to resume.

torch is imported inside the functions: ``cellsight.io`` stays light to import.
"""

import datetime
import errno
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cellsight.io.atomic import (
    atomic_folder,
    atomic_path,
    is_temporary,
    remove_stale_parts,
)
from cellsight.io.tiff import save_json

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "weights.pt"
META_FILE = "meta.json"
LAST_FILE = "last.pt"
#: what :func:`save_model_folder` writes; other entries of a folder it replaces are kept
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE, META_FILE)


class ModelFolderError(ValueError):
    """A model folder is missing, incomplete, unreadable or of the wrong kind."""


@dataclass
class ModelFolder:
    """The contents of a model folder.

    Attributes
    ----------
    path : pathlib.Path
    config : dict
        Parsed ``config.yaml`` (validate it with the task's pydantic model).
    state_dict : dict
        Network weights from ``weights.pt``.
    meta : dict
        Parsed ``meta.json`` (empty if absent).
    """

    path: Path
    config: dict[str, Any]
    state_dict: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        """The ``task`` field of the config (``"semantic"``, ...)."""
        return str(self.config.get("task", ""))


def _torch_save(obj: Any, path: Path) -> None:
    import torch

    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:  # torch's writer reports a full disk without errno
            if _nearly_full(tmp.parent):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
            raise


def _nearly_full(folder: Path, margin: int = 1 << 20) -> bool:
    """True if the file system of ``folder`` has less than ``margin`` bytes left."""
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def _torch_load(path: Path) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (MemoryError, PermissionError):  # an unreadable file is not a damaged one
        raise
    except Exception as exc:  # corrupt file, or one holding pickled objects
        # torch's message advises weights_only=False (running the file's code): never
        # pass that on; say what the file is not
        unsafe = "Unsupported global" in str(exc)
        what = ("holds Python objects, not plain weights; cellsight never runs code from a "
                "model file" if unsafe else "is damaged or not a file cellsight wrote")
        raise ModelFolderError(f"{path} is not a cellsight weights file: it {what}.") from None


def _config_text(config: dict[str, Any]) -> str:
    if "task" not in config:
        raise ValueError("A model config needs a 'task' field.")
    return yaml.safe_dump(config, sort_keys=False)


def save_config(folder: str | os.PathLike, config: dict[str, Any]) -> Path:
    """Write ``config.yaml`` (atomic)."""
    text = _config_text(config)
    path = Path(folder) / CONFIG_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def _carried(folder: Path, keep_last: bool) -> list[str]:
    """Entries of an existing folder that a new save keeps (all but the model's own files)."""
    if not folder.is_dir():
        return []
    dropped = set(MODEL_FILES) | (set() if keep_last else {LAST_FILE})
    return [n for n in os.listdir(folder) if n not in dropped and not is_temporary(n)]


def save_model_folder(
    folder: str | os.PathLike,
    config: dict[str, Any],
    state_dict: dict[str, Any],
    meta: dict[str, Any] | None = None,
    *,
    keep_last: bool = False,
) -> Path:
    """Write a complete model folder as a unit.

    The files are written into a hidden temporary sibling, which is renamed into
    place when complete; an existing folder is renamed aside first and deleted after
    (:func:`cellsight.io.atomic.atomic_folder`). A crash or Ctrl-C at any point leaves
    either the old model or the new one, never a mix.

    Parameters
    ----------
    folder : str or PathLike
        Created if needed; an existing model folder is replaced. Entries other than
        ``config.yaml``, ``weights.pt``, ``meta.json`` and ``last.pt`` (e.g. a
        ``checkpoints`` folder) are kept.
    config : dict
        ``model_dump()`` of the task's config; must hold ``task``.
    state_dict : dict
        The network's weights (tensors).
    meta : dict, optional
        Extra metadata; ``created_at`` and versions are added.
    keep_last : bool
        Keep the folder's ``last.pt`` (training saves the best model beside its own
        last checkpoint); by default it is dropped, since it belongs to the model
        being replaced.

    Returns
    -------
    pathlib.Path
        The folder.
    """
    import torch

    from cellsight import __version__

    folder = Path(folder)
    text = _config_text(config)
    info = {
        "task": config["task"],
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cellsight_version": __version__,
        "torch_version": torch.__version__,
    }
    info.update(meta or {})
    with atomic_folder(folder, carry=_carried(folder, keep_last)) as tmp:
        (tmp / CONFIG_FILE).write_text(text)
        _torch_save({k: v.detach().cpu() for k, v in state_dict.items()}, tmp / WEIGHTS_FILE)
        save_json(tmp / META_FILE, info)
    return folder


def save_checkpoint(folder: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``last.pt`` (weights, optimiser state, step) for resuming.

    Written under a temporary name, flushed to disk and renamed: a kill or a crash
    never leaves a partial ``last.pt``; temporary files a killed run left are removed.
    """
    path = Path(folder) / LAST_FILE
    remove_stale_parts(path)
    _torch_save(state, path)
    return path


def load_checkpoint(folder: str | os.PathLike) -> dict[str, Any] | None:
    """Read ``last.pt`` if the folder has one (``weights_only=True``), else None."""
    path = Path(folder) / LAST_FILE
    return _torch_load(path) if path.is_file() else None


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """Parse ``config.yaml`` of a model folder.

    Raises
    ------
    ModelFolderError
        If the folder or its config is missing or not a YAML mapping with a ``task``.
    """
    folder = Path(folder)
    if folder.is_file():
        import zipfile

        package = (" nor a bioimage.io package (it is not a zip archive)"
                   if folder.suffix.lower() == ".zip" and not zipfile.is_zipfile(folder) else "")
        raise ModelFolderError(f"{folder} is a file, not a model folder (config.yaml, "
                               f"weights.pt, meta.json){package}.")
    if not folder.is_dir():
        raise ModelFolderError(f"Model folder {folder} does not exist.")
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ModelFolderError(f"{folder} is not a model folder: it has no {CONFIG_FILE}.")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ModelFolderError(f"Cannot parse {path}: {exc}") from exc
    if not isinstance(config, dict) or "task" not in config:
        raise ModelFolderError(f"{path} does not describe a model (no 'task' field).")
    return config


def load_model_folder(folder: str | os.PathLike, task: str | None = None) -> ModelFolder:
    """Read a model folder.

    Parameters
    ----------
    folder : str or PathLike
    task : str, optional
        If given, the folder's ``task`` must match (e.g. ``"semantic"``).

    Returns
    -------
    ModelFolder

    Raises
    ------
    ModelFolderError
        If files are missing or unreadable, or the task differs.
    """
    folder = Path(folder)
    config = read_config(folder)
    if task is not None and config["task"] != task:
        raise ModelFolderError(
            f"{folder} holds a {config['task']!r} model; a {task!r} model is needed here."
        )
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelFolderError(f"{folder} has no {WEIGHTS_FILE}.")
    state = _torch_load(weights)
    if not isinstance(state, dict):
        raise ModelFolderError(f"{weights} does not hold a state_dict.")
    meta_path = folder / META_FILE
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFolderError(f"{meta_path} is damaged: not JSON ({exc}).") from exc
    return ModelFolder(path=folder, config=config, state_dict=state, meta=meta)
