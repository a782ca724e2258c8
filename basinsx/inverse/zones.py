"""Zoned parameter fields (piecewise-constant blocks)."""

from __future__ import annotations

import numpy as np

__all__ = ["zone_map", "zoned_field"]


def zone_map(shape, zones=(2, 4)) -> np.ndarray:
    """Integer zone index ``(ny, nx)`` of a grid cut into ``zones = (rows, columns)`` equal blocks.

    ``zone_map((40, 80))`` is the eight-zone layout used for case 1 of Chen et al. (2025):
    two rows of four blocks, numbered row by row from the bottom-left (zone 0) along x.
    """
    ny, nx = shape
    zy, zx = zones
    if not (1 <= zy <= ny and 1 <= zx <= nx):
        raise ValueError(f"zones {zones} do not fit a grid of shape {shape}")
    rows = np.arange(ny) * zy // ny
    cols = np.arange(nx) * zx // nx
    return rows[:, None] * zx + cols[None, :]


def zoned_field(zones: np.ndarray, values) -> np.ndarray:
    """Field with ``values[..., z]`` in every cell of zone ``z``; leading dims of ``values`` are kept."""
    values = np.asarray(values, float)
    nz = int(zones.max()) + 1
    if values.shape[-1] != nz:
        raise ValueError(f"values has {values.shape[-1]} entries on its last axis, the zone map has {nz} zones")
    return values[..., zones]
