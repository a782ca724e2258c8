"""Experiment 1: attribute imputation with KGSSL on 100 CAMELS basins, against a scikit-learn baseline.

(a) training basins, held-out period: fit with the 27 attributes of all basins on water years
    1999-2009 (last 20 % of it for early stopping), predict from windows of 1989-1999.
(b) unseen basins: 5-fold over basins; fit on 80 basins (1999-2009), predict the other 20 from
    their 1989-1999 windows.
Baseline: ridge regression and random forest (scikit-learn) from climate statistics and flow
signatures of the same input data and periods.

Run: ``python benchmarks/embedding_imputation.py [--epochs N] [--config JSON] [--out docs/benchmarks/embedding_imputation.json]``
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embedding_data import load  # noqa: E402

from basinsx.embedding import KGSSL, evaluate  # noqa: E402
from basinsx.sample import KRATZERT_ATTRIBUTES  # noqa: E402

TRAIN = ("1999-10-01", "2009-09-30")
TEST = ("1989-10-01", "1999-09-30")
ATTRS = list(KRATZERT_ATTRIBUTES)


def features(ds: xr.Dataset, period) -> np.ndarray:
    """Climate statistics and flow signatures per basin (the non-deep baseline's inputs)."""
    sub = ds.sel(time=slice(*period))
    p, t, e, q = (sub[v].values.astype(np.float64) for v in ("prcp", "tmean", "pet", "streamflow"))
    month = sub.time.dt.month.values
    summer = np.isin(month, [6, 7, 8])
    winter = np.isin(month, [12, 1, 2])
    pm = p.mean(1)
    out = {
        "p_mean": pm, "pet_mean": e.mean(1), "t_mean": t.mean(1), "aridity": e.mean(1) / pm,
        "p_summer_winter": p[:, summer].mean(1) / p[:, winter].mean(1),
        "t_amplitude": t[:, summer].mean(1) - t[:, winter].mean(1),
        "frac_snow": (p * (t < 0)).sum(1) / p.sum(1),
        "high_p_freq": (p >= 5 * pm[:, None]).mean(1), "low_p_freq": (p < 1).mean(1),
        "p_std": p.std(1),
    }
    qm = np.nanmean(q, 1)
    logq = np.log10(np.clip(q, 0, None) + 0.005)
    q30 = xr.DataArray(q, dims=("b", "t")).rolling(t=30, min_periods=20).mean().values
    out.update({
        "q_mean": qm, "runoff_ratio": qm / pm, "q5": np.nanpercentile(q, 5, 1), "q95": np.nanpercentile(q, 95, 1),
        "q_low_frac": np.nanmean(q < 0.2 * qm[:, None], 1), "q_high_frac": np.nanmean(q > 9 * qm[:, None], 1),
        "logq_std": np.nanstd(logq, 1), "bfi_proxy": np.nanmin(q30, 1) / qm,
        "q_lag1": np.array([np.ma.corrcoef(np.ma.masked_invalid(r[:-1]), np.ma.masked_invalid(r[1:]))[0, 1] for r in logq]),
        "q_summer_winter": np.nanmean(q[:, summer], 1) / np.nanmean(q[:, winter], 1),
    })
    return np.stack([np.nan_to_num(v, nan=0.0, posinf=0.0) for v in out.values()], axis=1)


def baseline_predict(x_train, y_train, x_test, kind):
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "ridge":
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    else:
        model = RandomForestRegressor(n_estimators=300, min_samples_leaf=2, random_state=0, n_jobs=1)
    y_mean, y_std = np.nanmean(y_train, 0), np.nanstd(y_train, 0)
    model.fit(x_train, (y_train - y_mean) / y_std)
    return model.predict(x_test) * y_std + y_mean


def as_pred(values, basins):
    return xr.DataArray(values, dims=("basin", "attribute"), coords={"basin": basins, "attribute": ATTRS})


def summary(scores: xr.Dataset) -> dict:
    r = scores.r
    return {"n_r_gt_0.8": int((r > 0.8).sum()), "n_r_gt_0.9": int((r > 0.9).sum()),
            "median_r": float(r.median()), "mean_r": float(r.mean()), "median_rmse_z": float(scores.rmse.median()),
            "r": {a: round(float(v), 3) for a, v in zip(ATTRS, r.values)}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, help="maximum epochs (default: KGSSL's)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--config", default="{}", help="JSON object of KGSSL options overriding the defaults")
    ap.add_argument("--settings", nargs="*", default=["period", "unseen"])
    ap.add_argument("--out", default="docs/benchmarks/embedding_imputation.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = json.loads(args.config)
    if args.epochs is not None:
        config["epochs"] = args.epochs
    ds = load()
    basins = ds.basin.values
    truth = ds[ATTRS]
    y = np.stack([ds[a].values for a in ATTRS], 1)
    results = {"command": " ".join(sys.argv), "train": TRAIN, "test": TEST, "epochs": args.epochs}

    f_train, f_test = features(ds, TRAIN), features(ds, TEST)
    if "period" in args.settings:  # (a) training basins, held-out period
        t0 = time.perf_counter()
        model = KGSSL(progress=False, **config).fit(ds, attributes=ATTRS, period=TRAIN)
        fit_s = time.perf_counter() - t0
        pred = model.transform(ds, period=TEST).compute()
        results["period"] = {"kgssl": summary(evaluate(pred, truth)), "fit_seconds": fit_s,
                             "epochs_run": len(model.history),
                             "config": {k: v for k, v in model.config.items() if k != "inputs"}}
        for kind in ("ridge", "forest"):
            base = as_pred(baseline_predict(f_train, y, f_test, kind), basins)
            results["period"][kind] = summary(evaluate(base, truth))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))

    if "unseen" in args.settings:  # (b) unseen basins, k-fold over basins
        rng = np.random.default_rng(0)
        folds = np.array_split(rng.permutation(len(basins)), args.folds)
        kg = np.full((len(basins), len(ATTRS)), np.nan)
        base = {"ridge": kg.copy(), "forest": kg.copy()}
        epochs_run = []
        for i, test_idx in enumerate(folds):
            train_idx = np.setdiff1d(np.arange(len(basins)), test_idx)
            m = KGSSL(progress=False, **config).fit(
                ds.isel(basin=train_idx), attributes=ATTRS, period=TRAIN)
            epochs_run.append(len(m.history))
            kg[test_idx] = m.transform(ds.isel(basin=test_idx), period=TEST).attributes_pred.values
            for kind in base:
                base[kind][test_idx] = baseline_predict(f_train[train_idx], y[train_idx], f_test[test_idx], kind)
            print(f"fold {i + 1}/{args.folds} done", flush=True)
        results["unseen"] = {"kgssl": summary(evaluate(as_pred(kg, basins), truth)), "epochs_run": epochs_run,
                             "fold_of_basin": [next(i for i, f in enumerate(folds) if b in f) for b in range(len(basins))],
                             "predictions": {"kgssl": kg.tolist(), **{k: v.tolist() for k, v in base.items()}},
                             "config": {k: v for k, v in m.config.items() if k != "inputs"}}
        for kind in base:
            results["unseen"][kind] = summary(evaluate(as_pred(base[kind], basins), truth))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    for setting in ("period", "unseen"):
        for name in ("kgssl", "ridge", "forest"):
            if setting in results:
                s = results[setting][name]
                print(f"{setting:7s} {name:7s} r>0.8: {s['n_r_gt_0.8']:2d}  r>0.9: {s['n_r_gt_0.9']:2d}  "
                      f"median r {s['median_r']:.3f}  mean r {s['mean_r']:.3f}")


if __name__ == "__main__":
    main()
