#!/usr/bin/env bash
# Set up everything the test suite needs (idempotent) and run it, GUI tests included,
# under a virtual display. Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/io`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
apt_install_missing "${GUI_DEBS[@]}"
setup_venv test
cd "$ROOT"
export PYTHONUNBUFFERED=1 QT_QPA_PLATFORM=xcb
# keep compiled modules (src/, tests/, pytest's rewritten asserts) between runs: where the
# environment forbids it, every run compiled them again (collection 10.4 s -> 6.5 s)
unset PYTHONDONTWRITEBYTECODE
exec xvfb-run -a -s "-screen 0 1280x1024x24" "$VENV/bin/python" -m pytest "$@"
