"""Real-data result per model: calibration and validation KGE of every registered model.

Caravan CAMELS-US basins of ``../shared/data/caravan`` (every ``--step``-th), 1 - KGE
calibrated over 1982-1995 (1981 warm-up), validated over 1996-2014 (1995 warm-up), with
Oudin PET by default (``--pet era5`` keeps Caravan's ERA5-Land PET). The ODE models are
integrated with fixed Heun steps (``--n-sub`` per day) or, with ``--solver adaptive``, with
the error-controlled Heun-Euler scheme, in calibration and validation alike.

    python benchmarks/calibration_models.py --step 10 --n-starts 4 --pet oudin
    python benchmarks/calibration_models.py --step 20 --n-starts 2 --models hmodel --solver adaptive
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import xarray as xr
from common import PET_CHOICES, argument_parser, caravan

import basinsx.models as bm
from basinsx.calibration import calibrate, simulate
from basinsx.calibration.losses import KGE


def kge_per_basin(sim, obs):
    return np.array([1.0 - KGE()(s, o)[0] for s, o in zip(sim.values, obs.values)])


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--step", type=int, default=10, help="take every STEP-th of the 100 basins")
    parser.add_argument("--models", default=",".join(bm.available()))
    parser.add_argument("--n-starts", type=int, default=4)
    parser.add_argument("--solver", choices=["fixed", "adaptive"], default="fixed", help="ODE models only")
    parser.add_argument("--n-sub", type=int, default=2, help="fixed Heun steps per day for the ODE models")
    parser.add_argument("--pet", choices=PET_CHOICES, default="oudin")
    parser.add_argument("--snow", action="store_true", help="add the degree-day snow module")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    ds = caravan(args.pet, clip_pet=True).isel(basin=slice(0, None, args.step))
    ds = ds[["prcp", "pet", "tmean", "streamflow"]].astype("float64")
    val = ds.sel(time=slice("1995-01-01", "2014-12-31"))
    print(f"{ds.sizes['basin']} basins, PET {args.pet}, snow {args.snow}, {args.n_starts} starts")
    print(f"{'model':9s} {'KGE cal q25/med/q75':>22s} {'KGE val q25/med/q75':>22s} {'runs':>6s} "
          f"{'s/basin':>8s} {'failed':>6s}")
    for name in args.models.split(","):
        opts = {"method": args.solver, "n_sub": args.n_sub} if bm.get(name).solver_options else {}
        t0 = time.perf_counter()
        cal = calibrate(ds, model=name, loss="kge", period=slice("1982", "1995"), warmup=365,
                        n_starts=args.n_starts, snow=args.snow, solver_options=opts, progress=True)
        wall = (time.perf_counter() - t0) / ds.sizes["basin"]
        ok = cal["params"].notnull().all("param")
        sim = simulate(val.sel(basin=ok), cal["params"].sel(basin=ok), model=name, warmup=365, snow=args.snow,
                       **opts)
        kv = xr.DataArray(kge_per_basin(sim, val["streamflow"].sel(basin=ok).isel(time=slice(365, None))),
                          dims="basin")
        q = lambda a: f"{np.nanquantile(a, 0.25):.3f}/{np.nanmedian(a):.3f}/{np.nanquantile(a, 0.75):.3f}"  # noqa
        print(f"{name:9s} {q(cal['kge'].values):>22s} {q(kv.values):>22s} {int(cal['n_evals'].median()):6d} "
              f"{wall:8.1f} {int((~ok).sum()):6d}", flush=True)


if __name__ == "__main__":
    main()
