"""How big images are cut into blocks and where the blocks run."""

from pydantic import Field, model_validator

from cellsight.config.base import StrictConfig


class BlockConfig(StrictConfig):
    """Blockwise execution: block size, halos, engine (threads, local cluster, cluster)."""

    block_size: int = Field(
        1024, ge=64, le=16384, title="Block size",
        description="Y/X size of the blocks (pixels); memory grows with it, not with the image.",
    )
    block_size_z: int = Field(
        64, ge=4, le=4096, title="Block size in Z",
        description="Z size of the blocks of 3D stacks.",
    )
    context: int = Field(
        0, ge=0, le=1024, title="Network context",
        description="Pixels of context each block reads around itself for the network "
        "(0 = automatic: twice the tile overlap, in the model's scale).",
    )
    label_halo: int = Field(
        0, ge=0, le=4096, title="Label halo",
        description="Pixels around each block used to finish the objects crossing its "
        "edges (0 = automatic: three nucleus diameters, at least 32). Objects larger "
        "than this may be cut at block edges.",
    )
    workers: int = Field(
        0, ge=0, le=4096, title="Worker processes",
        description="0 = run in this process's threads; N = start a local dask cluster "
        "of N worker processes.",
    )
    scheduler: str = Field(
        "", title="Scheduler address",
        description="Address of a running dask scheduler (e.g. tcp://host:8786, one "
        "started by dask-jobqueue); overrides the worker count.",
    )
    retries: int = Field(
        2, ge=0, le=20, title="Retries", description="Times a failing block is retried."
    )
    overwrite: bool = Field(
        False, title="Overwrite",
        description="Replace an existing output instead of stopping with an error.",
    )

    @model_validator(mode="after")
    def _engine(self):
        if self.scheduler and self.workers:
            raise ValueError("give either a scheduler address or a worker count, not both.")
        return self
