"""Model folder I/O for N2V: ``config.yaml`` + ``weights.pt`` + ``meta.json``.

Every file is written atomically; weights are a plain state dict read back with
``weights_only=True`` (no pickled objects).
"""

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import torch
import yaml

from cellsight.io.atomic import atomic_path
from cellsight.io.tiff import save_json

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "weights.pt"
META_FILE = "meta.json"


def write_model_folder(folder: str | os.PathLike, config: dict, state: dict, meta: dict) -> Path:
    """Write a model folder; existing files of the same names are replaced atomically."""
    from cellsight import __version__

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        torch.save(state, tmp)
    with atomic_path(folder / CONFIG_FILE) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    meta = {
        **meta,
        "cellsight_version": __version__,
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    save_json(folder / META_FILE, meta)
    return folder


def read_model_folder(folder: str | os.PathLike) -> tuple[dict, dict, dict]:
    """Read ``(config, state_dict, meta)`` from a model folder.

    Raises
    ------
    ValueError
        If the folder or one of its files is missing or unreadable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"Model folder {folder} does not exist.")
    missing = [n for n in (CONFIG_FILE, WEIGHTS_FILE) if not (folder / n).is_file()]
    if missing:
        raise ValueError(f"{folder} is not a model folder: {', '.join(missing)} missing.")
    try:
        config = yaml.safe_load((folder / CONFIG_FILE).read_text())
        state = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    except (yaml.YAMLError, RuntimeError, OSError, EOFError) as exc:
        raise ValueError(f"Cannot read the model in {folder}: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(state, dict):
        raise ValueError(f"{folder}: config.yaml or weights.pt has an unexpected layout.")
    meta_path = folder / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return config, state, meta
