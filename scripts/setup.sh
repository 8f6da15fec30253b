#!/usr/bin/env bash
# Shared setup for scripts/run.sh and scripts/test.sh (sourced, not run).
# Creates .venv, installs torch==2.13.0 (the local CPU build) BEFORE cellsight so pip never
# falls onto a bare `torch` requirement (several GB of CUDA packages), then cellsight itself.
# Idempotent: a stamp keyed on pyproject.toml and the extras skips work already done.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
TORCH_PIN="torch==2.13.0"

_as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "setup: need root to run: $*" >&2; return 1; fi
}

apt_install_missing() {
    # apt_install_missing PKG... : install the Debian packages that are not installed yet
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "setup: installing Debian packages: ${missing[*]}"
    _as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive _as_root apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# Xvfb, Mesa (software OpenGL) and the xcb libraries Qt 6 needs for a (virtual) display.
GUI_DEBS=(xvfb xauth libgl1 libgl1-mesa-dri libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3
    libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
    libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1
    libxcb-xfixes0 libxrender1 libxi6 libsm6 libice6)

find_python() {
    for py in python3.11 python3.12 python3.10 python3; do
        if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
            echo "$py"; return 0
        fi
    done
    echo "setup: Python >= 3.10 not found" >&2; return 1
}

setup_venv() {
    # setup_venv EXTRAS : make .venv with cellsight[EXTRAS] installed (editable)
    local extras="$1" py stamp
    if [ ! -x "$VENV/bin/python" ]; then
        py="$(find_python)"
        if ! "$py" -m venv "$VENV" 2>/dev/null; then
            apt_install_missing python3-venv
            rm -rf "$VENV"; "$py" -m venv "$VENV"
        fi
    fi
    stamp="$VENV/.cellsight-$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-$extras"
    if [ -f "$stamp" ] && "$VENV/bin/python" -c "import cellsight" 2>/dev/null; then
        return 0
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip
    echo "$TORCH_PIN" > "$VENV/constraints.txt"
    "$VENV/bin/python" -m pip install -q "$TORCH_PIN"
    PIP_CONSTRAINT="$VENV/constraints.txt" \
        "$VENV/bin/python" -m pip install -q -e "$ROOT[$extras]"
    rm -f "$VENV"/.cellsight-*
    touch "$stamp"
}
