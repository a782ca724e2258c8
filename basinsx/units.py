"""Units checked at the boundary: one parser of CF-style unit strings and the conversions basinsx makes.

Every public function that takes physical data passes it through :func:`to_canonical`
(after xclim's ``declare_units``): equivalent spellings (``mm/d``, ``mm d-1``,
``mm day-1``) are accepted as they are, convertible units are converted to the
canonical ones of :data:`basinsx.io.conventions.VARIABLES` (K -> degC, m d-1 -> mm d-1,
kg m-2 s-1 -> mm d-1, m3 s-1 or ft3 s-1 -> mm d-1 with the basin ``area`` in km2),
and anything else is an error that names the variable, its units and what is
expected. A variable without a ``units`` attribute is taken to be in canonical units.
"""

from __future__ import annotations

import math
import re

import xarray as xr

__all__ = ["UnitsError", "canonical_units", "dataset_to_canonical", "parse", "to_canonical"]


class UnitsError(ValueError):
    """A variable's units are unknown or cannot be converted to the ones expected."""


# base symbol -> (SI factor, {dimension: exponent}); dimensions L (m), T (s), M (kg), K (kelvin)
_BASE = {
    "nm": (1e-9, {"L": 1}), "um": (1e-6, {"L": 1}), "mm": (1e-3, {"L": 1}), "cm": (1e-2, {"L": 1}),
    "m": (1.0, {"L": 1}), "km": (1e3, {"L": 1}),
    "in": (0.0254, {"L": 1}), "ft": (0.3048, {"L": 1}),
    "s": (1.0, {"T": 1}), "min": (60.0, {"T": 1}), "h": (3600.0, {"T": 1}), "d": (86400.0, {"T": 1}),
    "yr": (365.25 * 86400.0, {"T": 1}),
    "kg": (1.0, {"M": 1}), "g": (1e-3, {"M": 1}),
    "l": (1e-3, {"L": 3}),
    "pa": (1.0, {"M": 1, "L": -1, "T": -2}), "hpa": (1e2, {"M": 1, "L": -1, "T": -2}),
    "kpa": (1e3, {"M": 1, "L": -1, "T": -2}),
    "w": (1.0, {"M": 1, "L": 2, "T": -3}), "j": (1.0, {"M": 1, "L": 2, "T": -2}),
    "mj": (1e6, {"M": 1, "L": 2, "T": -2}),
    "1": (1.0, {}), "%": (1e-2, {}),
    # permeability: 1 darcy = 9.869233e-13 m2 (a darcy is 'darcy': 'D' is a day once lower-cased; 'mD' is 'md')
    "darcy": (9.869233e-13, {"L": 2}), "md": (9.869233e-16, {"L": 2}),
}
_ALIASES = {
    "day": "d", "days": "d", "hr": "h", "hour": "h", "hours": "h", "sec": "s", "second": "s", "seconds": "s",
    "year": "yr", "a": "yr", "meter": "m", "metre": "m", "meters": "m", "metres": "m", "millimeter": "mm",
    "millimetre": "mm", "millimeters": "mm", "millimetres": "mm", "liter": "l", "litre": "l", "inch": "in",
    "feet": "ft", "foot": "ft", "\u00b5m": "um", "\u03bcm": "um", "micron": "um", "microns": "um",
    "micrometer": "um", "micrometre": "um", "micrometers": "um", "micrometres": "um", "nanometer": "nm",
    "nanometre": "nm", "nanometers": "nm", "nanometres": "nm", "centimeter": "cm", "centimetre": "cm",
    "centimeters": "cm", "centimetres": "cm", "kilometer": "km", "kilometre": "km", "kilometers": "km",
    "kilometres": "km", "darcies": "darcy", "millidarcy": "md", "millidarcies": "md",
}
# whole-string spellings: the names that are not products of powers
_WORDS = {"cms": "m3 s-1", "cumec": "m3 s-1", "cumecs": "m3 s-1", "cfs": "ft3 s-1", "mm/24h": "mm d-1"}
# temperatures carry an offset: (scale, offset) to degC
_TEMPERATURE = {
    "degc": (1.0, 0.0), "degree_celsius": (1.0, 0.0), "degrees_celsius": (1.0, 0.0), "celsius": (1.0, 0.0),
    "°c": (1.0, 0.0), "deg_c": (1.0, 0.0), "degreec": (1.0, 0.0), "c": (1.0, 0.0),
    "k": (1.0, -273.15), "kelvin": (1.0, -273.15), "degk": (1.0, -273.15),
    "degf": (5 / 9, -32 * 5 / 9), "fahrenheit": (5 / 9, -32 * 5 / 9), "°f": (5 / 9, -32 * 5 / 9),
}
# angles (latitude, longitude): degrees per unit
_ANGLE = {
    "degrees_north": 1.0, "degree_north": 1.0, "degrees_n": 1.0, "degree_n": 1.0, "degreen": 1.0,
    "degrees_east": 1.0, "degree_east": 1.0, "degrees_e": 1.0, "degree_e": 1.0, "degreee": 1.0,
    "degrees": 1.0, "degree": 1.0, "deg": 1.0, "°": 1.0,
    "rad": 180.0 / math.pi, "radian": 180.0 / math.pi, "radians": 180.0 / math.pi,
}
_TOKEN = re.compile(r"^([a-z%°\u00b5\u03bc]+|1)(?:\^?(-?\d+))?$")  # µ: micro sign and Greek mu
_WATER = 1000.0  # kg m-3: a mass of water per area is a depth (1 kg m-2 = 1 mm)


def parse(units: str) -> tuple[float, dict[str, int]]:
    """``(SI factor, {dimension: exponent})`` of a CF-style unit string.

    Products of powers in either notation (``mm d-1``, ``mm/day``, ``m^3 s^-1``,
    ``kg.m-2.s-1``, ``W m**-2``). Temperatures are not parsed here (they have offsets).

    Raises
    ------
    UnitsError
        When a symbol is unknown.
    """
    text = _WORDS.get(units.strip().lower(), units.strip().lower()).replace("**", "^")
    num, _, den = text.partition("/")
    factor, dims = 1.0, {}
    for sign, part in ((1, num), (-1, den)):
        for token in re.split(r"[\s.*·]+", part.strip()):
            if not token:
                continue
            m = _TOKEN.match(token)
            symbol = _ALIASES.get(m.group(1), m.group(1)) if m else None
            if symbol not in _BASE:
                raise UnitsError(f"unknown unit {token!r} in {units!r}")
            power = sign * int(m.group(2) or 1)
            scale, base = _BASE[symbol]
            factor *= scale**power
            for dim, exp in base.items():
                dims[dim] = dims.get(dim, 0) + exp * power
    return factor, {k: v for k, v in dims.items() if v}


def canonical_units(name: str) -> str | None:
    """The canonical units of a variable name basinsx knows (``prcp`` -> ``mm d-1``), else None."""
    from .io.conventions import VARIABLES

    return VARIABLES.get(name, {}).get("units")


def _conversion(units: str, expected: str, name: str) -> tuple[float, float, bool]:
    """``(scale, offset, needs_area)`` turning values in ``units`` into ``expected``."""
    given, want = units.strip().lower(), expected.strip().lower()
    if want in _TEMPERATURE:
        if given not in _TEMPERATURE:
            raise UnitsError(f"{name!r} is in {units!r}; expected a temperature in {expected}")
        (s1, o1), (s2, o2) = _TEMPERATURE[given], _TEMPERATURE[want]
        return s1 / s2, (o1 - o2) / s2, False
    if want in _ANGLE or given in _ANGLE:
        if not (want in _ANGLE and given in _ANGLE):
            raise UnitsError(f"{name!r} is in {units!r}, which cannot be converted to {expected}")
        return _ANGLE[given] / _ANGLE[want], 0.0, False
    if given in _TEMPERATURE:
        raise UnitsError(f"{name!r} is in {units!r}, which cannot be converted to {expected}")
    try:
        f_in, d_in = parse(units)
    except UnitsError as err:
        raise UnitsError(f"{name!r} has units {units!r}: {err.args[0]}; expected {expected}") from None
    f_out, d_out = parse(expected)
    if d_in == d_out:
        return f_in / f_out, 0.0, False
    if d_out == {"L": 1, "T": -1}:
        if d_in == {"M": 1, "L": -2, "T": -1}:  # a water mass flux is a depth rate
            return f_in / _WATER / f_out, 0.0, False
        if d_in == {"L": 3, "T": -1}:  # a discharge is a depth rate over the basin area
            return f_in / f_out, 0.0, True
    raise UnitsError(f"{name!r} is in {units!r}, which cannot be converted to {expected}")


def to_canonical(da: xr.DataArray, name: str | None = None, *, expected: str | None = None,
                 area: xr.DataArray | None = None) -> tuple[xr.DataArray, str | None]:
    """``da`` in its canonical units, and a note saying what was converted (None if nothing was).

    Parameters
    ----------
    da : xr.DataArray
        Physical data; its ``units`` attribute is read. Without one it is taken to
        be in ``expected`` units and returned as it is. Dask-backed data stay lazy.
    name : str, optional
        The variable's role (``"prcp"``, ``"tmean"``, ``"streamflow"``, ...), for the
        canonical units and the messages; default ``da.name``.
    expected : str, optional
        The units wanted; default the canonical units of ``name``.
    area : xr.DataArray, optional
        Basin area in km2 (the ``area`` coordinate of a canonical dataset): needed to
        turn a discharge (``m3 s-1``, ``ft3 s-1``, ...) into a depth rate. Default: ``da``'s
        own ``area`` coordinate, if any.

    Raises
    ------
    UnitsError
        Units unknown or not convertible, or a discharge without a basin area; the
        message names the variable, its units and what is expected.
    """
    name = name or str(da.name)
    expected = expected or canonical_units(name)
    units = da.attrs.get("units")
    if expected is None or units is None or str(units).strip() == "":
        return da, None
    scale, offset, needs_area = _conversion(str(units), expected, name)
    if not needs_area and abs(scale - 1.0) < 1e-12 and offset == 0.0:
        return da, None
    out = da * scale + offset if offset else da * scale
    if needs_area:
        if area is None:
            area = da.coords.get("area")
        if area is None:
            raise UnitsError(f"{name!r} is a discharge in {units!r}; converting it to {expected} needs the basin "
                             "area: give the dataset an 'area' coordinate in km2 (along 'basin')")
        km2, _ = to_canonical(area, "area", expected="km2")
        out = out / (km2 * 1e6)
    note = f"{name} converted from {units} to {expected}" + (" with the basin area" if needs_area else "")
    out.attrs = {**da.attrs, "units": expected, "units_note": note}
    return out.astype(da.dtype) if da.dtype.kind == "f" else out, note


def dataset_to_canonical(ds: xr.Dataset, roles) -> tuple[xr.Dataset, list[str]]:
    """The variables of ``ds`` in canonical units, and the conversion notes.

    ``roles`` maps variable names to what they hold (``{"qobs": "streamflow"}``), or
    lists names that are their own roles. The basin area comes from ``ds.area``.
    """
    roles = dict(roles) if isinstance(roles, dict) else {n: n for n in roles}
    area = ds["area"] if "area" in ds.variables else None
    notes, converted = [], {}
    for var, role in roles.items():
        out, note = to_canonical(ds[var], role, area=area)
        if note:
            converted[var], notes = out, notes + [note.replace(f"{role} converted", f"{var} converted", 1)]
    return (ds.assign(converted) if converted else ds), notes
