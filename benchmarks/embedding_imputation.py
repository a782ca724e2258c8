"""Experiment 1: attribute imputation with KGSSL on 100 CAMELS basins, against a scikit-learn baseline.

(a) training basins, held-out period: fit with the 27 attributes of all basins on water years
    1999-2009 (last 20 % of it for early stopping), predict from windows of 1989-1999.
(b) unseen basins: 5-fold over basins; fit on 80 basins (1999-2009), predict the other 20 from
    their 1989-1999 windows.
(c) unlabelled basins (``--settings unlabelled``): the same folds, but the other 20 basins' series
    stay in training without their attributes (what ``ds.hydro.embed`` does when some basins of a
    data set lack attributes).
Baseline: ridge regression and random forest (scikit-learn) from climate statistics and flow
signatures of the same input data and periods.

Run: ``python benchmarks/embedding_imputation.py [--epochs N] [--config JSON] [--out docs/benchmarks/embedding_imputation.json]``
(``--caravan`` and ``--attributes`` point it at another Caravan folder, e.g. all CAMELS basins.)
"""

import itertools
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from common import CAMELS_ATTRIBUTES, CARAVAN, PET_CHOICES, RESULTS, argument_parser
from embedding_data import load

from basinsx.embedding import KGSSL, evaluate
from basinsx.io.sample import KRATZERT_ATTRIBUTES

TRAIN = ("1999-10-01", "2009-09-30")
TEST = ("1989-10-01", "1999-09-30")
ATTRS = list(KRATZERT_ATTRIBUTES)


def table(a: np.ndarray) -> list:
    """Predictions as nested lists at 6 significant digits (keeps the saved JSON small)."""
    return [[float(f"{x:.6g}") for x in row] for row in a]


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


def fit_predict(ds_train, ds_test, config, seed, strides):
    """KGSSL fitted on ``ds_train`` (TRAIN) -> (model, {suffix: attributes of ``ds_test`` (TEST) at that stride})."""
    model = KGSSL(progress=False, **{**config, "seed": seed}).fit(ds_train, attributes=ATTRS, period=TRAIN)
    return model, {suffix: model.transform(ds_test, period=TEST, stride=stride).attributes_pred.values
                   for suffix, stride in strides.items()}


def best_epoch(model) -> int:
    """The epoch whose weights the fitted model keeps (lowest monitored loss)."""
    losses = [h["train_loss"] if h["val_loss"] is None else h["val_loss"] for h in model.history]
    return int(np.argmin(losses)) + 1


def add_ensembles(preds: dict, seeds, suffixes) -> None:
    """Mean prediction of every subset of two or more seeds (per inference stride); ``kgssl`` = all seeds.

    Embeddings of different seeds are not aligned, so the ensemble averages attribute predictions.
    """
    for suffix in suffixes:
        members = [s for s in seeds if f"kgssl_seed{s}{suffix}" in preds]
        for k in range(2, len(members) + 1):
            for combo in itertools.combinations(members, k):
                preds[f"kgssl_seeds{'+'.join(map(str, combo))}{suffix}"] = np.mean(
                    [preds[f"kgssl_seed{s}{suffix}"] for s in combo], axis=0)
        if members:
            preds[f"kgssl{suffix}"] = np.mean([preds[f"kgssl_seed{s}{suffix}"] for s in members], axis=0)


def reused_predictions(paths, setting, fold_of_basin, config) -> dict:
    """Per-seed predictions of earlier runs of ``setting`` made with the same folds and KGSSL configuration."""
    out = {}
    for path in paths:
        run = json.loads(Path(path).read_text())
        if setting not in run:
            continue
        saved_run = run[setting]
        saved = {k: v for k, v in saved_run["config"].items() if k not in ("seed", "progress")}
        differs = sorted(k for k, v in saved.items() if config.get(k) != v)
        if saved_run["fold_of_basin"] != fold_of_basin or differs:
            raise ValueError(f"{path}: other folds or KGSSL options {differs}; cannot reuse its predictions")
        preds = saved_run["predictions"]
        per_seed = {k: np.array(v) for k, v in preds.items() if re.fullmatch(r"kgssl_seed\d+(_s\d+)?", k)}
        if not per_seed:  # single-seed run: its ``kgssl`` predictions belong to the configured seed
            per_seed = {f"kgssl_seed{saved_run['config']['seed']}": np.array(preds["kgssl"])}
        out.update(per_seed)
    return out


def main(argv=None):
    ap = argument_parser(__doc__)
    ap.add_argument("--epochs", type=int, help="maximum epochs (default: KGSSL's)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--config", default="{}", help="JSON object of KGSSL options overriding the defaults")
    ap.add_argument("--settings", nargs="*", default=["period", "unseen"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="one KGSSL per seed; 'kgssl' is the mean of their attribute predictions")
    ap.add_argument("--inference-strides", type=int, nargs="*", default=[],
                    help="extra inference strides (days) scored as 'kgssl..._s<stride>'")
    ap.add_argument("--reuse", nargs="*", default=[],
                    help="earlier output JSON whose per-seed unseen or unlabelled predictions (same folds and config) are reused")
    ap.add_argument("--fold-groups", nargs="*", default=[],
                    help="comma-separated fold ids, e.g. 0,1 2,3,4: unseen summaries over those folds' basins too")
    ap.add_argument("--out", default=str(RESULTS / "embedding_imputation.json"))
    ap.add_argument("--caravan", default=str(CARAVAN),
                    help="Caravan folder (default: the 100 basins of ../shared/data; a full one runs at paper scale)")
    ap.add_argument("--attributes", default=str(CAMELS_ATTRIBUTES),
                    help="folder of the CAMELS attribute tables")
    ap.add_argument("--pet", choices=PET_CHOICES, default="era5",
                    help="PET input of KGSSL and the baselines: Caravan's ERA5-Land or Oudin's formula")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = json.loads(args.config)
    if args.epochs is not None:
        config["epochs"] = args.epochs
    full_config = {k: v for k, v in KGSSL(**config).config.items() if k not in ("inputs", "seed", "progress")}
    strides = {"": None, **{f"_s{s}": s for s in args.inference_strides}}
    ds = load(args.caravan, args.attributes, pet=args.pet)
    basins = ds.basin.values
    truth = ds[ATTRS]
    y = np.stack([ds[a].values for a in ATTRS], 1)
    results = {"command": " ".join(sys.argv), "basins": [str(b) for b in basins], "train": TRAIN, "test": TEST,
               "epochs": args.epochs,
               "seeds": args.seeds}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save():
        out.write_text(json.dumps(results))

    f_train, f_test = features(ds, TRAIN), features(ds, TEST)
    if "period" in args.settings:  # (a) training basins, held-out period
        res = results["period"] = {"fit_seconds": [], "epochs_run": [], "best_epoch": [], "config": full_config}
        preds = {}
        for seed in args.seeds:
            t0 = time.perf_counter()
            model, pred = fit_predict(ds, ds, config, seed, strides)
            res["fit_seconds"].append(time.perf_counter() - t0)
            res["epochs_run"].append(len(model.history))
            res["best_epoch"].append(best_epoch(model))
            preds.update({f"kgssl_seed{seed}{k}": v for k, v in pred.items()})
        add_ensembles(preds, args.seeds, strides)
        for kind in ("ridge", "forest"):
            preds[kind] = baseline_predict(f_train, y, f_test, kind)
        res.update({name: summary(evaluate(as_pred(v, basins), truth)) for name, v in preds.items()})
        save()

    # (b) unseen basins, k-fold over basins; (c) "unlabelled": the same folds, but the test basins'
    # series stay in training (self-supervised losses only) while their attributes are withheld,
    # as when ds.hydro.embed imputes the attributes a data set lacks for some basins
    for setting in ("unseen", "unlabelled"):
        if setting not in args.settings:
            continue
        rng = np.random.default_rng(0)
        folds = np.array_split(rng.permutation(len(basins)), args.folds)
        fold_of_basin = [next(i for i, f in enumerate(folds) if b in f) for b in range(len(basins))]
        preds = {name: v for name, v in reused_predictions(args.reuse, setting, fold_of_basin, full_config).items()
                 if int(name.removeprefix("kgssl_seed").split("_")[0]) in args.seeds}
        reused = sorted(preds)
        for kind in ("ridge", "forest"):
            preds[kind] = np.full((len(basins), len(ATTRS)), np.nan)
        for i, test_idx in enumerate(folds):
            train_idx = np.setdiff1d(np.arange(len(basins)), test_idx)
            for kind in ("ridge", "forest"):
                preds[kind][test_idx] = baseline_predict(f_train[train_idx], y[train_idx], f_test[test_idx], kind)
        res = results[setting] = {"fold_of_basin": fold_of_basin, "reused": reused, "epochs_run": {},
                                   "best_epoch": {}, "fit_seconds": {},
                                   "config": full_config, "predictions": {}}
        for seed in args.seeds:  # seed by seed, so that an interrupted run leaves complete seeds
            if f"kgssl_seed{seed}" in preds:
                continue
            for i, test_idx in enumerate(folds):
                train_idx = np.setdiff1d(np.arange(len(basins)), test_idx)
                t0 = time.perf_counter()
                fit_on = (ds.isel(basin=train_idx) if setting == "unseen" else
                          ds.assign({a: ds[a].where(~ds.basin.isin(basins[test_idx])) for a in ATTRS}))
                model, pred = fit_predict(fit_on, ds.isel(basin=test_idx), config, seed, strides)
                res["fit_seconds"].setdefault(str(seed), []).append(round(time.perf_counter() - t0, 1))
                res["epochs_run"].setdefault(str(seed), []).append(len(model.history))
                res["best_epoch"].setdefault(str(seed), []).append(best_epoch(model))
                for suffix, v in pred.items():
                    preds.setdefault(f"kgssl_seed{seed}{suffix}", np.full((len(basins), len(ATTRS)), np.nan))[test_idx] = v
                res["predictions"] = {k: table(v) for k, v in preds.items()}
                save()
                print(f"{setting}: seed {seed} fold {i + 1}/{args.folds} done", flush=True)
        add_ensembles(preds, args.seeds, strides)
        # sub-ensembles are means of the saved seeds: their scores are kept, their predictions not
        res["predictions"] = {k: table(v) for k, v in preds.items() if not k.startswith("kgssl_seeds")}
        res.update({name: summary(evaluate(as_pred(v, basins), truth)) for name, v in preds.items()})
        for group in args.fold_groups:
            idx = np.flatnonzero(np.isin(fold_of_basin, [int(f) for f in group.split(",")]))
            res[f"folds {group}"] = {name: summary(evaluate(as_pred(v[idx], basins[idx]), truth.isel(basin=idx)))
                                     for name, v in preds.items()}
    save()
    for setting in ("period", "unseen", "unlabelled"):
        for name, s in results.get(setting, {}).items():
            if isinstance(s, dict) and "n_r_gt_0.8" in s:
                print(f"{setting:10s} {name:24s} r>0.8: {s['n_r_gt_0.8']:2d}  r>0.9: {s['n_r_gt_0.9']:2d}  "
                      f"median r {s['median_r']:.3f}  mean r {s['mean_r']:.3f}")
        for group, by_name in results.get(setting, {}).items():
            if group.startswith("folds "):
                for name, s in by_name.items():
                    print(f"{group:12s} {name:24s} r>0.8: {s['n_r_gt_0.8']:2d}  r>0.9: {s['n_r_gt_0.9']:2d}  "
                          f"median r {s['median_r']:.3f}")


if __name__ == "__main__":
    main()
