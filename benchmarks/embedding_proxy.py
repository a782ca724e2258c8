"""Cheap proxy runs used to choose KGSSL's defaults (imputation on 100 CAMELS basins).

One KGSSL configuration, fitted (a) on all basins for the held-out-period setting and/or (b)
on some of the 5 folds over basins of ``embedding_imputation.py`` (same split, same periods).
For each fitted model it prints the count of attributes with r > 0.8 and > 0.9 and the
median r for four readouts: the model's own ``attributes_pred`` (its ``readout``) and a
scikit-learn ``RidgeCV`` (one penalty for all attributes) on the mean embeddings of the
training basins, each with inference windows every 182 and every 30 days; then the ridge
and random-forest baselines on the same test basins.

Run: ``python benchmarks/embedding_proxy.py CONFIG_JSON EPOCHS SETTINGS [FOLDS]``, e.g.
``python benchmarks/embedding_proxy.py '{"w_sup": 30, "dropout": 0.3}' 150 unseen 0,1``
"""

import json
import time

import numpy as np
import torch
from common import argument_parser
from embedding_data import load
from embedding_imputation import ATTRS, TEST, TRAIN, as_pred, baseline_predict, features
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from basinsx.embedding import KGSSL, evaluate


def main(argv=None):
    ap = argument_parser(__doc__)
    ap.add_argument("config", type=json.loads, help="JSON object of KGSSL options")
    ap.add_argument("epochs", type=int)
    ap.add_argument("settings", help="comma-separated: period, unseen")
    ap.add_argument("folds", nargs="?", default="", help="comma-separated fold ids of the unseen setting")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg, epochs, settings = args.config, args.epochs, args.settings.split(",")
    folds = [int(f) for f in args.folds.split(",")] if args.folds else []
    ds = load()
    basins, truth = ds.basin.values, ds[ATTRS]
    y = np.stack([ds[a].values for a in ATTRS], 1)

    def score(pred, idx):
        r = evaluate(as_pred(pred, basins[idx]), truth.isel(basin=idx)).r
        return f"{int((r > 0.8).sum()):2d} {int((r > 0.9).sum()):2d} med {float(r.median()):.3f}"

    def readouts(m, tr_idx, te_idx):
        out = {}
        for stride in (182, 30):
            m.config["stride"] = stride
            te = m.transform(ds.isel(basin=te_idx), period=TEST)
            out[f"{m.config['readout']} s{stride}"] = te.attributes_pred.values
            tr = m.transform(ds.isel(basin=tr_idx), period=TRAIN)
            ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
            y_mean, y_std = np.nanmean(y[tr_idx], 0), np.nanstd(y[tr_idx], 0)
            ridge.fit(tr.embedding.values, (y[tr_idx] - y_mean) / y_std)
            out[f"RidgeCV s{stride}"] = ridge.predict(te.embedding.values) * y_std + y_mean
        m.config["stride"] = 182
        return out

    f_train, f_test = features(ds, TRAIN), features(ds, TEST)
    print("CONFIG", cfg, epochs, flush=True)
    if "period" in settings:
        t0 = time.time()
        m = KGSSL(epochs=epochs, progress=False, **cfg).fit(ds, attributes=ATTRS, period=TRAIN)
        print(f"period fit {time.time() - t0:.0f}s epochs {len(m.history)}", flush=True)
        idx = np.arange(len(basins))
        for k, v in readouts(m, idx, idx).items():
            print("period", k, score(v, idx), flush=True)
    if folds:
        split = np.array_split(np.random.default_rng(0).permutation(len(basins)), 5)
        te_all = np.concatenate([split[i] for i in folds])
        preds, base = {}, {"ridge": [], "forest": []}
        for i in folds:
            te = split[i]
            tr = np.setdiff1d(np.arange(len(basins)), te)
            t0 = time.time()
            m = KGSSL(epochs=epochs, progress=False, **cfg).fit(ds.isel(basin=tr), attributes=ATTRS, period=TRAIN)
            print(f"fold {i} fit {time.time() - t0:.0f}s epochs {len(m.history)}", flush=True)
            for k, v in readouts(m, tr, te).items():
                preds.setdefault(k, []).append(v)
            for kind, preds_of_kind in base.items():
                preds_of_kind.append(baseline_predict(f_train[tr], y[tr], f_test[te], kind))
        for k, v in {**preds, **base}.items():
            print("unseen", k, score(np.concatenate(v), te_all), flush=True)


if __name__ == "__main__":
    main()
