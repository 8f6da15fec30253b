"""Built-in models shipped inside the package (no download).

Each built-in model is an ordinary model folder (``config.yaml``, ``weights.pt``,
``meta.json``) next to this file; its model card is in ``docs/models/``.
"""

import os
from pathlib import Path

#: name -> one-line description of the built-in models that segment a whole image
SEGMENTATION_MODELS = {
    "nuclei": "2D fluorescence nuclei: separated instances (trained for ~30 px diameter).",
}
#: name -> one-line description of every built-in model
BUILTIN_MODELS = {
    **SEGMENTATION_MODELS,
    "clicks": "Click to segment: a click on a nucleus or cell gives its mask (2D; followed "
              "through 3D stacks and time).",
}


def builtin_model_dir(name: str) -> Path:
    """Folder of the built-in model ``name``.

    Raises
    ------
    ValueError
        If there is no built-in model of that name, or its files are missing.
    """
    if name not in BUILTIN_MODELS:
        raise ValueError(
            f"No built-in model {name!r}; available: {', '.join(sorted(BUILTIN_MODELS))}."
        )
    folder = Path(__file__).resolve().parent / name
    if not (folder / "weights.pt").is_file():
        raise ValueError(f"The built-in model {name!r} is missing from this installation.")
    return folder


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """A built-in model's folder for its name, otherwise the given folder path."""
    text = str(name_or_path)
    if text in BUILTIN_MODELS and not Path(text).is_dir():
        return builtin_model_dir(text)
    return Path(name_or_path)


def model_card(name: str) -> str | None:
    """The model card (markdown) of built-in model ``name``, or None if absent.

    Cards live in ``docs/models/`` of the source tree; the wheel carries them as
    ``cellsight/models/cards/``.
    """
    if name not in BUILTIN_MODELS:
        return None
    here = Path(__file__).resolve().parent
    for folder in (here / "cards", here.parents[2] / "docs" / "models"):
        if (folder / f"{name}.md").is_file():
            return (folder / f"{name}.md").read_text()
    return None
