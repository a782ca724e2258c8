"""Potential evapotranspiration from daily forcings (FAO-56 radiation terms)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .io.conventions import check_time

GSC = 0.0820  # solar constant, MJ m-2 min-1
SIGMA = 4.903e-9  # Stefan-Boltzmann, MJ K-4 m-2 d-1
LAMBDA = 2.45  # latent heat of vaporisation, MJ kg-1
ALBEDO = 0.23


def extraterrestrial_radiation(lat_deg, doy):
    """Daily extraterrestrial radiation Ra in MJ m-2 d-1 (FAO-56 eq. 21); NaN for a latitude beyond +-90 degrees.

    NaN, not an error: a latitude still lazy when :func:`pet` checked it fails only its basin's PET
    (a calibration then fails that basin, naming ``pet``), not the whole dask computation.
    """
    lat_deg = np.where(np.abs(lat_deg) > 90, np.nan, lat_deg)
    phi = np.deg2rad(lat_deg)
    dr = 1 + 0.033 * np.cos(2 * np.pi * doy / 365)
    delta = 0.409 * np.sin(2 * np.pi * doy / 365 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1, 1))
    return 24 * 60 / np.pi * GSC * dr * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws))


def hargreaves_kernel(tmin, tmax, tmean, lat, doy):
    """Hargreaves & Samani (1985) PET in mm/d; time on the last axis, ``lat`` in degrees."""
    ra = extraterrestrial_radiation(np.asarray(lat)[..., None], doy)
    pet = 0.0023 * 0.408 * ra * (tmean + 17.8) * np.sqrt(np.maximum(tmax - tmin, 0.0))
    return np.maximum(pet, 0.0)


def oudin_kernel(tmean, lat, doy):
    """Oudin et al. (2005) PET in mm/d from mean temperature and latitude; time on the last axis."""
    ra = extraterrestrial_radiation(np.asarray(lat)[..., None], doy)
    return ra / LAMBDA * np.maximum(tmean + 5, 0.0) / 100  # NaN stays NaN (a missing temperature, latitude)


def priestley_taylor_kernel(tmin, tmax, tmean, srad, dayl, vp, lat, elev, doy, alpha=1.26):
    """Priestley & Taylor (1972) PET in mm/d with FAO-56 net radiation; time on the last axis.

    ``srad`` is the daylight-average shortwave flux (W m-2, as in Daymet and
    CAMELS-US), so the daily total is ``srad * dayl``; ``vp`` in Pa.
    """
    lat = np.asarray(lat)[..., None]
    z = np.asarray(elev)[..., None]
    ra = extraterrestrial_radiation(lat, doy)
    rs = srad * dayl / 1e6
    rso = (0.75 + 2e-5 * z) * ra
    ea = vp / 1000.0
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.clip(np.where(rso > 0, rs / rso, 1.0), 0.3, 1.0)
    rnl = SIGMA * ((tmax + 273.16) ** 4 + (tmin + 273.16) ** 4) / 2 * (0.34 - 0.14 * np.sqrt(np.maximum(ea, 0))) * (
        1.35 * ratio - 0.35)
    rn = (1 - ALBEDO) * rs - rnl
    es = 0.6108 * np.exp(17.27 * tmean / (tmean + 237.3))
    slope = 4098 * es / (tmean + 237.3) ** 2
    gamma = 0.000665 * 101.3 * ((293 - 0.0065 * z) / 293) ** 5.26
    return np.maximum(alpha * slope / (slope + gamma) * rn / LAMBDA, 0.0)


_NEEDS = {
    "oudin": ("tmean",),
    "hargreaves": ("tmin", "tmax"),
    "priestley_taylor": ("tmin", "tmax", "srad", "dayl", "vp"),
}
#: The methods of :func:`pet`.
METHODS = tuple(_NEEDS)
_KERNELS = {"oudin": oudin_kernel, "hargreaves": hargreaves_kernel, "priestley_taylor": priestley_taylor_kernel}


def _static(ds: xr.Dataset, names: tuple[str, ...], what: str, units: str) -> xr.DataArray:
    """The first of ``names`` in ``ds``, in ``units`` (converted from its own; none: taken as ``units``)."""
    from .units import to_canonical

    for name in names:
        if name in ds.variables:
            return to_canonical(ds[name], name, expected=units)[0]
    raise KeyError(f"PET needs the basin {what}: none of {names} is in the dataset")


def _check_latitude(lat: xr.DataArray) -> None:
    """Latitudes beyond +-90 degrees are an error naming the basins (checked where they are in memory)."""
    if lat.chunks is not None:
        return
    bad = np.abs(np.asarray(lat.values, dtype=np.float64)) > 90
    if bad.any():
        where = lat["basin"].values[bad].tolist() if "basin" in lat.coords and lat.ndim == 1 else "some basins"
        raise ValueError(f"latitude {lat.name!r} outside -90..90 degrees for {where}: "
                         f"{np.asarray(lat.values)[bad].tolist()}")


def _float32(*args, kernel, **kwargs):
    """``kernel``'s PET rounded to float32 in every block: a dask block declared float32 but holding float64
    would give other values than the same data in memory (``astype`` is a no-op on the declared dtype)."""
    return kernel(*args, **kwargs).astype(np.float32)


def pet(ds: xr.Dataset, method: str = "oudin", alpha: float = 1.26) -> xr.DataArray:
    """Potential evapotranspiration in mm/d for CAMELS-US style forcings.

    Parameters
    ----------
    ds : xarray.Dataset
        Oudin needs ``tmean`` and ``gauge_lat`` (what every data set basinsx reads
        has); Hargreaves ``tmin`` and ``tmax`` too; Priestley-Taylor also ``srad``
        (W m-2, daylight average), ``dayl`` (s), ``vp`` (Pa) and the elevation
        (``elev_mean`` or ``elevation``, m). ``tmean`` is used where present, else
        (tmin + tmax) / 2. Units are checked and converted (K -> degC, rad -> degrees_north,
        km -> m, ...) by :func:`basinsx.units.to_canonical`; variables without units are taken
        as canonical. The time axis must be daily dates in order.
    method : {"oudin", "hargreaves", "priestley_taylor"}
        ``"oudin"`` (Oudin et al. 2005, the PET formula of airGR/GR4J studies), the
        default, needs only ``tmean`` and latitude, so it also serves Caravan-style
        data, whose ERA5-Land ``potential_evaporation_sum`` is several times larger
        than observation-based PET in many basins.
    alpha : float
        Priestley-Taylor coefficient.

    Notes
    -----
    The maurer and nldas forcings of CAMELS-US v1.2 have tmax equal to tmin, so
    Hargreaves gives zero there; use daymet or Priestley-Taylor for them.
    """
    from .units import dataset_to_canonical

    if method not in _NEEDS:
        raise ValueError(f"unknown PET method {method!r}; choose from {sorted(_NEEDS)}")
    missing = [v for v in _NEEDS[method] if v not in ds]
    if missing:
        raise KeyError(f"PET method {method!r} needs variables {missing}, which the dataset lacks")
    time = check_time(ds, "pet")
    ds, _ = dataset_to_canonical(ds, [n for n in dict.fromkeys((*_NEEDS[method], "tmean")) if n in ds])
    tmean = ds["tmean"] if "tmean" in ds else (ds["tmin"] + ds["tmax"]) / 2
    lat = _static(ds, ("gauge_lat", "lat"), "latitude", "degrees_north")
    _check_latitude(lat)
    doy = xr.DataArray(time.day_of_year.to_numpy(), dims="time", coords={"time": ds.time})
    if method == "oudin":
        args, core, kwargs = [tmean, lat, doy], [["time"], [], ["time"]], {}
    elif method == "hargreaves":
        args = [ds["tmin"], ds["tmax"], tmean, lat, doy]
        core, kwargs = [["time"]] * 3 + [[], ["time"]], {}
    else:
        elev = _static(ds, ("elev_mean", "elevation"), "elevation", "m")
        args = [ds["tmin"], ds["tmax"], tmean, ds["srad"], ds["dayl"], ds["vp"], lat, elev, doy]
        core, kwargs = [["time"]] * 6 + [[], [], ["time"]], {"alpha": alpha}
    out = xr.apply_ufunc(_float32, *args, kwargs={"kernel": _KERNELS[method], **kwargs}, input_core_dims=core,
                         output_core_dims=[["time"]], dask="parallelized", output_dtypes=[np.float32])
    out = out.transpose(*tmean.dims)
    out.name = "pet"
    out.attrs = {"units": "mm d-1", "long_name": f"potential evapotranspiration ({method.replace('_', '-')})",
                 "standard_name": "water_potential_evaporation_flux"}
    return out
