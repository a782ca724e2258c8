"""Build the bundled sample ``basinsx/data/sample.nc`` from the real data in ``../shared/data``.

Ten CAMELS-US basins of the Caravan copy (1981-2014: prcp, tmean, pet, streamflow), chosen
evenly along the aridity gradient, with the 27 static attributes of Kratzert et al. (2019)
from the original CAMELS attributes v2.0 (matched by USGS id).

    python scripts/make_sample.py ../shared/data
"""

import sys
from pathlib import Path

import numpy as np

import basinsx
from basinsx.io.camels_us import ATTRIBUTE_UNITS
from basinsx.io.camels_us import read_attributes as read_camels_attributes
from basinsx.io.sample import KRATZERT_ATTRIBUTES

N_BASINS = 10

data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
full = basinsx.read_caravan(data / "caravan")
camels = read_camels_attributes(data / "camels_us" / "camels_attributes_v2.0").reindex(full.basin.values)
order = np.argsort(camels["aridity"].to_numpy())
pick = sorted(full.basin.values[order[np.linspace(0, len(order) - 1, N_BASINS).round().astype(int)]])

ds = full[["prcp", "tmean", "pet", "streamflow"]].sel(basin=pick)
ds = ds.drop_vars("streamflow_valid_days")
for name in KRATZERT_ATTRIBUTES:
    ds[name] = ("basin", camels.loc[pick, name].to_numpy(float), {"units": ATTRIBUTE_UNITS[name],
                                                                   "source": "CAMELS attributes v2.0"})
ds["huc_02"] = ("basin", camels.loc[pick, "huc_02"].to_numpy().astype(str))
ds.attrs.update(
    source="basinsx sample: 10 CAMELS-US basins (Caravan layout, ERA5-Land forcing, USGS streamflow) "
    "with the 27 CAMELS attributes of Kratzert et al. (2019)",
    license="CC-BY-4.0 (Caravan); CAMELS attributes: free to use with citation (UCAR/NCAR)",
    citation=full.attrs["citation"] + "; Addor, N. et al. (2017), HESS 21, 5293-5313, doi:10.5194/hess-21-5293-2017",
)
for name in ds.variables:
    if ds[name].dtype == object:
        ds[name] = ds[name].astype(str)
encoding = {v: {"zlib": True, "complevel": 9, "shuffle": True} for v in ds.data_vars if ds[v].dtype.kind == "f"}
out = Path(basinsx.__file__).parent / "data" / "sample.nc"
ds.to_netcdf(out, engine="h5netcdf", encoding=encoding)
print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): {pick}")
