"""Real-data result per model: calibration and validation KGE of every registered model, with and without snow.

Caravan CAMELS-US basins of ``../shared/data/caravan``, 1 - KGE calibrated over 1982-1995 (1981
warm-up), validated over 1996-2014 (1995 warm-up), with Oudin PET by default (``--pet era5`` keeps
Caravan's ERA5-Land PET). The discrete models take every ``--step``-th basin, the ODE models (slower
per run) every ``--ode-step``-th. ``--snow`` lists the snow options to run each model with (``none``,
``degree_day``, ``cemaneige``, ``cemaneige_hyst``; CemaNeige on one layer, as Caravan has no hypsometry);
hbv has its own snow routine and runs once, without a snow option. The ODE models are integrated with
each model's default solver (``--solver default``: ROS34PW2 for hymod and hmodel, the adaptive Heun-Euler
scheme for gr4j_ode, at their default tolerances), ROS34PW2 (``ros34pw2``), SDIRK2 (``sdirk``), the
error-controlled Heun-Euler scheme (``adaptive``) or fixed Heun steps (``fixed``, ``--n-sub`` per day),
in calibration and validation alike. Each row prints as it finishes, with gr4j's median validation KGE on the same basins.

    python benchmarks/calibration_models.py --step 1 --ode-step 5 --n-starts 4 --snow none,degree_day,cemaneige
    python benchmarks/calibration_models.py --step 20 --n-starts 2 --models hmodel --solver adaptive
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import xarray as xr
from common import PET_CHOICES, argument_parser, caravan

import basinsx.models as bm
from basinsx.calibration import calibrate
from basinsx.calibration.losses import KGE
from basinsx.simulation import simulate


def kge_per_basin(sim, obs):
    return np.array([1.0 - KGE()(s, o)[0] for s, o in zip(sim.values, obs.values)])


def runs(models, snows) -> list[tuple[str, str | None, str]]:
    """The (model, snow option or None, label) runs for ``models`` x ``snows`` (``"none"`` for no snow).

    A model that takes no snow option (hbv, with its own snow routine) runs once without one.
    """
    options = [bm.snow_option(False if s == "none" else s) for s in snows]
    out = []
    for name in models:
        takes = bm.spec(name).snow
        if not takes:
            out.append((name, None, f"{name} (own snow routine)" if any(options) else name))
            continue
        out += [(name, s, f"{name} + {s}" if s else name) for s in options if s is None or s in takes]
    return out


def basin_step(name: str, step: int, ode_step: int) -> int:
    """Every how many basins ``name`` runs on: ``ode_step`` for the ODE models, ``step`` for the others."""
    return ode_step if bm.spec(name).solver_options else step


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--step", type=int, default=1, help="discrete models: every STEP-th of the 100 basins")
    parser.add_argument("--ode-step", type=int, default=5, help="ODE models: every ODE_STEP-th basin")
    parser.add_argument("--models", default=",".join(bm.available()))
    parser.add_argument("--n-starts", type=int, default=4)
    parser.add_argument("--solver", choices=["default", "ros34pw2", "sdirk", "adaptive", "fixed"], default="default",
                        help="ODE models only")
    parser.add_argument("--n-sub", type=int, default=2, help="fixed Heun steps per day (--solver fixed)")
    parser.add_argument("--pet", choices=PET_CHOICES, default="oudin")
    parser.add_argument("--snow", nargs="?", default="none", const="degree_day",
                        help="comma-separated snow options: none, degree_day (also bare --snow), cemaneige, "
                        "cemaneige_hyst (default none)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    plan = runs(args.models.split(","), args.snow.split(","))
    full = caravan(args.pet, clip_pet=True)[["prcp", "pet", "tmean", "streamflow"]].astype("float64")
    print(f"{full.sizes['basin']} basins (discrete models every {args.step}, ODE models every {args.ode_step}), "
          f"PET {args.pet}, {args.n_starts} starts, ODE solver {args.solver}")
    print(f"{'model':26s} {'basins':>6s} {'KGE cal q25/med/q75':>20s} {'KGE val q25/med/q75':>20s} "
          f"{'gr4j val':>8s} {'runs':>5s} {'s/basin':>7s} {'failed':>6s}", flush=True)
    val_kge = {}  # label -> per-basin validation KGE
    for name, snow, label in plan:
        ds = full.isel(basin=slice(0, None, basin_step(name, args.step, args.ode_step)))
        val = ds.sel(time=slice("1995-01-01", "2014-12-31"))
        opts = {}
        if bm.spec(name).solver_options and args.solver != "default":
            opts = {"method": args.solver, **({"n_sub": args.n_sub} if args.solver == "fixed" else {})}
        t0 = time.perf_counter()
        cal = calibrate(ds, model=name, loss="kge", period=slice("1982", "1995"), warmup=365,
                        n_starts=args.n_starts, snow=snow or False, solver_options=opts)
        wall = (time.perf_counter() - t0) / ds.sizes["basin"]
        ok = cal["params"].notnull().all("param")
        sim = simulate(val.sel(basin=ok), cal["params"].sel(basin=ok), model=name, warmup=365, snow=snow or False,
                       **opts)
        kv = xr.DataArray(kge_per_basin(sim, val["streamflow"].sel(basin=ok).isel(time=slice(365, None))),
                          dims="basin", coords={"basin": sim["basin"].values})
        val_kge[label] = kv
        ref = val_kge.get(f"gr4j + {snow}" if snow else "gr4j")
        ref = f"{float(ref.reindex(basin=kv['basin']).median()):8.3f}" if ref is not None else f"{'':8s}"
        q = lambda a: f"{np.nanquantile(a, 0.25):.3f}/{np.nanmedian(a):.3f}/{np.nanquantile(a, 0.75):.3f}"  # noqa
        print(f"{label:26s} {ds.sizes['basin']:6d} {q(cal['kge'].values):>20s} {q(kv.values):>20s} {ref} "
              f"{int(cal['n_evals'].median()):5d} {wall:7.1f} {int((~ok).sum()):6d}", flush=True)


if __name__ == "__main__":
    main()
