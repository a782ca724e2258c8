"""Alignment by coordinate labels at the boundary of the inverse tools.

Parameters and observations meet the surrogate by their labels (``param``, ``obs``, wells,
``y``/``x``), as :func:`xarray.align` with ``join="exact"`` would match them; a dim without
labels on either side is taken by position. Errors name the labels that do not match.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr


def _label(v) -> str:
    if isinstance(v, pd.Timestamp):
        return v.isoformat()[:10] if v == v.normalize() else v.isoformat()
    return repr(v.item() if isinstance(v, np.generic) else v)


def shown(values, k=5) -> str:
    """The first ``k`` labels of ``values`` for a message, and how many more there are."""
    values = list(values)
    shown = "[" + ", ".join(_label(v) for v in values[:k]) + "]"
    return shown + (f" and {len(values) - k} more" if len(values) > k else "")


def order(have, want, what: str, whose: str) -> np.ndarray:
    """Positions in the labels ``have`` of the labels ``want`` (all of them, each once).

    Raises naming the labels ``what`` misses or has in excess of ``whose`` (e.g. "the
    surrogate's inputs"), or repeats.
    """
    have, want = pd.Index(have), pd.Index(want)
    if have.equals(want):
        return np.arange(len(have))
    missing = [v for v in want if v not in have]
    unknown = [v for v in have if v not in want]
    if missing or unknown:
        parts = [f"{word} {shown(v)}" for word, v in (("missing", missing), ("unknown", unknown)) if v]
        raise ValueError(f"{what} labels do not match {whose}: {', '.join(parts)}")
    if not (have.is_unique and want.is_unique):
        raise ValueError(f"{what} labels repeat and are in another order than {whose}; give them in that order")
    return have.get_indexer(want)


def align(da: xr.DataArray, template: xr.DataArray, name: str) -> xr.DataArray:
    """``da`` with the dims of ``template`` last, in its order, each labeled dim in the order of its labels,
    in the units of ``template`` where both have ``units`` (:class:`basinsx.units.UnitsError` if they do not convert).

    Other dims of ``da`` lead, in their own order. Raises naming missing dims, labels that
    do not match and sizes that differ (for a dim without labels on one side).
    """
    if template.attrs.get("units"):
        from ..units import to_canonical

        da = to_canonical(da, name, expected=template.attrs["units"])[0]
    missing = [d for d in template.dims if d not in da.dims]
    if missing:
        raise ValueError(f"{name} lacks the surrogate's dims {missing}; it has {list(da.dims)}")
    da = da.transpose(..., *template.dims)
    for d in template.dims:
        if d in template.indexes and d in da.indexes:
            idx = order(da.indexes[d], template.indexes[d], f"{name} {d!r}", "the surrogate's")
            if not np.array_equal(idx, np.arange(da.sizes[d])):
                da = da.isel({d: idx})
        elif da.sizes[d] != template.sizes[d]:
            raise ValueError(f"{name} has {da.sizes[d]} values along {d!r}, the surrogate was fitted on "
                             f"{template.sizes[d]} (feature shape {template.shape})")
    return da


def paired(x, y, name: str = "y", whose: str = "x's"):
    """``y`` in the sample order of ``x`` where both label their samples; unmatched labels are an error."""
    if isinstance(x, xr.DataArray) and isinstance(y, xr.DataArray) and "sample" in x.indexes and "sample" in y.indexes:
        return y.isel(sample=order(y.indexes["sample"], x.indexes["sample"], f"{name} 'sample'", whose))
    return y


def where(da: xr.DataArray, mask: np.ndarray, k=5) -> str:
    """The labels of the first ``k`` cells of ``da`` where ``mask`` is true, e.g. ``obs='t3', obs='t7'``."""
    if da.ndim == 0:
        return "its only value"
    cells = np.argwhere(mask)

    def at(cell):
        text = ", ".join(f"{d}={_label(da.indexes[d][i] if d in da.indexes else i)}" for d, i in zip(da.dims, cell))
        return text if len(cell) == 1 else f"({text})"

    return ", ".join(at(c) for c in cells[:k]) + (f" and {len(cells) - k} more" if len(cells) > k else "")


def labeled(bounds) -> bool:
    """Whether ``bounds`` name their parameters (a mapping, or a DataArray with a ``param`` coord)."""
    return isinstance(bounds, Mapping) or (isinstance(bounds, xr.DataArray) and "param" in bounds.indexes)
