"""Blind-spot masking for Noise2Void, vectorised over a whole batch in torch.

A few pixels of every patch (one per cell of a regular grid, at a random place in
the cell) are hidden: their value is replaced by a value from their neighbourhood,
the pixel itself excluded, and the network is trained to predict the original value
there. The noise of a pixel is independent of its neighbours', so the only way to
predict it is to predict the signal.

* ``n2v``: the replacement is one random neighbour (Krull et al. 2019).
* ``n2v2``: the replacement is the median of the neighbourhood without the centre
  (Höck et al. 2022), which together with blur pooling and no top-level skip
  connection removes checkerboard artefacts.

Every channel of every patch gets its own positions. Neighbours that would fall off
the patch are mirrored through the centre (offset ``-d`` instead of ``d`` along that
axis), which keeps them inside and never lands on the centre itself.
"""

import math
from collections.abc import Sequence
from functools import cache

import torch

VARIANTS = ("n2v", "n2v2")


def grid_spacing(fraction: float, ndim: int) -> int:
    """Grid cell side so that one pixel per cell is about ``fraction`` of all pixels."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"masked fraction must be in (0, 1]; got {fraction}.")
    return max(1, round(fraction ** (-1.0 / ndim)))


def stratified_coords(
    n_planes: int,
    spatial_shape: Sequence[int],
    fraction: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random blind-spot positions: one per grid cell, independently per plane.

    Parameters
    ----------
    n_planes : int
        Number of independent planes (patches x channels).
    spatial_shape : sequence of int
        Spatial shape of each plane.
    fraction : float
        Approximate share of pixels to pick.
    generator : torch.Generator, optional
        CPU random generator (for reproducible masks).

    Returns
    -------
    planes : LongTensor (M,)
        Plane index of every position.
    coords : LongTensor (M, ndim)
        Spatial coordinates of every position.
    """
    ndim = len(spatial_shape)
    step = grid_spacing(fraction, ndim)
    cells = [math.ceil(s / step) for s in spatial_shape]
    axes = [torch.arange(c) * step for c in cells]
    origins = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, ndim)
    n_cells = origins.shape[0]
    jitter = torch.randint(0, step, (n_planes, n_cells, ndim), generator=generator)
    coords = (origins[None] + jitter).reshape(-1, ndim)
    planes = torch.arange(n_planes).repeat_interleave(n_cells)
    inside = (coords < torch.tensor(list(spatial_shape))).all(dim=1)
    return planes[inside], coords[inside]


@cache
def _offsets(ndim: int, radius: int) -> torch.Tensor:
    """All non-zero offsets of the (2r+1)^ndim neighbourhood, shape (K, ndim)."""
    rng = torch.arange(-radius, radius + 1)
    grid = torch.stack(torch.meshgrid(*([rng] * ndim), indexing="ij"), dim=-1).reshape(-1, ndim)
    return grid[(grid != 0).any(dim=1)]


def _effective_radius(spatial_shape: Sequence[int], radius: int) -> int:
    r = min([radius] + [(s - 1) // 2 for s in spatial_shape])
    if r < 1:
        raise ValueError(f"Patches of shape {tuple(spatial_shape)} are too small for masking.")
    return r


def _neighbours(coords: torch.Tensor, offsets: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """Neighbour coordinates ``coords + offsets``, mirrored through the centre where outside.

    ``coords`` (M, 1, nd) and ``offsets`` (M or 1, K, nd) broadcast to (M, K, nd).
    """
    moved = coords + offsets
    outside = (moved < 0) | (moved >= shape)
    return torch.where(outside, coords - offsets, moved)


def _linear(coords: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    strides = torch.tensor([math.prod(shape[i + 1 :]) for i in range(len(shape))])
    return (coords * strides).sum(dim=-1)


def replacement_values(
    flat: torch.Tensor,
    planes: torch.Tensor,
    coords: torch.Tensor,
    spatial_shape: Sequence[int],
    variant: str = "n2v",
    radius: int = 2,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Values that replace the blind spots.

    Parameters
    ----------
    flat : Tensor (n_planes, n_pixels)
        The patches, one flattened plane per row.
    planes, coords : LongTensor
        Blind-spot positions from :func:`stratified_coords`.
    spatial_shape : sequence of int
    variant : {"n2v", "n2v2"}
        ``n2v``: one random neighbour; ``n2v2``: median of the neighbourhood.
    radius : int
        Neighbourhood radius (clipped so the neighbourhood fits in the patch).
    generator : torch.Generator, optional

    Returns
    -------
    Tensor (M,)
    """
    if variant not in VARIANTS:
        raise ValueError(f"Unknown N2V variant {variant!r}; choose one of {VARIANTS}.")
    ndim = len(spatial_shape)
    offsets = _offsets(ndim, _effective_radius(spatial_shape, radius))
    shape = torch.tensor(list(spatial_shape))
    if variant == "n2v":
        pick = torch.randint(0, offsets.shape[0], (coords.shape[0],), generator=generator)
        chosen = _neighbours(coords, offsets[pick], shape)
        return flat[planes.to(flat.device), _linear(chosen, spatial_shape).to(flat.device)]
    around = _neighbours(coords[:, None, :], offsets[None], shape)  # (M, K, nd)
    idx = _linear(around, spatial_shape).to(flat.device)
    values = flat[planes.to(flat.device)[:, None], idx]
    return values.median(dim=1).values


def blind_spot_batch(
    batch: torch.Tensor,
    fraction: float,
    variant: str = "n2v",
    radius: int = 2,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide a fraction of the pixels of every patch and channel (N2V input).

    Parameters
    ----------
    batch : Tensor (N, C, *spatial)
        Normalised noisy patches. Not modified.
    fraction : float
        Approximate share of pixels hidden per patch and channel.
    variant : {"n2v", "n2v2"}
    radius : int
        Neighbourhood radius for the replacement.
    generator : torch.Generator, optional
        CPU generator for reproducible masks.

    Returns
    -------
    inputs : Tensor, like ``batch``
        The patches with the blind spots replaced.
    mask : BoolTensor, like ``batch``
        True at the blind spots (where the loss is computed).

    Examples
    --------
    >>> x = torch.randn(2, 1, 32, 32)
    >>> inputs, mask = blind_spot_batch(x, 0.02)
    >>> bool((inputs[mask] != x[mask]).any()), bool((inputs[~mask] == x[~mask]).all())
    (True, True)
    """
    if batch.ndim < 4:
        raise ValueError(f"Need a (N, C, *spatial) batch; got shape {tuple(batch.shape)}.")
    spatial = tuple(batch.shape[2:])
    n_planes = batch.shape[0] * batch.shape[1]
    flat = batch.reshape(n_planes, -1)
    planes, coords = stratified_coords(n_planes, spatial, fraction, generator)
    values = replacement_values(flat, planes, coords, spatial, variant, radius, generator)
    lin = _linear(coords, spatial).to(batch.device)
    planes = planes.to(batch.device)
    inputs = flat.clone()
    inputs[planes, lin] = values.to(inputs.dtype)
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[planes, lin] = True
    return inputs.reshape(batch.shape), mask.reshape(batch.shape)


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the blind spots only."""
    diff = (prediction.float() - target.float())[mask]
    if diff.numel() == 0:
        raise ValueError("The mask selects no pixel; nothing to compute a loss on.")
    return diff.pow(2).mean()
