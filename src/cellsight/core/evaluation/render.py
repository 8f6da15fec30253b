"""Overview pictures of results: image panels with label outlines (RGB uint8 arrays), track
paths and lineage trees, and labelled multi-panel figures (matplotlib, imported inside the
functions)."""

import numpy as np


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Contrast-stretch (1-99.8 percentiles) to uint8 for display."""
    from cellsight.core.segmentation.classical import percentile_normalize

    return (np.clip(percentile_normalize(image), 0, 1) * 255).astype(np.uint8)


def panel(image: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """RGB panel of a 2D image, with label outlines drawn in colour if given."""
    from skimage.segmentation import find_boundaries

    gray = to_uint8(image)
    rgb = np.stack([gray] * 3, axis=-1)
    if labels is not None:
        edges = find_boundaries(labels, mode="inner")
        ids = labels[edges].astype(np.int64)
        colours = np.stack([(ids * 97) % 200 + 55, (ids * 57) % 200 + 55, (ids * 31) % 200 + 55])
        rgb[edges] = colours.T.astype(np.uint8)
    return rgb


def montage(panels: list[np.ndarray], height: int = 256, gap: int = 4) -> np.ndarray:
    """Place RGB panels side by side, each resized to ``height`` pixels."""
    from skimage.transform import resize

    resized = []
    for p in panels:
        width = max(1, round(p.shape[1] * height / p.shape[0]))
        r = resize(p, (height, width), order=0, preserve_range=True, anti_aliasing=False)
        resized.append(r.astype(np.uint8))
        resized.append(np.full((height, gap, 3), 255, np.uint8))
    return np.concatenate(resized[:-1], axis=1)


def _rgb(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 and image.shape[-1] == 3 else panel(image)


def draw_tracks(ax, image: np.ndarray, tracks: np.ndarray, until: int, title: str = "") -> None:
    """Draw ``image`` with the path of every track up to frame ``until`` on a matplotlib axes.

    ``tracks`` holds napari Tracks rows ``(track_id, t, y, x)``; each track is a line in its
    own colour ending in a dot where it is at ``until`` (a track that ended earlier ends
    without a dot).
    """
    from matplotlib import colormaps

    ax.imshow(_rgb(image))
    colours = colormaps["tab20"]
    for tid in np.unique(tracks[:, 0]):
        rows = tracks[(tracks[:, 0] == tid) & (tracks[:, 1] <= until)]
        if len(rows) == 0:
            continue
        colour = colours(int(tid) % 20)
        ax.plot(rows[:, 3], rows[:, 2], "-", color=colour, lw=1.2)
        if rows[-1, 1] == until:
            ax.plot(rows[-1, 3], rows[-1, 2], "o", color=colour, ms=2.5)
    _finish(ax, title)


def draw_lineage(ax, layout, title: str = "") -> None:
    """Draw lineage trees (a :class:`~cellsight.core.tracking.lineage.LineageLayout`).

    Time runs left to right; each track is a horizontal line in its lane (colours as in
    :func:`draw_tracks`), each division a vertical connector from the mother's end to the
    daughter's lane, marked by a black dot.
    """
    from matplotlib import colormaps

    colours = colormaps["tab20"]
    for tid, (first, last, lane) in layout.spans.items():
        ax.plot([first, last], [lane, lane], "-" if last > first else "s",  # 1 frame: a dot
                color=colours(int(tid) % 20), lw=2, ms=3, solid_capstyle="butt")
    for frame, mother, daughter, start in layout.divisions:
        ax.plot([frame, frame, start], [mother, daughter, daughter], "-", color="0.35", lw=0.8)
        ax.plot([frame], [mother], "o", color="black", ms=3)
    from matplotlib.ticker import MaxNLocator

    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("frame")
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=9, loc="left")


def _finish(ax, title: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9, loc="left")


def labelled_overview(panels: list[tuple], path, title: str = "", columns: int = 3) -> None:
    """Write a PNG of labelled panels (atomically).

    Parameters
    ----------
    panels : list of tuple
        ``(title, content)`` per panel: ``content`` is an image (2D, drawn contrast-stretched,
        or RGB) or a callable ``content(ax, title)`` that draws on the matplotlib axes.
        The title says what the panel shows and its key figure (it may hold a line break).
    path : str or Path
        The PNG to write.
    title : str
        A headline above the panels.
    columns : int
        Panels per row.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend, no window

    from cellsight.io.atomic import atomic_path

    rows = -(-len(panels) // columns)
    fig = Figure(figsize=(4.2 * columns, 4.5 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax, (text, content) in zip(axes.ravel(), panels, strict=False):
        if callable(content):
            content(ax, text)
        else:
            ax.imshow(_rgb(np.asarray(content)))
            _finish(ax, text)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=12, x=0.01, ha="left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def lineage_figure(layout, path, title: str = "") -> None:
    """Write the lineage trees of ``layout`` alone as a PNG (atomically), one lane per track."""
    from matplotlib.figure import Figure

    from cellsight.io.atomic import atomic_path

    lanes = max(len(layout.spans), 1)
    fig = Figure(figsize=(8, min(2 + 0.18 * lanes, 30)))
    draw_lineage(fig.subplots(), layout, title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
