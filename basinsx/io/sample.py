"""The bundled sample (real CAMELS-US basins in Caravan form) and the attribute list it carries."""

from __future__ import annotations

import hashlib
from importlib.resources import files

import xarray as xr

from .store import chunk_dynamic

#: The name :func:`basinsx.open_dataset` knows the sample by.
SAMPLE = "sample"

#: The 27 CAMELS static attributes used by Kratzert et al. (2019) and KGSSL (Ghosh et al. 2022).
KRATZERT_ATTRIBUTES = (
    "p_mean", "pet_mean", "aridity", "p_seasonality", "frac_snow", "high_prec_freq", "high_prec_dur",
    "low_prec_freq", "low_prec_dur", "elev_mean", "slope_mean", "area_gages2", "frac_forest", "lai_max",
    "lai_diff", "gvf_max", "gvf_diff", "soil_depth_pelletier", "soil_depth_statsgo", "soil_porosity",
    "soil_conductivity", "max_water_content", "sand_frac", "silt_frac", "clay_frac", "carbonate_rocks_frac",
    "geol_permeability",
)


def _path():
    return files("basinsx") / "data" / "sample.nc"


def open_sample(chunks="auto") -> xr.Dataset:
    """The bundled sample: real CAMELS-US basins in Caravan form, with the 27 CAMELS attributes."""
    with xr.open_dataset(_path(), engine="h5netcdf") as f:
        ds = f.load()
    for name in list(ds.variables):
        if ds[name].dtype.kind in "SU":
            ds[name] = ds[name].astype(object)
    return ds if chunks is None else chunk_dynamic(ds, 1 if chunks == "auto" else chunks)


def sample_id() -> str:
    """The sample's identity for :func:`basinsx.io.open.source_id`: a hash of the bundled file."""
    return f"sample:{hashlib.sha256(_path().read_bytes()).hexdigest()[:16]}"
