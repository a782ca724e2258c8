"""The 100 real basins of ``../shared/data/caravan`` with the 27 CAMELS attributes (v2.0) joined.

Caravan's own attribute table has columns with the same names (``p_mean``, ...) computed from
ERA5-Land; the CAMELS values (Daymet-based, used by Kratzert et al. 2019 and Ghosh et al. 2022)
replace them here.
"""

import numpy as np
import xarray as xr
from common import CAMELS_ATTRIBUTES, CARAVAN, caravan

from basinsx.io.camels_us import read_attributes
from basinsx.io.sample import KRATZERT_ATTRIBUTES

INPUTS = ("prcp", "tmean", "pet", "streamflow")


def load(path=CARAVAN, attributes=CAMELS_ATTRIBUTES, pet="era5") -> xr.Dataset:
    """Inputs ``(basin, time)`` in memory and the 27 CAMELS attributes ``(basin,)``.

    The defaults are the 100 basins of ``../shared/data``; any Caravan folder with a ``camels`` subset and the
    CAMELS attribute tables (e.g. the full data sets from ``basinsx.fetch``) give the same
    experiment at another scale. Basins without CAMELS attributes are dropped. ``pet="oudin"``
    replaces Caravan's ERA5-Land PET (several times observation-based PET) by Oudin's formula.
    """
    ds = caravan(pet, path=path)
    attrs = read_attributes(attributes)
    known = [b for b in ds["basin"].values if str(b) in attrs.index]
    if not known:
        raise ValueError(f"none of the basins in {path} has attributes in {attributes}")
    out = ds[list(INPUTS)].sel(basin=known)
    basins = [str(b) for b in out["basin"].values]
    for name in KRATZERT_ATTRIBUTES:
        out[name] = ("basin", attrs.loc[basins, name].to_numpy(dtype=np.float64))
    return out


def nse(sim: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """NSE per row, NaN pairs skipped (a check on ``basinsx.metrics``)."""
    ok = np.isfinite(sim) & np.isfinite(obs)
    s, o = np.where(ok, sim, 0.0), np.where(ok, obs, np.nan)
    mean = np.nanmean(o, axis=-1, keepdims=True)
    num = np.nansum(np.where(ok, (s - o) ** 2, np.nan), axis=-1)
    den = np.nansum(np.where(ok, (o - mean) ** 2, np.nan), axis=-1)
    return 1 - num / den
