"""Undoable track edits on a TrackingResult (no Qt): the model behind the editing GUI.

Every edit changes the links, recomputes track ids (keeping unchanged tracks' ids),
rewrites only the pixels of detections whose id changed, and notifies listeners, so
the labels, the napari Tracks layer and the lineage tree stay in sync. Each edit is
one step of undo / redo.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cellsight.core.tracking.tracks import TrackingResult, assign_tracks, napari_tracks, relabel


@dataclass(frozen=True)
class _State:
    parent: np.ndarray
    node_track: np.ndarray


@dataclass(frozen=True)
class EditEvent:
    """What an edit (or undo / redo) changed.

    Attributes
    ----------
    action : str
        Description, e.g. ``"break link"`` or ``"undo link"``.
    nodes : ndarray of int
        Detections whose track id changed.
    frames : tuple of int
        Frames whose labels were rewritten.
    """

    action: str
    nodes: np.ndarray
    frames: tuple[int, ...]


class TrackEditor:
    """Edit a tracking result: break / link, mark / unmark a division, delete a track.

    Parameters
    ----------
    result : TrackingResult
        Edited in place (its ``labels`` array too, which a Labels layer may share).
    labels : ndarray
        The input labels the detections were measured on (read only).
    max_undo : int
        Number of edits kept for undo.

    Examples
    --------
    One cell over three frames; cut its link into the last frame, then undo:

    >>> from cellsight.config.tracking import TrackingConfig
    >>> from cellsight.core.tracking import track
    >>> lab = np.zeros((3, 32, 32), np.uint16)
    >>> for t in range(3):
    ...     lab[t, 10:16, 10 + t:16 + t] = 1
    >>> result = track(lab, config=TrackingConfig(solver="greedy"))
    >>> editor = TrackEditor(result, lab)
    >>> event = editor.break_link(editor.node_at(2, 1))
    >>> event.action, result.n_tracks
    ('break link', 2)
    >>> _ = editor.undo()
    >>> result.n_tracks
    1
    """

    def __init__(self, result: TrackingResult, labels: np.ndarray, max_undo: int = 100):
        if tuple(np.shape(labels)) != result.detections.shape:
            raise ValueError("labels do not match the tracking result's shape.")
        self.result = result
        self.input_labels = labels
        self.max_undo = max_undo
        self._undo: list[tuple[str, _State]] = []
        self._redo: list[tuple[str, _State]] = []
        self.listeners: list[Callable[[EditEvent], None]] = []

    # -- queries -------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        """Whether there is an edit to undo."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone edit to redo."""
        return bool(self._redo)

    def node_at(self, t: int, track_id: int) -> int | None:
        """Detection of track ``track_id`` in frame ``t`` (None if the track is absent)."""
        det, nt = self.result.detections, self.result.node_track
        rows = det.frame_slices()[int(t)]
        hits = np.flatnonzero(nt[rows] == track_id)
        return int(rows.start + hits[0]) if hits.size else None

    def track_nodes(self, track_id: int) -> np.ndarray:
        """Detections of one track, in time order."""
        nodes = np.flatnonzero(self.result.node_track == track_id)
        return nodes[np.argsort(self.result.detections.t[nodes])]

    def children(self, node: int) -> list[int]:
        """Successors of a detection."""
        return [int(c) for c in np.flatnonzero(self.result.parent == node)]

    def napari_tracks(self):
        """``(data, graph, features)`` for a napari Tracks layer."""
        r = self.result
        return napari_tracks(r.detections, r.parent, r.node_track)

    # -- edits ---------------------------------------------------------------
    def break_link(self, node: int) -> EditEvent:
        """Cut the link into ``node`` (it then starts a new track)."""
        self._check_alive(node)
        if self.result.parent[node] < 0:
            raise ValueError("This cell has no incoming link to break.")
        parent = self.result.parent.copy()
        parent[node] = -1
        return self._apply("break link", parent)

    def link(self, source: int, target: int) -> EditEvent:
        """Make ``target`` the one successor of ``source``, replacing their other links."""
        self._check_pair(source, target)
        parent = self.result.parent.copy()
        parent[parent == source] = -1
        parent[target] = source
        return self._apply("link", parent)

    def mark_division(self, mother: int, daughter: int) -> EditEvent:
        """Add ``daughter`` as a second child of ``mother``."""
        self._check_pair(mother, daughter)
        kids = self.children(mother)
        if len(kids) >= 2:
            raise ValueError("This cell already divides into two daughters.")
        if not kids:
            raise ValueError("Link the mother to its first daughter before marking a division.")
        parent = self.result.parent.copy()
        parent[daughter] = mother
        return self._apply("mark division", parent)

    def unmark_division(self, mother: int, keep: int | None = None) -> EditEvent:
        """Undo a division: keep the link to ``keep`` (default: the nearer daughter)."""
        self._check_alive(mother)
        kids = self.children(mother)
        if len(kids) != 2:
            raise ValueError("This cell does not divide.")
        if keep is None:
            c = self.result.detections.centroid
            keep = min(kids, key=lambda k: float(np.linalg.norm(c[k] - c[mother])))
        if keep not in kids:
            raise ValueError("The daughter to keep is not a child of this cell.")
        parent = self.result.parent.copy()
        parent[[k for k in kids if k != keep]] = -1
        return self._apply("unmark division", parent)

    def delete_track(self, track_id: int) -> EditEvent:
        """Remove a whole track (its masks are cleared; its daughters become roots)."""
        nodes = self.track_nodes(track_id)
        if nodes.size == 0:
            raise ValueError(f"There is no track {track_id}.")
        parent = self.result.parent.copy()
        parent[nodes] = -1
        parent[np.isin(parent, nodes)] = -1
        alive = self.result.node_track > 0
        alive[nodes] = False
        return self._apply("delete track", parent, alive)

    def undo(self) -> EditEvent:
        """Revert the last edit."""
        if not self._undo:
            raise ValueError("Nothing to undo.")
        action, state = self._undo.pop()
        self._redo.append((action, self._snapshot()))
        return self._restore(f"undo {action}", state)

    def redo(self) -> EditEvent:
        """Apply the last undone edit again."""
        if not self._redo:
            raise ValueError("Nothing to redo.")
        action, state = self._redo.pop()
        self._undo.append((action, self._snapshot()))
        return self._restore(f"redo {action}", state)

    # -- internals -----------------------------------------------------------
    def _check_alive(self, node: int) -> None:
        if not 0 <= node < len(self.result.node_track) or self.result.node_track[node] <= 0:
            raise ValueError(f"Cell {node} does not exist (or was deleted).")

    def _check_pair(self, source: int, target: int) -> None:
        self._check_alive(source)
        self._check_alive(target)
        t = self.result.detections.t
        if t[target] <= t[source]:
            raise ValueError(
                f"A link goes forward in time: frame {t[source]} -> {t[target]} is not."
            )

    def _snapshot(self) -> _State:
        return _State(self.result.parent.copy(), self.result.node_track.copy())

    def _apply(self, action: str, parent: np.ndarray, alive=None) -> EditEvent:
        before = self._snapshot()
        alive = self.result.node_track > 0 if alive is None else alive
        node_track = assign_tracks(self.result.detections, parent, alive, before.node_track)
        self._undo.append((action, before))
        del self._undo[: -self.max_undo]
        self._redo.clear()
        return self._restore(action, _State(parent, node_track))

    def _restore(self, action: str, state: _State) -> EditEvent:
        old = self.result.node_track
        changed = np.flatnonzero(old != state.node_track)
        self.result.parent = state.parent.copy()
        self.result.node_track = state.node_track.copy()
        relabel(self.input_labels, self.result.detections, self.result.node_track,
                out=self.result.labels, nodes=changed)
        frames = tuple(sorted({int(f) for f in self.result.detections.t[changed]}))
        event = EditEvent(action, changed, frames)
        for listener in list(self.listeners):
            listener(event)
        return event
