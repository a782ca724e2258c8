"""Issue 24 levers: which changes of the GR4J calibration pay, side by side with GRsuite's Michel calibration.

Every variant calibrates GR4J on 1 - KGE (warm-up 1981, calibration 1982-1995, Oudin PET,
the documented default path) with :func:`basinsx.calibration.optimize.calibrate_basin`, the
per-basin kernel of ``calibrate``, and GRsuite's ``calibration_michel`` runs on the same
arrays; each basin runs every variant one after the other, so the wall-time ratios are
taken under the same machine load. Every parameter set is scored by the same code.

Variants (``calibrate_basin`` keywords):

* ``default``: ``calibrate``'s default: 32 plain screening runs (the 16 corners of airGR's
  GR4J prior, then a Latin hypercube), L-BFGS-B from the best separated points until a
  start ends at the best optimum, 4 starts at most;
* ``k1``, ``k2``: at most 1 or 2 starts;
* ``noprior``, ``noprior-k1``, ``noprior-k2``, ``noprior-s64``: the screening on the Latin
  hypercube alone (64 points for the last);
* ``lhs8``: the former default, 8 Latin-hypercube starts of L-BFGS-B, no screening;
* ``lm``: Levenberg-Marquardt on the three KGE residuals in place of L-BFGS-B;
* ``tol2e-4``: L-BFGS-B's relative tolerance 2e-4 in place of 5e-5;
* ``checked``: ``default`` through ``Model.run`` on every run (its input checks each time), the path
  before ``Problem`` called the kernel directly on inputs checked once per basin (the default now);
* ``similar``, ``similar-k2``, ``similar-k1``: ``default`` (at most 4, 2, 1 starts) with the
  parameters of similar basins screened first (``start=``): the mean (log scale for x1, x3) of
  the ``--donors`` nearest of the other 99 basins in z-scored Caravan attributes
  (:func:`basinsx.regional.donor_params`), each calibrated by ``default`` beforehand;
* ``similar-s17``: that point and the 16 prior corners only (17 plain runs), at most 4 starts;
* ``similar-only``: one L-BFGS-B start from that point, no other screening.

    python benchmarks/calibration_levers.py --step 5
    python benchmarks/calibration_levers.py --step 5 --snow cemaneige --variants default,checked --repeat 3

``--snow cemaneige`` puts CemaNeige (one layer, as ``calibration_peers.py --snow cemaneige``) in front of
GR4J, against GRsuite's ``CemaNeigeGR4J``. On a busy machine ``--repeat 3`` keeps each variant's fastest of three calibrations per basin.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import xarray as xr
from calibration_peers import CAL, SNOW_CHOICES, WARMUP, kge, run_grsuite
from common import CARAVAN, argument_parser

import basinsx
import basinsx.models as bm
from basinsx.calibration.optimize import PRIORS, calibrate_basin
from basinsx.regional import donor_params

PRIOR = PRIORS["gr4j"]
SIMILAR = "similar basins"  # stands for the donor parameters of the basin at hand
#: Caravan's climate indices and HydroATLAS attributes: climate, elevation, slope, land cover, soil, karst.
ATTRS = ["p_mean", "pet_mean", "aridity", "frac_snow", "moisture_index", "seasonality", "high_prec_freq",
         "high_prec_dur", "low_prec_freq", "low_prec_dur", "ele_mt_sav", "slp_dg_sav", "for_pc_sse", "cly_pc_sav",
         "snd_pc_sav", "slt_pc_sav", "kar_pc_sse", "soc_th_sav"]
VARIANTS = {
    "default": dict(prior=PRIOR),
    "k1": dict(n_starts=1, prior=PRIOR),
    "k2": dict(n_starts=2, prior=PRIOR),
    "noprior": dict(),
    "noprior-k1": dict(n_starts=1),
    "noprior-k2": dict(n_starts=2),
    "noprior-s64": dict(n_screen=64),
    "lhs8": dict(n_screen=0, n_starts=8),
    "lm": dict(prior=PRIOR, optimizer="lm"),
    "tol2e-4": dict(prior=PRIOR, tol=2e-4),
    "checked": dict(prior=PRIOR),
    "similar": dict(prior=PRIOR, start=SIMILAR),
    "similar-k2": dict(n_starts=2, prior=PRIOR, start=SIMILAR),
    "similar-k1": dict(n_starts=1, prior=PRIOR, start=SIMILAR),
    "similar-s17": dict(n_screen=17, prior=PRIOR, start=SIMILAR),
    "similar-only": dict(n_screen=1, n_starts=1, start=SIMILAR),
}


class Checked:
    """GR4J seen through ``Model.run`` alone: without a ``kernel``, ``Problem`` runs it with all checks on every run."""

    def __init__(self, model):
        self.model, self.params, self.bounds, self.transforms = model, model.params, model.bounds, model.transforms

    def run(self, *args, **kwargs):
        return self.model.run(*args, **kwargs)


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--step", type=int, default=5, help="take every STEP-th of the 100 basins")
    parser.add_argument("--skip", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names")
    parser.add_argument("--donors", type=int, default=5, help="similar basins averaged for the similar-* variants")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time each variant this many times per basin (in turn) and keep the fastest")
    parser.add_argument("--snow", choices=SNOW_CHOICES, default="none", help="snow module in front of GR4J")
    parser.add_argument("--out", default="/tmp/calibration_levers.csv")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    snow = args.snow != "none" and args.snow
    model = bm.get("gr4j", snow=snow)
    inputs = ["prcp", "pet", "tmean"] if snow else ["prcp", "pet"]
    full = basinsx.open_dataset(CARAVAN, chunks=None)
    ds = full.sel(time=slice(WARMUP.start, CAL.stop))
    ds = ds.assign(pet=ds.hydro.pet("oudin"))[inputs + ["streamflow"]].astype("float64")
    basins = list(ds.basin.values)[args.skip::args.step]
    names = args.variants.split(",")
    if any(VARIANTS[n].get("start") is SIMILAR for n in names):
        similar = similar_params(model, ds, inputs, full[ATTRS], basins, args.donors)
    rows = []
    for k, b in enumerate([basins[0]] + basins):  # the first pass compiles (numba) and is dropped
        one = ds.sel(basin=b)
        forcing = np.vstack([one[v].values for v in inputs])
        obs = one.streamflow.values[365:]
        dates = one.indexes["time"].values.astype("datetime64[D]")
        i_warm, i_cal = np.arange(365), np.arange(365, forcing.shape[1])
        walls = {name: [] for name in names + ["grsuite"]}
        for _ in range(args.repeat):  # the variants in turn, each pass: load hits them alike
            for name in walls:
                t0 = time.perf_counter()
                if name == "grsuite":
                    theta, n = run_grsuite(dates, forcing[0], forcing[1], one.streamflow.values, i_warm, i_cal,
                                           temp=forcing[2] if snow else None)
                    n_plain = n
                else:
                    m = Checked(model) if name == "checked" else model
                    options = dict(VARIANTS[name])
                    if options.get("start") is SIMILAR:
                        options["start"] = similar[b]
                    res = calibrate_basin(m, forcing, obs, loss="kge", warmup=365, **options)
                    theta, n, n_plain = res["params"], res["n_evals"], res["n_plain"]
                walls[name].append(time.perf_counter() - t0)
                if len(walls[name]) == args.repeat:
                    rows.append({"basin": b, "method": name, "kge": kge(theta, forcing, obs, 365, model), "n_runs": n,
                                 "n_sens": n - n_plain, "wall_s": min(walls[name])})
        if k == 0:
            rows = []
            continue
        print(f"{k}/{len(basins)} {b} " + " ".join(f"{r['method']} {r['kge']:.3f}/{r['n_runs']}/"
                                                        f"{r['wall_s'] * 1e3:.0f}ms" for r in rows[-len(names) - 1:]),
              flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(args.out, index=False)
    summarize(df)


def similar_params(model, ds, inputs, attrs, basins, k):
    """For each of ``basins``: the donor parameters of its ``k`` nearest other basins, all calibrated by ``default``."""
    t0 = time.perf_counter()
    cal = []
    for b in ds.basin.values:
        one = ds.sel(basin=b)
        forcing = np.vstack([one[v].values for v in inputs])
        cal.append(calibrate_basin(model, forcing, one.streamflow.values[365:], loss="kge", warmup=365,
                                   **VARIANTS["default"])["params"])
    params = xr.DataArray(np.array(cal), dims=("basin", "param"),
                          coords={"basin": ds.basin.values, "param": list(model.params)})
    print(f"donors: {len(cal)} basins calibrated by the default in {time.perf_counter() - t0:.1f} s", flush=True)
    out = {}
    for b in basins:
        others = attrs.drop_sel(basin=b)
        out[b] = donor_params(others, params, attrs.sel(basin=[b]), ATTRS, k=k).values[0]
    return out


def summarize(df):
    """Per variant: KGE quartiles, runs, wall time and the per-basin comparison with GRsuite."""
    wide = df.pivot(index="basin", columns="method")
    g_kge, g_wall = wide["kge"]["grsuite"], wide["wall_s"]["grsuite"]
    print(f"\n{len(wide)} basins; ratios are per basin, then the median")
    print(f"{'method':18s} {'KGE q25/med/q75':>21s} {'runs':>5s} {'sens':>5s} {'ms/basin':>9s} {'GRsuite/it':>10s} "
          f"{'dKGE med':>9s} {'< -0.01':>7s} {'worst':>7s}")
    for name in df["method"].unique():
        k = wide["kge"][name]
        d = k - g_kge
        print(f"{name:18s} {k.quantile(0.25):6.3f} / {k.median():.3f} / {k.quantile(0.75):.3f} "
              f"{wide['n_runs'][name].median():5.0f} {wide['n_sens'][name].median():5.0f} "
              f"{wide['wall_s'][name].median() * 1e3:9.1f} {(g_wall / wide['wall_s'][name]).median():10.2f} "
              f"{d.median():+9.4f} {int((d < -0.01).sum()):7d} {d.min():+7.3f}")


if __name__ == "__main__":
    main()
