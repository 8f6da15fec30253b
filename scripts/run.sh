#!/usr/bin/env bash
# Set up (idempotent) and run the main job: the whole cellsight pipeline, headless, on the
# bundled sample data. Results, overview.png and summary.json go to $CELLSIGHT_OUT
# (default: ./cellsight-output). napari then opens with the results when a display is
# available (set CELLSIGHT_NO_VIEWER=1 to skip that).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_venv qt
OUT="${CELLSIGHT_OUT:-$ROOT/cellsight-output}"
"$VENV/bin/cellsight" pipeline --out "$OUT"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -z "${CELLSIGHT_NO_VIEWER:-}" ] && [ -z "${CI:-}" ]; then
    apt_install_missing "${GUI_DEBS[@]}" || true
    exec "$VENV/bin/python" -m cellsight.gui.results "$OUT"
else
    echo "No display: skipping the napari viewer. Open the results later with:"
    echo "  $VENV/bin/python -m cellsight.gui.results $OUT"
fi
