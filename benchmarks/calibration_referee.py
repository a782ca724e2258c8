"""Where calibration methods disagree: the best optimum a long global search finds, and which method reached it.

Reads the per-basin CSV of ``calibration_peers.py`` and, for every basin where two methods'
calibration KGE differ by more than ``--margin``, searches long: L-BFGS-B from ``--starts``
Latin-hypercube points plus from each method's own parameters (no screening, every start
run to convergence). Prints each method's KGE, the best found, and which methods reached it
(within 0.001). Same data, model, bounds, loss, periods, warm-up and PET as the CSV's run.

    python benchmarks/calibration_referee.py /tmp/calibration_peers_oudin.csv --pet oudin
    python benchmarks/calibration_referee.py /tmp/calibration_peers_cemaneige.csv --pet oudin --snow cemaneige
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from calibration_peers import CAL, SNOW_CHOICES, WARMUP, kge
from common import PET_CHOICES, argument_parser, caravan

import basinsx.models as bm
from basinsx.calibration.optimize import Problem, calibrate_basin, lbfgsb

REACHED = 0.001


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("csv", help="output of calibration_peers.py")
    parser.add_argument("--pet", choices=PET_CHOICES, default="era5", help="the PET of the CSV's run")
    parser.add_argument("--margin", type=float, default=0.01, help="KGE difference that counts as a disagreement")
    parser.add_argument("--starts", type=int, default=64, help="Latin-hypercube starts of the long search")
    parser.add_argument("--snow", choices=SNOW_CHOICES, default="none", help="the snow module of the CSV's run")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    model = bm.get("gr4j", snow=args.snow != "none" and args.snow)
    inputs = ["prcp", "pet", "tmean"] if args.snow != "none" else ["prcp", "pet"]
    df = pd.read_csv(args.csv, dtype={"basin": str}).drop_duplicates(["basin", "method"], keep="last")
    wide = df.pivot(index="basin", columns="method", values="kge_cal")
    spread = wide.max(axis=1) - wide.min(axis=1)
    basins = list(spread[spread > args.margin].index)
    print(f"{len(basins)} of {len(wide)} basins where the methods differ by more than {args.margin}")
    ds = caravan(args.pet, clip_pet=True)[inputs + ["streamflow"]].sel(time=slice(WARMUP.start, CAL.stop))
    rows = []
    for b in basins:
        one = ds.sel(basin=b).astype("float64")
        forcing = np.vstack([one[v].values for v in inputs])
        obs = one.streamflow.values[365:]
        res = calibrate_basin(model, forcing, obs, loss="kge", warmup=365, n_screen=0, n_starts=args.starts, seed=1)
        best = kge(res["params"], forcing, obs, 365, model)
        problem = Problem(model, forcing, obs, "kge", warmup=365)
        for method in wide.columns:  # polish each method's own end point too
            theta = df[(df.basin == b) & (df.method == method)][list(model.params)].values[0]
            u = lbfgsb(problem, problem.unit(theta))[0]
            best = max(best, kge(problem.theta(u), forcing, obs, 365, model))
        row = {"basin": b, "best": best, **wide.loc[b].to_dict()}
        row["reached"] = ",".join(m for m in wide.columns if row[m] >= best - REACHED) or "none"
        rows.append(row)
        print(f"{b} best {best:.4f} " + " ".join(f"{m} {row[m]:.4f}" for m in wide.columns)
              + f" reached by: {row['reached']}", flush=True)
    out = pd.DataFrame(rows)
    for m in wide.columns:
        print(f"{m}: reached the best optimum in {int(out['reached'].str.contains(m).sum())} of {len(out)} basins")


if __name__ == "__main__":
    main()
