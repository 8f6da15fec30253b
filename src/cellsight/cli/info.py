"""``cellsight info``: versions and the device ``auto`` would pick."""

import importlib.metadata
import json
import platform

PACKAGES = ("numpy", "scipy", "scikit-image", "tifffile", "imagecodecs", "pydantic", "napari")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def collect() -> dict:
    """Return the information printed by ``cellsight info``."""
    from cellsight import __version__
    from cellsight.core.nn.device import device_summary

    info = {"cellsight": __version__, "python": platform.python_version()}
    info.update({name: _version(name) for name in PACKAGES})
    info.update(device_summary())
    return info


def run(args) -> int:
    """Print the information, as text or JSON."""
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def register(sub) -> None:
    """Add the ``info`` subcommand."""
    p = sub.add_parser("info", help="Show versions and the compute device 'auto' picks.")
    p.add_argument("--json", action="store_true", help="Print JSON.")
    p.set_defaults(handler=run)
