"""The PET a calibration uses: Caravan's ERA5-Land PET (the old default path) vs Oudin PET (the documented one).

GR4J on KGE through the path the docs teach, ``ds.hydro.calibrate(...)`` with default
settings (8 starts, warm-up 1981, calibration 1982-1995), then validation 1996-2014 (warm-up
1995) with ``ds.hydro.simulate``, on the Caravan CAMELS-US basins of ``../shared/data``.
Prints the median calibration and validation KGE of each PET and how many basins end with a
parameter on a bound (``at_bound``), x1 on its lower bound in particular.

    python benchmarks/pet_choice.py --basins 100
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from common import argument_parser, caravan


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--basins", type=int, default=100, help="number of basins (the first N)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # the warning on the ERA5-Land PET is the point of the first row
    ds = caravan("era5")  # the data set's PET as read: calibrate(pet=...) below makes the choice
    ds = ds.isel(basin=slice(0, args.basins)).sel(time=slice("1981", "2014"))
    rows = []
    for label, pet in (("ERA5-Land (pet=None, the data set's)", None), ("Oudin (pet='oudin')", "oudin")):
        start = time.perf_counter()
        cal = ds.hydro.calibrate(model="gr4j", loss="kge", period=("1982", "1995"), pet=pet)
        seconds = time.perf_counter() - start
        sim = ds.sel(time=slice("1995", "2014")).hydro.simulate(cal.params, model="gr4j", warmup=365, pet=pet)
        val = ds.hydro.metrics(sim, ds.streamflow.sel(time=slice("1996", "2014")))
        x1 = cal.params.sel(param="x1")
        rows.append((label, float(cal.kge.median()), float(val.kge.median()),
                     int(cal.at_bound.any("param").sum()),
                     int((cal.at_bound.sel(param="x1") & (x1 < 100)).sum()), seconds / ds.sizes["basin"]))
    print(f"{ds.sizes['basin']} basins, GR4J, KGE, calibrate(period=('1982', '1995'), n_starts=8)")
    print(f"{'PET':40s} {'KGE cal':>8s} {'KGE val':>8s} {'at bound':>9s} {'x1 low':>7s} {'s/basin':>8s}")
    for label, kc, kv, nb, nx1, s in rows:
        print(f"{label:40s} {kc:8.3f} {kv:8.3f} {nb:9d} {nx1:7d} {s:8.2f}")
    print(f"difference Oudin - ERA5: KGE cal {rows[1][1] - rows[0][1]:+.3f}, val {rows[1][2] - rows[0][2]:+.3f}")
    return np.array([r[1:] for r in rows])


if __name__ == "__main__":
    main()
