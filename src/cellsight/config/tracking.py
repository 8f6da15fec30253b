"""Parameters of tracking-by-detection (linking segmented cells over time)."""

from typing import Literal

from pydantic import Field

from cellsight.config.base import StrictConfig

SolverName = Literal["ilp", "greedy"]


class TrackingConfig(StrictConfig):
    """How detections are linked into tracks with divisions.

    Every distance is in pixels of the finest axis (the ``scale`` given to the
    tracker converts anisotropic voxels). Fields left at 0 are derived from the data:
    the maximum linking distance from the typical frame-to-frame displacement and the
    cell size, the costs from that distance. The first result needs no tuning.
    """

    version: int = Field(1, title="Version", description="Config format version.", ge=1, le=1)
    solver: SolverName = Field(
        "ilp",
        title="Solver",
        description="ilp = global optimum with motile (ILP, SCIP); greedy = fast, for large data.",
    )
    max_distance: float = Field(
        0.0,
        title="Max distance",
        description="Largest centroid displacement between linked cells in one frame "
        "(pixels); 0 = derived from the data.",
        ge=0.0,
        le=1e5,
    )
    max_gap: int = Field(
        2,
        title="Max skipped frames",
        description="Gap closing: a cell may be missing in up to this many frames "
        "and still keep its track (0 = no gap closing).",
        ge=0,
        le=10,
    )
    max_neighbors: int = Field(
        6,
        title="Candidates per cell",
        description="At most this many nearest cells in a later frame are considered "
        "as successors of each cell.",
        ge=1,
        le=50,
    )
    divisions: bool = Field(
        True,
        title="Divisions",
        description="Allow a cell to divide into two daughters.",
    )
    appear_cost: float = Field(
        0.0,
        title="Appear / disappear cost",
        description="Cost of starting or ending a track inside the movie; 0 = derived "
        "(higher = longer tracks, fewer fragments).",
        ge=0.0,
        le=1e4,
    )
    division_cost: float = Field(
        0.0,
        title="Division cost",
        description="Extra cost of one division; 0 = derived (higher = fewer divisions).",
        ge=0.0,
        le=1e4,
    )
    gap_cost: float = Field(
        0.5,
        title="Cost per skipped frame",
        description="Extra cost of a link for each frame it skips.",
        ge=0.0,
        le=1e3,
    )
    overlap_weight: float = Field(
        1.0,
        title="Overlap weight",
        description="Weight of (1 - IoU) of the two masks in the link cost.",
        ge=0.0,
        le=100.0,
    )
    size_weight: float = Field(
        0.5,
        title="Size weight",
        description="Weight of the size change |log(area ratio)| in the link cost.",
        ge=0.0,
        le=100.0,
    )
    time_limit: float = Field(
        120.0,
        title="Solver time limit",
        description="Seconds the ILP solver may use before it returns its best solution.",
        ge=1.0,
        le=86400.0,
    )
