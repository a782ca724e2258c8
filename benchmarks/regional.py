"""Prediction in ungauged basins: the parameter network vs classical regionalisation, and its training cost.

Two measurements, side by side in one run, on the Caravan CAMELS-US basins of ``../shared/data``
(GR4J + degree-day snow, Oudin PET):

1. **Speed** of one training step (network forward, model, loss, backward) for ``--speed-basins``
   basins x ``--speed-days`` days: basinsx's exact sensitivities (``run_exact``: numba model,
   ``J^T dL/dq``) vs autograd through the same GR4J + snow written in torch and batched over
   basins as dMG does (:mod:`basinsx.regional.torch_gr4j`). Both in float64 on the CPU, one
   torch thread; the fastest of ``--repeat`` steps each; the two gradients are compared.
2. **Skill** on basins held out of training: k-fold over the first ``--basins`` basins (no
   basin's flow is seen in its own fold, the KGSSL encoder included), training period
   ``TRAIN``, validation period ``VAL`` after it. Median KGE and NSE of the learner (attributes;
   flow-free KGSSL embeddings; both) against donor k = 1, the mean of ``--donors`` donors,
   ridge regression of calibrated parameters on attributes, and per-basin calibration of the
   held-out basins themselves (the gauged bound). A basin bootstrap gives the interval of the
   difference in median between the best learner and the best baseline. Last, the temporal
   check: the attribute learner trained on all basins vs per-basin calibration. ``--seeds N``
   makes each learner an ensemble of N seeds (flows or parameters averaged, ``--ensemble``; each
   member is scored alone too), ``--learners`` picks the inputs, ``--loss`` the training loss
   (and, unless ``--cal-loss`` says otherwise, the calibration objective of the baselines),
   ``--model`` and ``--snow`` the model of the skill test (every method's); ``--skip-speed`` /
   ``--skip-skill`` leave a part out.

    python benchmarks/regional.py --basins 100 --folds 5 --epochs 100
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import embedding_data
import numpy as np
import xarray as xr

import basinsx.models as bm
from basinsx.io.sample import KRATZERT_ATTRIBUTES
from basinsx.models.base import snow_option
from basinsx.regional import ParameterLearner, donor_params, regression_params, run_exact, to_physical
from basinsx.regional.learner import _network, window_loss
from basinsx.regional.torch_gr4j import gr4j_snow

TRAIN = ("1985-10-01", "1995-09-30")
VAL = ("1995-10-01", "2005-09-30")
ATTRS = list(KRATZERT_ATTRIBUTES)


def load(n_basins: int) -> xr.Dataset:
    """Inputs with Oudin PET for every method (ERA5-Land's is biased) and the 27 CAMELS attributes."""
    return embedding_data.load(pet="oudin").isel(basin=slice(0, n_basins)).sel(time=slice("1984-10-01", VAL[1]))


# --------------------------------------------------------------------------------------------- speed


def speed(ds: xr.Dataset, n_basins: int, n_days: int, repeat: int) -> dict:
    """Seconds of one training step, exact sensitivities vs autograd through the batched torch model."""
    import torch

    m = bm.get("gr4j", snow=True)
    sub = ds.isel(basin=slice(0, n_basins)).sel(time=slice("1994-10-01", None)).isel(time=slice(0, n_days))
    forcing = np.stack([sub[v].values for v in m.forcings], axis=1).astype(np.float64)
    forcing[:, 1] = np.maximum(forcing[:, 1], 0.0)
    warmup = n_days // 2
    obs = torch.as_tensor(sub.streamflow.values[:, warmup:], dtype=torch.float64)
    scale = torch.as_tensor(np.nanvar(ds.streamflow.values[:n_basins], axis=1) + 1e-3, dtype=torch.float64)
    attrs = sub[ATTRS].to_dataarray("a").T.values
    x = torch.as_tensor(np.nan_to_num((attrs - np.nanmean(attrs, 0)) / np.nanstd(attrs, 0)), dtype=torch.float64)
    torch.manual_seed(0)
    net = _network(len(ATTRS), len(m.params), 64, 2).double()
    tf = torch.as_tensor(forcing)

    def step(model_fn):
        net.zero_grad()
        loss = window_loss(model_fn(to_physical(net(x), m)), obs, scale)
        loss.backward()
        return float(loss), torch.cat([p.grad.ravel() for p in net.parameters()]).clone()

    out = {}
    for name, fn, n in (("exact", lambda th: run_exact(th, m, forcing, warmup), repeat),
                        ("autograd", lambda th: gr4j_snow(th, tf, warmup), max(1, repeat // 3))):
        wall, cpu = [], []
        for _ in range(n):
            t, c = time.perf_counter(), time.process_time()
            loss, grad = step(fn)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        out[name] = {"seconds": min(wall), "cpu": min(cpu), "loss": loss, "grad": grad}
    g1, g2 = out["exact"]["grad"], out["autograd"]["grad"]
    return {"basins": n_basins, "days": n_days, "exact_s": out["exact"]["seconds"],
            "autograd_s": out["autograd"]["seconds"], "ratio": out["autograd"]["seconds"] / out["exact"]["seconds"],
            "exact_cpu_s": out["exact"]["cpu"], "autograd_cpu_s": out["autograd"]["cpu"],
            "ratio_cpu": out["autograd"]["cpu"] / out["exact"]["cpu"],
            "grad_rel_diff": float((g1 - g2).norm() / g2.norm()),
            "loss_diff": abs(out["exact"]["loss"] - out["autograd"]["loss"])}


# --------------------------------------------------------------------------------------------- skill


def scores(ds: xr.Dataset, params, args) -> xr.Dataset:
    """KGE and NSE over VAL of ``--model`` with ``--snow`` and ``params`` (warm-up: the year before VAL).

    A list of parameter sets is an ensemble: its flows are averaged.
    """
    ensemble = params if isinstance(params, list) else [params]
    sub = ds.sel(basin=ensemble[0].basin.values).sel(time=slice("1994-10-01", VAL[1]))
    sim = sum(sub.hydro.simulate(p, model=args.model, snow=snow_option(args.snow), warmup=365, pet="pet")
              for p in ensemble) / len(ensemble)
    out = sub.hydro.metrics(sim, sub.streamflow.sel(time=slice(*VAL)))
    return out[["kge", "nse"]]


def learner_options(kind: str, args) -> dict:
    emb = {"attributes": ATTRS, "dim": 16, "hidden": 32, "window": 180, "stride": 90, "epochs": args.kgssl_epochs,
           "val_fraction": 0.0}
    return {"attributes": ATTRS if kind in ("attributes", "both") else None,
            "embedding": emb if kind in ("embedding", "both") else None}


def fit_learner(train: xr.Dataset, kind: str, args) -> list[ParameterLearner]:
    """``--seeds`` learners (seeds ``--seed``, ``--seed`` + 1, ...), whose flows :func:`scores` averages."""
    return [ParameterLearner(args.model, snow=snow_option(args.snow), hidden=64, epochs=args.epochs,
                             seed=args.seed + i, loss=args.loss, **learner_options(kind, args))
            .fit(train, period=TRAIN, pet="pet", warmup=365, window=args.window, batch_basins=args.batch)
            for i in range(args.seeds)]


def ensemble(members: list, how: str):
    """The members as :func:`scores` takes them: a list (``"flows"``: their flows averaged) or one parameter set,
    the members' mean (``"params"``: geometric for the log-scaled ``x1``, ``x3``, ``f_dd``)."""
    if how == "flows" or len(members) == 1:
        return members
    stack = xr.concat(members, dim="member")
    log = stack.param.isin(["x1", "x3", "f_dd"])
    geometric = np.exp(np.log(stack.where(log, 1.0)).mean("member"))
    return xr.where(log, geometric, stack.mean("member")).assign_attrs(members[0].attrs)


def bootstrap(a: np.ndarray, b: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Median(a) - median(b) over basins and its 95 % interval from resampling basins (paired)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n, len(a)))
    d = np.nanmedian(a[idx], axis=1) - np.nanmedian(b[idx], axis=1)
    return float(np.nanmedian(a) - np.nanmedian(b)), float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))


def skill(ds: xr.Dataset, args) -> dict:
    t0 = time.perf_counter()
    model = {"model": args.model, "snow": snow_option(args.snow)}
    cal = ds.hydro.calibrate(**model, loss=args.cal_loss or args.loss, period=TRAIN, warmup=365,
                             pet="pet", n_starts=args.n_starts)
    t_cal = time.perf_counter() - t0
    basins = ds.basin.values
    rng = np.random.default_rng(args.seed)
    folds = np.array_split(rng.permutation(len(basins)), args.folds)
    kinds = args.learners.split(",")
    methods = [f"learner: {kind}" for kind in kinds] + ["donor k=1", f"donor k={args.donors}", "regression",
                                                        "calibrated (gauged bound)"]
    learners, (donor1, donork, regression, bound) = methods[:len(kinds)], methods[len(kinds):]
    result = {name: [] for name in methods}
    seconds = {name: 0.0 for name in learners}
    for k, test in enumerate(folds):
        test_ids, train_ids = basins[test], np.setdiff1d(basins, basins[test])
        train = ds.sel(basin=train_ids)
        target = ds.sel(basin=test_ids).drop_vars("streamflow")  # the held-out basins are ungauged here
        for kind, name in zip(kinds, learners):
            t = time.perf_counter()
            fitted = fit_learner(train, kind, args)
            seconds[name] += time.perf_counter() - t
            members = [learner.params(target, pet="pet") for learner in fitted]
            result[name].append(scores(ds, ensemble(members, args.ensemble), args))
            for i, params in enumerate(members if len(members) > 1 else []):  # each member alone, for comparison
                result.setdefault(f"{name} (seed {args.seed + i} alone)", []).append(scores(ds, params, args))
        gauged_params = cal.params.sel(basin=train_ids)
        for name, params in ((donor1, donor_params(train, gauged_params, target, ATTRS, k=1, **model)),
                             (donork, donor_params(train, gauged_params, target, ATTRS, k=args.donors,
                                                                 **model)),
                             (regression, regression_params(train, gauged_params, target, ATTRS, **model))):
            result[name].append(scores(ds, params, args))
        result[bound].append(scores(ds, cal.params.sel(basin=test_ids), args))
        print(f"fold {k + 1}/{args.folds} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    table = {name: xr.concat(parts, dim="basin").sel(basin=basins) for name, parts in result.items()}
    rows = {name: {"kge": float(s.kge.median()), "nse": float(s.nse.median())} for name, s in table.items()}
    baselines = [donor1, donork, regression]
    out = {"rows": rows, "calibration_s": t_cal, "learner_fit_s_per_fold": {n: s / args.folds for n, s in seconds.items()}}
    for metric in ("kge", "nse"):
        best_base = max(baselines, key=lambda n: rows[n][metric])
        best_learner = max(learners, key=lambda n: rows[n][metric])
        out[f"bootstrap_{metric}"] = {"learner": best_learner, "baseline": best_base,
                                      "diff_ci": bootstrap(table[best_learner][metric].values,
                                                           table[best_base][metric].values)}
        out[f"gap_to_gauged_{metric}"] = rows[best_learner][metric] - rows[bound][metric]
    # temporal check: the learner trained on all basins, validation period, vs per-basin calibration
    temporal = scores(ds, ensemble([learner.params(ds) for learner in fit_learner(ds, kinds[0], args)], args.ensemble),
                      args)
    out["temporal"] = {f"learner (all basins, {kinds[0]})": {"kge": float(temporal.kge.median()),
                                                            "nse": float(temporal.nse.median())},
                       "calibrated": rows[bound]}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--basins", type=int, default=100)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--kgssl-epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--window", type=int, default=365, help="days of a training window (after 365 days of warm-up)")
    ap.add_argument("--donors", type=int, default=5)
    ap.add_argument("--n-starts", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="learners per fold with seeds seed, seed + 1, ...: "
                    "an ensemble, their flows averaged")
    ap.add_argument("--ensemble", default="flows", choices=("flows", "params"),
                    help="with --seeds > 1: average the members' flows or their parameters")
    ap.add_argument("--model", default="gr4j", help="model of the skill test (the speed test is GR4J + snow)")
    ap.add_argument("--snow", default="degree_day", help="snow option of the skill test: none, degree_day, cemaneige")
    ap.add_argument("--loss", default="nse", choices=("nse", "kge"))
    ap.add_argument("--cal-loss", choices=("nse", "kge"), help="objective of the per-basin calibration behind the "
                    "baselines and the gauged bound (default: --loss, so that every method is fitted to the same)")
    ap.add_argument("--learners", default="attributes,embedding,both",
                    help="comma-separated learner inputs: attributes, embedding, both (the first one is also the "
                         "temporal check's)")
    ap.add_argument("--speed-basins", type=int, default=100)
    ap.add_argument("--speed-days", type=int, default=730)
    ap.add_argument("--repeat", type=int, default=6)
    ap.add_argument("--skip-skill", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore", category=UserWarning)
    ds = load(max(args.basins, args.speed_basins))
    report = {"args": {k: str(v) for k, v in vars(args).items()}}
    if not args.skip_speed:
        sp = report["speed"] = speed(ds, args.speed_basins, args.speed_days, args.repeat)
        print(f"one training step, {sp['basins']} basins x {sp['days']} days (half warm-up), GR4J + snow, "
              f"float64, 1 torch thread:\n  exact sensitivities {sp['exact_s'] * 1e3:.1f} ms, autograd through "
              f"batched torch model {sp['autograd_s'] * 1e3:.0f} ms: ratio {sp['ratio']:.0f}x (CPU time "
              f"{sp['exact_cpu_s'] * 1e3:.1f} vs {sp['autograd_cpu_s'] * 1e3:.0f} ms: {sp['ratio_cpu']:.0f}x); "
              f"gradients differ by {sp['grad_rel_diff']:.1e} (relative), losses by {sp['loss_diff']:.1e}")
    if not args.skip_skill:
        sk = skill(ds.isel(basin=slice(0, args.basins)), args)
        report["skill"] = sk
        print(f"\n{args.basins} basins, {args.folds}-fold ungauged, train {TRAIN[0]}..{TRAIN[1]}, validation "
              f"{VAL[0]}..{VAL[1]}, {args.model}, snow {args.snow}, {args.loss.upper()} loss, {args.epochs} epochs, "
              f"{args.seeds} seed(s)")
        print(f"{'method':38s} {'KGE':>7s} {'NSE':>7s}")
        for name, row in sk["rows"].items():
            print(f"{name:38s} {row['kge']:7.3f} {row['nse']:7.3f}")
        for metric in ("kge", "nse"):
            b = sk[f"bootstrap_{metric}"]
            d, lo, hi = b["diff_ci"]
            print(f"median {metric.upper()} {b['learner']} - {b['baseline']}: {d:+.3f} (95 % {lo:+.3f} .. {hi:+.3f}); "
                  f"gap to the gauged bound {sk[f'gap_to_gauged_{metric}']:+.3f}")
        print("temporal check (all basins trained, validation period):",
              {k: {m: round(v, 3) for m, v in r.items()} for k, r in sk["temporal"].items()})
        print(f"calibration {sk['calibration_s']:.0f} s; learner fit per fold (s):",
              {k: round(v) for k, v in sk["learner_fit_s_per_fold"].items()})
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
