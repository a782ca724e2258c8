"""How sure is an imputation comparison? A paired bootstrap over basins of saved predictions for new basins.

With 100 basins and 27 attributes, several of them near r = 0.8, one method "winning" the
count of attributes above 0.8 can be chance. This resamples the basins (with replacement, the
same draw for every method), recomputes each attribute's Pearson r and RMSE (z) per method,
and reports how often method A scores above method B on each summary, with 95 % intervals
of the difference.

Run: ``python benchmarks/embedding_bootstrap.py docs/benchmarks/embedding_imputation_seeds5.json --a kgssl --b ridge forest``
"""

import json
from pathlib import Path

import numpy as np
import xarray as xr
from common import CAMELS_ATTRIBUTES, CARAVAN, argument_parser

import basinsx
from basinsx.embedding import evaluate
from basinsx.io.camels_us import read_attributes
from basinsx.io.sample import KRATZERT_ATTRIBUTES

ATTRS = list(KRATZERT_ATTRIBUTES)


def truth_table(basins, attributes) -> np.ndarray:
    """The 27 CAMELS attributes ``(basin, attribute)`` in the order of the predictions.

    ``basins`` is the list the imputation run saved; runs that did not save one used the 100
    basins of ``../shared/data/caravan`` in the order ``read_caravan`` gives them.
    """
    if basins is None:
        basins = [str(b) for b in basinsx.read_caravan(CARAVAN).basin.values]
    return read_attributes(attributes).loc[basins, ATTRS].to_numpy(float)


def scores(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r and RMSE / std(truth) per attribute over axis -2 (basins); NaN pairs skipped."""
    ok = np.isfinite(pred) & np.isfinite(truth)
    n = ok.sum(-2)
    p, t = np.where(ok, pred, 0.0), np.where(ok, truth, 0.0)
    pm, tm = p.sum(-2) / n, t.sum(-2) / n
    dp, dt = np.where(ok, p - pm[..., None, :], 0.0), np.where(ok, t - tm[..., None, :], 0.0)
    r = (dp * dt).sum(-2) / np.sqrt((dp**2).sum(-2) * (dt**2).sum(-2))
    rmse = np.sqrt((np.where(ok, p - t, 0.0) ** 2).sum(-2) / n) / np.sqrt((dt**2).sum(-2) / n)
    return r, rmse


def summaries(r: np.ndarray, rmse: np.ndarray) -> dict:
    return {"r > 0.8": (r > 0.8).sum(-1), "r > 0.9": (r > 0.9).sum(-1), "median r": np.median(r, -1),
            "mean r": r.mean(-1), "median RMSE (z)": -np.median(rmse, -1)}  # negated: higher is better


def main(argv=None):
    ap = argument_parser(__doc__)
    ap.add_argument("json", help="output of embedding_imputation.py with unseen or unlabelled predictions")
    ap.add_argument("--a", default="kgssl")
    ap.add_argument("--b", nargs="+", default=["ridge", "forest"])
    ap.add_argument("--setting", default="unseen", help="unseen or unlabelled")
    ap.add_argument("--draws", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attributes", default=str(CAMELS_ATTRIBUTES),
                    help="folder of the CAMELS attribute tables")
    args = ap.parse_args(argv)

    run = json.loads(Path(args.json).read_text())
    preds = run[args.setting]["predictions"]
    truth = truth_table(run.get("basins"), args.attributes)
    # the vectorised scores must equal the library's evaluate on the full sample
    for name in [args.a, *args.b]:
        ref = evaluate(xr.DataArray(np.array(preds[name]), dims=("basin", "attribute"),
                                    coords={"attribute": ATTRS}),
                       xr.DataArray(truth, dims=("basin", "attribute"), coords={"attribute": ATTRS}))
        np.testing.assert_allclose(scores(np.array(preds[name]), truth)[0], ref.r.values, atol=1e-10)

    rng = np.random.default_rng(args.seed)
    idx = rng.integers(0, len(truth), size=(args.draws, len(truth)))
    t = truth[idx]
    full_scores = {name: scores(np.array(preds[name]), truth) for name in [args.a, *args.b]}
    boot_scores = {name: scores(np.array(preds[name])[idx], t) for name in [args.a, *args.b]}
    full = {name: summaries(*v) for name, v in full_scores.items()}
    boot = {name: summaries(*v) for name, v in boot_scores.items()}
    print(f"{args.json}: paired bootstrap over {len(truth)} basins, {args.draws} draws\n")
    for b in args.b:
        print(f"| summary | {args.a} | {b} | difference | 95 % interval | P({args.a} > {b}) | P(tie) |")
        print("|---|---|---|---|---|---|---|")
        for key in full[args.a]:
            sign = -1 if key.startswith("median RMSE") else 1
            d = boot[args.a][key] - boot[b][key]
            lo, hi = sorted(sign * np.percentile(d, [2.5, 97.5], method="nearest"))
            fa, fb = sign * full[args.a][key], sign * full[b][key]
            fmt = ".0f" if key.startswith("r >") else ".3f"
            print(f"| {key} | {fa:{fmt}} | {fb:{fmt}} | {fa - fb:+{fmt}} | [{lo:+{fmt}}, {hi:+{fmt}}] | "
                  f"{(d > 0).mean():.2f} | {(d == 0).mean():.2f} |")
        # attribute by attribute: how many of the 27 r are higher for A, and is that a majority
        wins = (boot_scores[args.a][0] > boot_scores[b][0]).sum(-1)
        w = (full_scores[args.a][0] > full_scores[b][0]).sum()
        lo, hi = np.percentile(wins, [2.5, 97.5], method="nearest")
        print(f"| attributes with higher r | {w} of {len(ATTRS)} | | | [{lo}, {hi}] | "
              f"P(majority) {(wins > len(ATTRS) / 2).mean():.2f} | |")
        print()


if __name__ == "__main__":
    main()
