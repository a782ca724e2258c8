"""What the conceptual models read, checked at the boundary: the PET choice, units, the time axis, the period.

:func:`model_inputs` is the one door of ``calibrate``, ``simulate`` and ``sensitivity``:
it puts the chosen PET under ``pet``, converts the forcings and the observed flow to
canonical units (:mod:`basinsx.units`), requires a daily, strictly increasing time axis
and says, in words fit for attrs, what it chose and converted.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from .io.conventions import check_time

__all__ = ["BiasedPETWarning", "choose_pet", "check_time", "model_inputs", "period_slice"]

#: The attribute readers set on a variable with a known bias, saying what it is and where it is documented.
KNOWN_BIAS = "known_bias"


class BiasedPETWarning(UserWarning):
    """The data set's own PET carries a known bias and was used without being chosen explicitly."""


def choose_pet(ds: xr.Dataset, pet=None, *, warn: bool = False) -> tuple[xr.Dataset, str | None]:
    """``ds`` with the chosen PET as its ``pet`` variable, and a description of the choice.

    Parameters
    ----------
    ds : xr.Dataset
        The forcings.
    pet : None, str or xr.DataArray
        ``None``: the data set's ``pet`` variable; the name of another variable; a
        method of :func:`basinsx.pet.pet` (``"oudin"``, ``"hargreaves"``,
        ``"priestley_taylor"``) computed on the fly; or a DataArray.
    warn : bool
        Warn (:class:`BiasedPETWarning`) when ``pet=None`` takes a variable that a
        reader marked as biased (attribute ``known_bias``).
    """
    from .flags import user_stacklevel
    from .pet import METHODS
    from .pet import pet as compute_pet

    if pet is None:
        if "pet" not in ds:
            return ds, None
        bias = ds["pet"].attrs.get(KNOWN_BIAS)
        if warn and bias:
            warnings.warn(f"the data set's 'pet' has a known bias: {bias}. Choose the PET explicitly: pet='oudin' "
                          "(computed from tmean and latitude) or pet='pet' to keep it",
                          BiasedPETWarning, stacklevel=user_stacklevel())
        return ds, "pet (the data set's variable)"
    if isinstance(pet, xr.DataArray):
        return ds.assign(pet=pet), f"a DataArray ({pet.attrs.get('long_name', pet.name)})"
    if not isinstance(pet, str):
        raise TypeError(f"pet must be None, a variable name, a PET method or a DataArray; got {type(pet).__name__}")
    if pet in ds.data_vars and pet in METHODS:
        raise ValueError(f"pet={pet!r} is both a variable of the dataset and a PET method: pass pet=ds[{pet!r}] "
                         "for the variable, or rename it to use the method")
    if pet in ds.data_vars:
        return ds.assign(pet=ds[pet]), f"{pet} (the data set's variable)"
    if pet in METHODS:
        return ds.assign(pet=compute_pet(ds, method=pet)), f"{pet} (computed by basinsx.pet)"
    raise ValueError(f"pet={pet!r} is neither a variable of the dataset ({sorted(ds.data_vars)}) nor a PET method "
                     f"({sorted(METHODS)})")


def period_slice(period) -> slice | None:
    """``period`` (a slice, a ``(start, end)`` tuple or one label such as ``"1990"``; a year may be a number) as a
    slice; checked for order."""
    def label(x):  # a year given as a number is the year's label
        return str(x) if isinstance(x, int | np.integer) and not isinstance(x, bool) else x

    if period is None:
        return None
    if isinstance(period, str | int | np.integer):  # one label, e.g. a year
        period = slice(period, period)
    if isinstance(period, tuple | list):
        if len(period) != 2:
            raise ValueError(f"period must be (start, end); got {period!r}")
        period = slice(*period)
    if not isinstance(period, slice):
        raise TypeError(f"period must be a slice or a (start, end) tuple; got {type(period).__name__}")
    period = slice(label(period.start), label(period.stop))
    if period.start is not None and period.stop is not None:
        start, end = pd.Timestamp(str(period.start)), pd.Timestamp(str(period.stop))
        if start > end:
            raise ValueError(f"period runs backwards: {period.start} to {period.stop}")
    return period


def repeated_labels(labels) -> list[str]:
    """The labels that ``labels`` holds more than once, as strings, sorted (empty when all are unique)."""
    values, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return [str(v) for v in values[counts > 1]]


def on_basins(value: xr.DataArray | xr.Dataset, data: xr.DataArray | xr.Dataset, what: str):
    """``value`` on the basins of ``data`` by label, in their order (a scalar ``basin`` of ``data``: its one row).

    A value without basin labels, or ``data`` without them, is left as it is. A basin label that
    ``value`` holds more than once is an error naming it (which of its rows was meant is unknown).
    """
    if "basin" not in data.coords or "basin" not in value.coords:
        return value
    basins = data["basin"]
    if basins.ndim == 1 and basins.dims[0] != "basin":  # apply_ufunc would run every row on every basin
        raise ValueError(f"the data's basins lie along dim {basins.dims[0]!r}, which {what} are not matched on: "
                         f"make 'basin' the dim, e.g. ds.swap_dims({basins.dims[0]}='basin')")
    want = np.atleast_1d(basins.values).astype(str)
    repeated = repeated_labels(want)
    if repeated:
        raise ValueError(f"the data hold basin(s) {repeated[:10]} more than once, so which of their rows {what} "
                         "belong to is unknown: give each basin one row")
    have = np.atleast_1d(value["basin"].values).astype(str)
    repeated = repeated_labels(have)
    if repeated:
        raise ValueError(f"{what} has basin(s) {repeated[:10]} more than once"
                         + (f" (and {len(repeated) - 10} more)" if len(repeated) > 10 else "")
                         + ": give each basin one row")
    row = {b: i for i, b in enumerate(have)}
    missing = [str(b) for b in want if b not in row]
    if missing:
        raise ValueError(f"{what} has no values for basin(s) {missing[:10]}"
                         + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
    if "basin" not in value.dims:  # a scalar label, the forcing's own basin
        return value.drop_vars("basin")
    value = value.isel(basin=[row[b] for b in want])
    return value.isel(basin=0, drop=True) if basins.ndim == 0 else value.assign_coords(basin=basins.values)


def with_units_notes(attrs: dict, arrays) -> dict:
    """``attrs`` with the ``units_note`` of each of ``arrays`` (inputs converted at the boundary, e.g. CemaNeige's
    elevations) added to its ``units_converted``."""
    notes = [a.attrs["units_note"] for a in arrays if a.attrs.get("units_note")]
    if not notes:
        return attrs
    return {**attrs, "units_converted": "; ".join(filter(None, [attrs.get("units_converted"), *notes]))}


def model_inputs(ds: xr.Dataset, forcings, *, flow: str | None = None, pet=None, where: str,
                 warn_biased_pet: bool = False) -> tuple[xr.Dataset, dict[str, str]]:
    """The forcings (and ``flow``) of ``ds`` checked and in canonical units, and attrs recording the choices.

    Returns the dataset (PET chosen, units converted; lazy) and a dict with ``pet``
    (what was chosen) and ``units_converted`` (the notes, ``"; "``-joined) where they apply.
    """
    from .units import dataset_to_canonical

    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"{where} needs a Dataset of forcings {tuple(forcings)}; got {type(ds).__name__}")
    check_time(ds, where)
    ds, chosen = choose_pet(ds, pet, warn=warn_biased_pet) if "pet" in forcings else (ds, None)
    roles = {v: v for v in forcings if v in ds}
    if flow is not None and flow in ds:
        roles[flow] = "streamflow"
    ds, notes = dataset_to_canonical(ds, roles)
    attrs = {"pet": chosen} if chosen else {}
    if notes:
        attrs["units_converted"] = "; ".join(notes)
    return ds, attrs
