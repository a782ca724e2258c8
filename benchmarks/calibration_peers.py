"""Benchmark 2: GR4J calibration quality and cost, basinsx vs GRsuite (Michel) vs spotpy SCE-UA.

Same data (Caravan CAMELS-US, ERA5-Land forcing, ``../shared/data/caravan``), same model
(the discrete daily GR4J; basinsx's ``gr4j`` equals GRsuite's to rounding, 1e-12), same parameter
bounds, same loss (1 - KGE 2009). Warm-up 1981, calibration 1982-1995, validation
1996-2014 (warm-up 1995). Every method's parameters are scored by the same code.

``--pet oudin`` replaces the ERA5-Land potential evaporation of Caravan v1 (several times
the CAMELS PET on average, which drives GR4J's production store to its lower bound) by
Oudin et al. (2005) PET from ``tmean`` and latitude, the PET GR4J was designed with.

``--snow cemaneige`` calibrates GR4J with CemaNeige (``calibrate(..., snow="cemaneige")``, six
parameters) against GRsuite's ``CemaNeigeGR4J`` (SCE-UA on the same model). Caravan has elevation
statistics only (``ele_mt_*``), no hypsometry, so basinsx runs CemaNeige on one layer with the
basin forcing; GRsuite gets the same single layer (precipitation, ``tmean`` and airGR's USACE
solid fraction ``1 - (T + 1)/4`` clipped to [0, 1]), and both compute the melt threshold from
the 1981-1995 forcing they calibrate on (GRsuite's inputs end in 1995 for every model).

Each basin is calibrated by the three methods one after the other in the same process,
so the wall-time ratios are taken under the same machine load. Results are appended to a
CSV per basin (the run can be resumed) and summarised at the end.

    python benchmarks/calibration_peers.py --basins 100 --out /tmp/calibration_peers.csv
    python benchmarks/calibration_peers.py --basins 100 --pet oudin --out /tmp/calibration_peers_oudin.csv
    python benchmarks/calibration_peers.py --pet oudin --snow cemaneige --methods basinsx,grsuite \
        --out /tmp/calibration_peers_cemaneige.csv
"""

from __future__ import annotations

import csv
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from common import PET_CHOICES, argument_parser, caravan

import basinsx.models as bm
from basinsx.calibration import calibrate
from basinsx.calibration.losses import KGE

WARMUP = slice("1981-01-01", "1981-12-31")
CAL = slice("1982-01-01", "1995-12-31")
VAL_WARMUP = slice("1995-01-01", "1995-12-31")
VAL = slice("1996-01-01", "2014-12-31")
MODEL = bm.get("gr4j")
SNOW_CHOICES = ("none", "cemaneige")


def kge(theta, forcing, obs, warmup, model=MODEL):
    q = model.run(theta, forcing, warmup=warmup, sensitivities=False)[0]
    return 1.0 - KGE()(q, obs)[0]


def run_basinsx(ds, snow=False, **options):
    """``calibrate`` on one basin as a user calls it (its defaults, unless ``options`` set them)."""
    out = calibrate(ds, model="gr4j", loss="kge", period=CAL, warmup=365, snow=snow, **options)
    return out["params"].values[0], int(out["n_evals"].values[0])


def run_grsuite(dates, p, e, obs, i_warm, i_cal, temp=None):
    """GRsuite's Michel calibration of GR4J, or with ``temp`` (mean temperature) of CemaNeigeGR4J on one layer."""
    import grsuite

    if temp is None:
        name, bounds, im = "GR4J", MODEL.bounds, grsuite.InputsModel(dates, precip=p, pot_evap=e)
    else:
        name, bounds = "CemaNeigeGR4J", bm.get("gr4j", snow="cemaneige").bounds
        frac = np.clip(1.0 - (temp + 1.0) / 4.0, 0.0, 1.0)  # airGR's USACE solid fraction, as basinsx's one layer
        im = grsuite.InputsModel(dates, precip=p, pot_evap=e, temp_mean=temp, layer_precip=[p],
                                 layer_temp_mean=[temp], layer_frac_solid_precip=[frac], z_layers=np.zeros(1))
    ro = grsuite.RunOptions(im, name, ind_period_run=i_cal, ind_period_warmup=i_warm)
    crit = grsuite.InputsCrit("KGE", obs=obs[i_cal])
    opts = grsuite.CalibOptions(name, search_ranges=np.array(list(bounds.values())).T.copy())
    res = grsuite.calibration_michel(im, ro, crit, opts, verbose=False)
    return np.asarray(res.param_final_r, dtype=float), int(res.n_runs)


class SpotpySetup:
    """spotpy problem: ``model`` (numba, no sensitivities) on the calibration period, minimise 1 - KGE."""

    def __init__(self, forcing, obs, model=MODEL):
        import spotpy

        self.model = model
        self.params = [spotpy.parameter.Uniform(name, low=lo, high=hi) for name, (lo, hi) in model.bounds.items()]
        self.forcing, self.obs = forcing, obs

    def parameters(self):
        import spotpy

        return spotpy.parameter.generate(self.params)

    def simulation(self, vector):
        return self.model.run(np.asarray(vector, dtype=float), self.forcing, warmup=365, sensitivities=False)[0]

    def evaluation(self):
        return self.obs

    def objectivefunction(self, simulation, evaluation):
        return KGE()(np.asarray(simulation), evaluation)[0]


def run_spotpy(forcing, obs, repetitions, seed, model=MODEL):
    import spotpy

    np.random.seed(seed)  # spotpy draws from numpy's global generator
    sampler = spotpy.algorithms.sceua(SpotpySetup(forcing, obs, model), dbformat="ram", save_sim=False)
    sampler.sample(repetitions, ngs=2 * len(model.params), kstop=10, pcento=1e-4, peps=1e-3)
    # The in-memory database keeps a subset of the runs; the status tracks the best one.
    return np.asarray(sampler.status.params_min, dtype=float), int(sampler.status.rep)


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--basins", type=int, default=100, help="number of basins (the first N)")
    parser.add_argument("--skip", type=int, default=0, help="skip the first N basins")
    parser.add_argument("--step", type=int, default=1, help="take every STEP-th basin")
    parser.add_argument("--n-starts", type=int, help="basinsx starts (default: calibrate's)")
    parser.add_argument("--n-screen", type=int, help="basinsx screening runs (default: calibrate's; 0: none)")
    parser.add_argument("--repetitions", type=int, default=5000, help="SCE-UA budget of model runs")
    parser.add_argument("--methods", default="basinsx,grsuite,spotpy")
    parser.add_argument("--pet", choices=PET_CHOICES, default="era5")
    parser.add_argument("--snow", choices=SNOW_CHOICES, default="none", help="snow module in front of GR4J")
    parser.add_argument("--out", default="/tmp/calibration_peers.csv")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # ERA5-Land negative PET (clipped), spotpy chatter

    snow = args.snow != "none" and args.snow
    model = bm.get("gr4j", snow=snow)
    fields = ["basin", "method", "kge_cal", "kge_val", "n_runs", "wall_s"] + list(model.params)
    inputs = ["prcp", "pet", "tmean"] if snow else ["prcp", "pet"]
    ds = caravan(args.pet, clip_pet=True)[inputs + ["streamflow"]]
    basins = list(ds.basin.values)[args.skip::args.step][: args.basins]
    out = Path(args.out)
    done = set()
    if out.exists():
        done = set(map(tuple, pd.read_csv(out, dtype={"basin": str})[["basin", "method"]].values))
    methods = args.methods.split(",")
    with out.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fields)
        if not done:
            writer.writeheader()
        for k, b in enumerate(basins):
            one = ds.sel(basin=[b]).sel(time=slice(WARMUP.start, VAL.stop)).astype("float64")
            dates = one.indexes["time"].values.astype("datetime64[D]")
            f, obs = np.vstack([one[v].values[0] for v in inputs]), one["streamflow"].values[0]
            t = one.indexes["time"]
            i_warm = np.flatnonzero((t >= WARMUP.start) & (t <= WARMUP.stop))
            i_cal = np.flatnonzero((t >= CAL.start) & (t <= CAL.stop))
            i_vw = np.flatnonzero((t >= VAL_WARMUP.start) & (t <= VAL.stop))
            f_cal, o_cal = f[:, : i_cal[-1] + 1], obs[i_cal]
            f_val, o_val = f[:, i_vw], obs[i_vw][365:]
            for method in methods:
                if (b, method) in done:
                    continue
                t0 = time.perf_counter()
                if method == "basinsx":
                    options = {k: v for k, v in (("n_starts", args.n_starts), ("n_screen", args.n_screen))
                               if v is not None}
                    theta, n = run_basinsx(one.sel(time=slice(WARMUP.start, CAL.stop)), snow=snow, **options)
                elif method == "grsuite":
                    # inputs up to the end of calibration: CemaNeige's melt threshold is from the inputs given
                    cut = i_cal[-1] + 1
                    theta, n = run_grsuite(dates[:cut], f_cal[0], f_cal[1], obs[:cut], i_warm, i_cal,
                                           temp=f_cal[2] if snow else None)
                else:
                    theta, n = run_spotpy(f_cal, o_cal, args.repetitions, seed=k, model=model)
                wall = time.perf_counter() - t0
                row = {"basin": b, "method": method, "n_runs": n, "wall_s": round(wall, 3),
                       "kge_cal": kge(theta, f_cal, o_cal, 365, model),
                       "kge_val": kge(theta, f_val, o_val, 365, model), **dict(zip(model.params, theta))}
                writer.writerow(row)
                fh.flush()
                print(f"{k + 1}/{len(basins)} {b} {method:8s} KGE cal {row['kge_cal']:.3f} val {row['kge_val']:.3f} "
                      f"runs {n:5d} {wall:6.2f} s", flush=True)
    summarize(pd.read_csv(out, dtype={"basin": str}))


def summarize(df):
    """Print medians and quartiles per method and per-basin ratios against basinsx."""
    df = df.drop_duplicates(["basin", "method"], keep="last")
    complete = df.groupby("basin")["method"].nunique()
    df = df[df["basin"].isin(complete[complete == df["method"].nunique()].index)]
    print(f"\n{df['basin'].nunique()} basins with every method")
    q = lambda s: f"{s.quantile(0.25):.3f} / {s.median():.3f} / {s.quantile(0.75):.3f}"  # noqa: E731
    print(f"{'method':8s} {'KGE cal q25/med/q75':>24s} {'KGE val q25/med/q75':>24s} {'runs (median)':>14s} "
          f"{'wall s (median)':>16s} {'wall s (total)':>15s}")
    for method, g in df.groupby("method"):
        print(f"{method:8s} {q(g['kge_cal']):>24s} {q(g['kge_val']):>24s} {g['n_runs'].median():14.0f} "
              f"{g['wall_s'].median():16.2f} {g['wall_s'].sum():15.1f}")
    wide = df.pivot(index="basin", columns="method")
    if "basinsx" in wide["wall_s"]:
        for peer in [m for m in wide["wall_s"].columns if m != "basinsx"]:
            ratio = wide["wall_s"][peer] / wide["wall_s"]["basinsx"]
            dcal = wide["kge_cal"]["basinsx"] - wide["kge_cal"][peer]
            dval = wide["kge_val"]["basinsx"] - wide["kge_val"][peer]
            print(f"{peer} / basinsx wall time: median {ratio.median():.2f}x (quartiles {ratio.quantile(0.25):.2f}x, "
                  f"{ratio.quantile(0.75):.2f}x), ratio of medians "
                  f"{wide['wall_s'][peer].median() / wide['wall_s']['basinsx'].median():.2f}x, total "
                  f"{wide['wall_s'][peer].sum() / wide['wall_s']['basinsx'].sum():.2f}x; "
                  f"KGE basinsx - {peer}: cal median {dcal.median():+.4f} (basinsx >= {peer} - 0.005 in "
                  f"{(dcal >= -0.005).mean():.0%} of basins), val median {dval.median():+.4f}")
            worst = dcal.sort_values()
            print(f"  basinsx more than 0.01 below {peer} (calibration) in {int((dcal < -0.01).sum())} basins, "
                  f"above by more than 0.01 in {int((dcal > 0.01).sum())}; lowest: "
                  + ", ".join(f"{b} {d:+.3f}" for b, d in worst.head(5).items()))
        best = wide["kge_cal"].max(axis=1)
        print(f"basinsx within 0.005 of the best method's calibration KGE in "
              f"{(wide['kge_cal']['basinsx'] >= best - 0.005).mean():.0%} of basins")


if __name__ == "__main__":
    main()
