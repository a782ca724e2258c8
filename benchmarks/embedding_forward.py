"""Experiments 2-4 on 100 CAMELS basins: embedding distances, forward model, cost.

2. Basin distances: Pearson and Spearman correlation, over all basin pairs, between Euclidean
   distances of embeddings and of z-scored attributes (27-d). Embeddings: KGSSL self-supervised
   (reconstruction + contrastive only) and, for comparison, the baseline's z-scored climate /
   flow-signature vector.
3. Forward model: ForwardLSTM trained on water years 1999-2009, median NSE on 1989-1999 with
   no static input, true attributes, attributes plus Gaussian noise (sigma in z-units, drawn
   once per basin) in training and test, and the self-supervised KGSSL embedding. The model
   trained on true attributes is also run with noisy attributes (test-time corruption), and
   the embedding model with the embedding re-estimated from the test decade. For scale, GR4J
   with snow calibrated per basin on the same split.
4. Cost: KGSSL seconds per epoch and peak RSS for 100 basins x 15 years (2 epochs), inference
   throughput in basin-years per second (the ridge readout costs one inference pass over the training basins).

Run: ``python benchmarks/embedding_forward.py [--kgssl-epochs 150] [--forward-epochs 60]``
"""

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from common import RESULTS, argument_parser
from embedding_data import load, nse
from embedding_imputation import ATTRS, TEST, TRAIN, features
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr, spearmanr

from basinsx.embedding import KGSSL, ForwardLSTM


def zscore(a):
    return (a - np.nanmean(a, 0)) / np.nanstd(a, 0)


def distance_corr(x, ref):
    d, dr = pdist(zscore(x)), pdist(ref)
    return {"pearson": float(pearsonr(d, dr)[0]), "spearman": float(spearmanr(d, dr)[0])}


def main(argv=None):
    ap = argument_parser(__doc__)
    ap.add_argument("--kgssl-epochs", type=int, default=150)
    ap.add_argument("--forward-epochs", type=int, default=60)
    ap.add_argument("--noise", type=float, nargs="*", default=[0.25, 0.5, 1.0],
                    help="noise levels (z-units) added to the attributes at test time")
    ap.add_argument("--train-noise", type=float, nargs="*", default=[0.5, 1.0],
                    help="noise levels (a subset of --noise) also used to train a model on noisy attributes")
    ap.add_argument("--forward-config", default="{}", help="JSON object of ForwardLSTM options")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(RESULTS / "embedding_forward.json"))
    args = ap.parse_args(argv)
    if not set(args.train_noise) <= set(args.noise):
        ap.error("--train-noise levels must be among --noise")
    torch.set_num_threads(args.threads)
    ds = load()
    z_attr = np.nan_to_num(zscore(np.stack([ds[a].values for a in ATTRS], 1)))
    res = {"command": " ".join(sys.argv), "train": TRAIN, "test": TEST}

    # 2. self-supervised KGSSL and distances
    t0 = time.perf_counter()
    ssl = KGSSL(epochs=args.kgssl_epochs, progress=False).fit(ds, period=TRAIN)
    res["kgssl_fit_seconds"] = time.perf_counter() - t0
    res["kgssl_epochs_run"] = len(ssl.history)
    emb_train = ssl.transform(ds, period=TRAIN).compute()
    t0 = time.perf_counter()
    emb_test = ssl.transform(ds, period=TEST).compute()
    infer_s = time.perf_counter() - t0
    res["distances"] = {
        "kgssl_ssl_test_period": distance_corr(emb_test.embedding.values, z_attr),
        "kgssl_ssl_train_period": distance_corr(emb_train.embedding.values, z_attr),
        "baseline_features_test_period": distance_corr(features(ds, TEST), z_attr),
    }
    print(json.dumps(res["distances"]), flush=True)

    # 3. forward model: one model per static input; the attribute model is also tested with
    #    attributes corrupted at test time only (the case of uncertain attributes where it is applied)
    attrs = xr.DataArray(z_attr, dims=("basin", "feature"), coords={"basin": ds.basin})
    rng = np.random.default_rng(0)
    noise = {sigma: sigma * rng.standard_normal(attrs.shape) for sigma in args.noise}
    statics = {"attributes": attrs, "kgssl_ssl_embedding": emb_train.embedding, "none": None}
    for sigma in args.train_noise:
        statics[f"attributes_noise_{sigma}"] = attrs + noise[sigma]
    obs = ds.streamflow.sel(time=slice(*TEST))
    fcfg = json.loads(args.forward_config)
    res["forward_config"] = fcfg

    def score(model, static):
        return score_sim(model.predict(ds, static=static, period=TEST).compute())

    def score_sim(sim):
        scores = ds.hydro.metrics(sim, obs.assign_attrs(units=sim.attrs["units"])).nse.values
        return {"median_nse": float(np.nanmedian(scores)), "mean_nse": float(np.nanmean(scores)),
                "median_nse_local_check": float(np.nanmedian(nse(sim.values, obs.values)))}

    res["forward"] = {}
    for name, static in statics.items():
        t0 = time.perf_counter()
        model = ForwardLSTM(epochs=args.forward_epochs, progress=False, **fcfg).fit(ds, static=static, period=TRAIN)
        res["forward"][name] = {**score(model, static), "epochs_run": len(model.history),
                                "seconds": time.perf_counter() - t0}
        print(name, res["forward"][name], flush=True)
        if name == "attributes":
            for sigma in args.noise:
                key = f"attributes_test_noise_{sigma}"
                res["forward"][key] = {**score(model, attrs + noise[sigma]), "trained_on": "attributes"}
                print(key, res["forward"][key], flush=True)
        if name == "kgssl_ssl_embedding":  # the embedding re-estimated from the test decade's data
            key = "kgssl_ssl_embedding_of_test_period"
            res["forward"][key] = {**score(model, emb_test.embedding), "trained_on": name}
            print(key, res["forward"][key], flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=1))

    # for scale: GR4J + snow calibrated per basin (NSE) on the same split; Oudin PET, because
    # Caravan's ERA5-Land PET is several times observation-based PET and breaks GR4J's water balance
    t0 = time.perf_counter()
    ref = ds.assign(pet=ds.hydro.pet("oudin"))
    cal = ref.hydro.calibrate(model="gr4j", snow=True, loss="nse", period=slice(*TRAIN), warmup=365, n_starts=4, seed=0)
    sim = ref.hydro.simulate(cal["params"], model="gr4j", snow=True).sel(time=slice(*TEST)).compute()
    res["forward"]["gr4j_snow_calibrated_per_basin"] = {**score_sim(sim),
                                                        "seconds": time.perf_counter() - t0}
    print("gr4j", res["forward"]["gr4j_snow_calibrated_per_basin"], flush=True)

    # 4. cost: 100 basins x 15 years, 2 epochs
    long = ("1994-10-01", "2009-09-30")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    KGSSL(epochs=2, val_fraction=0.0, readout="head", progress=False).fit(ds, attributes=ATTRS, period=long)
    per_epoch = (time.perf_counter() - t0) / 2
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n_years = (np.datetime64(TEST[1]) - np.datetime64(TEST[0])).astype(int) / 365.25
    res["cost"] = {"kgssl_seconds_per_epoch_100x15y": per_epoch,
                   "peak_rss_mib_process": rss1 / 1024, "rss_growth_mib_during_cost_fit": (rss1 - rss0) / 1024,
                   "inference_basin_years_per_second": ds.sizes["basin"] * n_years / infer_s,
                   "torch_threads": torch.get_num_threads()}
    print(json.dumps(res["cost"]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
