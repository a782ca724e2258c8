"""Case 3 of Chen et al. (2025): 80 x 80 binary channelised field through a 100-D latent.

Usage: python benchmarks/inverse_case3.py [--fields 2000] [--vae-epochs 60] [--train 2000]
       [--surrogate mlp] [--epochs 300] [--pop 1000] [--iters 200] [--noise 0.01 0.1] [--prior W]
       [--adapt ROUNDS] [--n-local 50] [--radius 0.05] [--cache DIR]
       [--stages E:LR ...] [--batch-size 50] [--fit-size N] [--encoded N] [--clip] [--starts 5] [--surrogate-only] [--methods tnna tnna-ms ga ...] [--seeds 0 1 ...] [--meta-seeds 0 ...] [--refs N]

800 m x 800 m, heads 5 m / 0 m, solute entering on the left, concentrations every 2 years to
24 years at a 7 x 7 monitoring grid plus steady heads. Facies: 1e-13 m2 (background) and
5.46e-12 m2 (channels). Realisations from basinsx.inverse.channel_fields (object-based, in
place of the paper's multiple-point statistics), a VAE reducer with a 100-D latent, a
surrogate from the latent (mlp) or from the decoded channel probabilities (lenet, resnet; the
decoder is then part of every method's forward map) to the observations. TNNA as in the paper,
pretrained on the surrogate's training pairs (TNNA-pre), and multi-start (TNNA-ms: --starts
networks from N(0, I) latent draws, side by side, 1000 surrogate calls in all; its estimate is
the consensus field, the mean of the starts' decoded facies probabilities thresholded at 0.5,
and 'TNNA-ms min' its lowest-misfit start). A method run with several seeds also gets a row
'<method> cons': the consensus of its seeds' estimates (at seeds x its calls). The reference
fields are held-out generator realisations (not decoder outputs; --refs N inverts the first N,
each with its own noise draw, and summarises TNNA against each metaheuristic over them). Reports per estimate the share of
cells with the right facies, the solver's fit to the noise-free observations, the prediction
RMSE of concentrations on the whole grid at 26, 28 and 30 years (the paper's check beyond the
observed period) and the surrogate misfit; row 'encoded' gives the same for the truth's own
latent. --encoded N adds the latents (posterior means) of the reducer's first N training
realisations to the surrogate's design: fields decoded from prior draws rarely carry solute
as far and as early as real channels do, and a surrogate trained on them alone fails on
encoded realisations (printed: its score on 100 encoded held-out ones).
--prior and --adapt as in case 2 (the prior is the VAE's N(0, I) latent; the adaptive rounds
run the solver on decoded latents, for TNNA and for GA at population --pop).
"""

import pathlib
import pickle
import time

import numpy as np
import torch
import xarray as xr
from common import argument_parser, cached, code_digest
from inverse_case2 import adaptive_rounds

from basinsx import groundwater
from basinsx.groundwater import Aquifer, conductivity
from basinsx.inverse import (
    TNNA,
    Surrogate,
    VAEReducer,
    channel_fields,
    channels,
    minimize,
    objective,
    training_set,
)

COORD = (np.arange(7) + 0.5) * 800.0 / 7
WELLS = {f"w{j}{i}": (x, y) for j, y in enumerate(COORD) for i, x in enumerate(COORD)}
TIMES = np.arange(2.0, 25.0, 2.0) * 365.25
PREDICT = np.array([26.0, 28.0, 30.0]) * 365.25  # the paper's prediction years (Figs. 16b, 17b)
BOUNDS = {f"z{k}": (-3.0, 3.0) for k in range(100)}
NORM = np.r_[np.full(49, 5.0), np.ones(49 * 12)]
N_HELD = 200  # held-out generator realisations: the encode-decode check and the reference fields
N_REFS = 100  # the first N_REFS can be reference fields; the rest score the surrogate on encoded fields


class Case3:
    """Picklable simulator of a binary facies field (ny, nx) -> heads and concentrations at 49 wells."""

    aquifer = Aquifer((80, 80), (800.0, 800.0), porosity=0.3, dispersivity=(5.0, 0.5), diffusion=0.0,
                      heads={"left": 5.0, "right": 0.0}, inflow_conc={"left": 1.0}, wells=WELLS)

    @staticmethod
    def _k(facies):
        return conductivity(np.where(np.reshape(facies, (80, 80)) > 0.5, 5.46e-12, 1.0e-13))

    def __call__(self, facies):
        return self.aquifer.observe(self._k(facies), TIMES)

    def predict(self, facies):
        """Concentration on the whole grid at the paper's prediction times, beyond the observations."""
        return self.aquifer.simulate(self._k(facies), PREDICT).conc.values


class Latent3:
    """Picklable simulator of a latent vector: decoded facies -> Case3."""

    def __init__(self, reducer):
        self.reducer = reducer

    def __call__(self, z):
        return Case3()(self.reducer.decode(z[None], binary=True).values[0])


def summarise(results, background):
    """Per method: facies match, solver RMSE and prediction RMSE averaged over seeds, then over
    reference fields; for a method run with several seeds also its lowest-misfit seed per field
    ('<method> best', the pick a user without the truth would make, at seeds x its calls).
    Each TNNA row minus each metaheuristic row per field, with a 95 % bootstrap interval over the fields."""
    refs = sorted({r[0] for r in results})
    scores = {}  # label -> (fields, 3): facies match, solver RMSE, prediction RMSE
    for m in dict.fromkeys(r[1] for r in results):
        runs = [[r for r in results if r[:2] == (k, m)] for k in refs]
        scores[m] = np.array([np.mean([r[3:6] for r in rs], 0) for rs in runs])
        if len(runs[0]) > 1 and not np.isnan(runs[0][0][6]):  # consensus rows have no latent, no misfit
            scores[f"{m} best"] = np.array([min(rs, key=lambda r: r[6])[3:6] for rs in runs])
    print(f"\nover {len(refs)} reference fields (all background: {np.mean(background):.3f})")
    w = max([10, *map(len, scores)])  # labels such as "GA-500 best"
    print(f"{'method':{w}s} {'facies match':>12s} {'min':>6s} {'max':>6s} {'solver RMSE':>11s} {'pred RMSE':>9s}")
    for m, v in scores.items():
        print(f"{m:{w}s} {v[:, 0].mean():12.3f} {v[:, 0].min():6.3f} {v[:, 0].max():6.3f} {v[:, 1].mean():11.4f} "
              f"{v[:, 2].mean():9.4f}")
    draws = np.random.default_rng(0).integers(0, len(refs), (5000, len(refs)))
    for t in (t for t in scores if t.startswith("TNNA")):
        for m in (m for m in scores if not m.startswith("TNNA")):
            d = scores[t][:, 0] - scores[m][:, 0]
            lo, hi = np.percentile(d[draws].mean(1), [2.5, 97.5])
            print(f"{t} - {m}: {d.mean():+.3f} (95 % interval {lo:+.3f} .. {hi:+.3f}); {t} at least as good on "
                  f"{np.sum(d >= 0)} of {len(refs)} fields")


def main(argv=None):
    p = argument_parser(__doc__)
    p.add_argument("--fields", type=int, default=2000)
    p.add_argument("--vae-epochs", type=int, default=60)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--clip", action="store_true",
                   help="clip the scaled observations to the surrogate's training range (TNNA and metaheuristics)")
    p.add_argument("--encoded", type=int, default=0,
                   help="also simulate the latents of the reducer's first N training realisations for the surrogate")
    p.add_argument("--surrogate", choices=("mlp", "lenet", "resnet"), default="mlp")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--pop", type=int, default=1000)
    p.add_argument("--pretrain-epochs", type=int, default=200)
    p.add_argument("--scheduler", default="synchronous")
    p.add_argument("--cache", default=None, help="folder to keep the VAE and the simulated training set in")
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--noise", type=float, nargs="+", default=[0.01, 0.10])
    p.add_argument("--prior", type=float, default=0.0, help="weight W of the prior term W |z|^2 (0: none, as the paper)")
    p.add_argument("--adapt", type=int, default=0, help="rounds of the adaptive update for TNNA and GA")
    p.add_argument("--n-local", type=int, default=50, help="solver runs per adaptive round")
    p.add_argument("--radius", type=float, default=0.05, help="half-width of the local box, fraction of the range")
    p.add_argument("--finetune-epochs", type=int, default=100)
    p.add_argument("--stages", nargs="+", default=None, metavar="E:LR",
                   help="surrogate training in stages of E epochs at learning rate LR (overrides --epochs, --lr); "
                        "with --cache each stage is saved and a longer list resumes from the longest saved prefix")
    p.add_argument("--batch-size", type=int, default=50, help="surrogate minibatch")
    p.add_argument("--fit-size", type=int, default=0, help="train the surrogate on the first N runs (0: all but the test tenth)")
    p.add_argument("--surrogate-only", action="store_true", help="stop after fitting and scoring the surrogate")
    p.add_argument("--refs", type=int, default=1, help="invert this many held-out reference fields (summary if > 1)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of TNNA (and of the metaheuristics)")
    p.add_argument("--meta-seeds", type=int, nargs="+", default=None, help="seeds of the metaheuristics (default: --seeds)")
    p.add_argument("--starts", type=int, default=5, help="TNNA-ms: networks from prior draws sharing 1000 calls")
    p.add_argument("--methods", nargs="+", default=["tnna", "tnna-pre", "tnna-ms", "ga", "pso", "de", "sa"],
                   choices=("tnna", "tnna-pre", "tnna-ms", "ga", "pso", "de", "sa"))
    a = p.parse_args(argv)
    key = code_digest(groundwater, channels, Case3)  # runs and fits of other code are made again
    if not 1 <= a.refs <= N_REFS:
        raise ValueError(f"--refs must be in 1..{N_REFS} (the held-out realisations)")
    if not 1 <= a.starts <= 1000:
        raise ValueError("--starts must be in 1..1000 (they share 1000 surrogate calls)")
    if not 0 <= a.encoded <= a.fields:
        raise ValueError(f"--encoded must be in 0..{a.fields} (the reducer's training realisations)")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    fields = channel_fields(a.fields, (80, 80), seed=0)
    cache = pathlib.Path(a.cache) if a.cache else None
    tag = f"case3_f{a.fields}_v{a.vae_epochs}_{key[:12]}"
    if cache is not None and (cache / f"{tag}.pkl").exists():  # the fitted reducer, as pickled below
        red = pickle.loads((cache / f"{tag}.pkl").read_bytes())
    else:
        red = VAEReducer(100, epochs=a.vae_epochs, batch_size=64, lr=1e-3, beta=0.2, progress=True).fit(fields)
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            (cache / f"{tag}.pkl").write_bytes(pickle.dumps(red))
    held = channel_fields(N_HELD, (80, 80), seed=1)
    print(f"VAE trained in {time.perf_counter() - t0:.1f} s; facies reproduced by encode-decode: "
          f"train {red.accuracy(fields[:200]):.3f}, held-out {red.accuracy(held):.3f}")

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    # the design: --encoded posterior means of realisations (where the reference fields' latents
    # lie), then --train prior draws; the prior draws' last tenth is the surrogate's test set
    def latents(f):  # posterior means of fields, inside the bounds
        return np.clip(red.encode(f), -3, 3)

    def runs(name, p):  # solver runs (--scheduler, cached as name) of decoded probabilities, thresholded
        f = xr.DataArray((p.values > 0.5).reshape(len(p), -1).astype(float), dims=("sample", "param"))
        return cached(cache, name, lambda: training_set(Case3(), f, scheduler=a.scheduler), f, key=key)

    prior = np.clip(rng.standard_normal((a.train, 100)), -3, 3)
    z = xr.DataArray(np.vstack([latents(fields.values[:a.encoded]), prior]), dims=("sample", "param"),
                     coords={"param": list(BOUNDS)})
    probs = red.decode(z.values)  # the whole design decoded in one batch
    parts = [runs(f"{tag}_train{a.train}", probs[a.encoded:])]
    if a.encoded:
        parts.insert(0, runs(f"{tag}_enc{a.encoded}", probs[: a.encoded]))
    train = xr.concat(parts, "sample")
    print(f"{len(z)} forward runs ready in {time.perf_counter() - t0:.1f} s (cache {a.cache})")
    n_test = a.train // 10  # the last tenth scores the surrogate; all of it trains TNNA's pretraining
    decoder = red.torch_decoder()
    if a.surrogate == "mlp":
        x_in, transform = z, None
        sur = Surrogate("mlp", hidden_layers=3, width=512, epochs=a.epochs, lr=a.lr, progress=True)
    else:
        x_in, transform = probs, decoder
        sur = Surrogate(a.surrogate, epochs=a.epochs, lr=a.lr, weight_decay=1e-8, progress=True)
    # --stages E:LR ...: E epochs at learning rate LR, then the next stage continues training
    # (fine_tune, a fresh Adam) at its own rate; without it, --epochs at --lr
    stages = [(int(e), float(r)) for e, r in (s.split(":") for s in a.stages)] if a.stages else [(a.epochs, a.lr)]
    n_fit = a.fit_size or len(z) - n_test  # the first n_fit runs train the surrogate
    if not 0 < n_fit <= len(z) - n_test:
        raise ValueError(f"--fit-size must be in 1..{len(z) - n_test}")
    sur.epochs, sur.lr, sur.batch_size = stages[0][0], stages[0][1], a.batch_size

    def stages_tag(k):
        return "_".join(f"{e}x{r:g}" for e, r in stages[:k])

    def stage_path(k):  # the surrogate after the first k stages; a longer --stages list resumes from it
        enc = f"_enc{a.encoded}" if a.encoded else ""
        return cache / f"{tag}_train{a.train}{enc}_{a.surrogate}_n{n_fit}_b{a.batch_size}_{stages_tag(k)}.pkl"

    t0 = time.perf_counter()
    start = max((k for k in range(1, len(stages) + 1) if cache and stage_path(k).exists()), default=0)
    if start:
        sur = pickle.loads(stage_path(start).read_bytes())
        print(f"surrogate after {start} of {len(stages)} stages from {stage_path(start)}")
    for k in range(start, len(stages)):
        e, r = stages[k]
        if k == 0:
            sur.fit(x_in[:n_fit], train.output[:n_fit])
        else:
            sur.lr = r
            sur.fine_tune(x_in[:n_fit], train.output[:n_fit], epochs=e)
        score = sur.score(x_in[-n_test:], train.output[-n_test:])
        fit = sur.score(x_in[:n_test], train.output[:n_test])  # as many training runs as test runs
        print(f"  stage {k + 1}: {e} epochs at lr {r:g} (total {sum(n for n, _ in stages[:k + 1])}), "
              f"{time.perf_counter() - t0:.0f} s; RMSE / R2 on {n_test} training runs {float(fit.rmse):.4f} / "
              f"{float(fit.r2):.4f}, on the test runs {float(score.rmse):.4f} / {float(score.r2):.4f}", flush=True)
        if cache is not None:  # written whole, then renamed: a run killed mid-write leaves no broken file
            tmp = stage_path(k + 1).with_suffix(".tmp")
            tmp.write_bytes(pickle.dumps(sur))
            tmp.replace(stage_path(k + 1))
    score = sur.score(x_in[-n_test:], train.output[-n_test:])
    print(f"surrogate {a.surrogate} ({stages_tag(len(stages))}) fitted in {time.perf_counter() - t0:.1f} s on "
          f"{n_fit} runs; test RMSE {float(score.rmse):.4f}, R2 {float(score.r2):.4f}", flush=True)
    # the same score where the reference fields' latents lie: encoded held-out realisations
    z_held = latents(held.values[N_REFS:])
    p_held = red.decode(z_held)
    x_held = xr.DataArray(z_held, dims=("sample", "param"), coords={"param": list(BOUNDS)}) if transform is None else p_held
    score = sur.score(x_held, runs(f"{tag}_held{N_REFS}enc", p_held).output)
    print(f"on the latents of {len(z_held)} encoded held-out realisations: RMSE {float(score.rmse):.4f}, "
          f"R2 {float(score.r2):.4f}", flush=True)
    if a.surrogate_only:
        return

    terms = {"prior": (0.0, 1.0), "prior_weight": a.prior} if a.prior else {}
    terms["clip"] = a.clip
    meta_seeds = a.meta_seeds or a.seeds
    for noise in a.noise:
        results, background = [], []  # (ref, method, seed, facies match, solver RMSE, pred RMSE, misfit); per ref
        for k in range(a.refs):
            truth = held.values[k]
            background.append(np.mean(truth == 0))
            clean, future = Case3()(truth), Case3().predict(truth)
            y_obs = xr.DataArray(sur.unscale_y(sur.scale_y(clean) * rng.normal(1.0, noise, clean.shape)), dims="obs")
            misfit = objective(sur, y_obs, transform=transform, **terms)
            print(f"\nnoise {100 * noise:.0f}%, reference field {k}  (facies match of the prior, all background: "
                  f"{np.mean(truth == 0):.3f}; row 'encoded': the truth's own latent, the best the decoder reaches)")
            print(f"{'method':14s} {'forward calls':>13s} {'facies match':>12s} {'solver RMSE':>11s} "
                  f"{'pred RMSE':>9s} {'misfit':>8s} {'time [s]':>8s}")

            def report(label, nfev, secs, zhat=None, field=None, truth=truth, clean=clean, future=future, misfit=misfit):
                """Scores of a latent estimate, or of a field (a consensus: no latent, no misfit)."""
                f = red.decode(zhat[None], binary=True).values[0] if field is None else field
                # heads over the 5 m head drop, concentrations over the inflow concentration 1
                err = np.sqrt(np.mean(((Case3()(f) - clean) / NORM) ** 2))
                # concentrations on the whole grid at 26-30 years, against the truth's
                pred = np.sqrt(np.mean((Case3().predict(f) - future) ** 2))
                match = np.mean(f == truth)
                mis = misfit(zhat[None])[0] if field is None else np.nan
                print(f"{label:14s} {nfev:13d} {match:12.3f} {err:11.4f} {pred:9.4f} {mis:8.2f} {secs:8.1f}", flush=True)
                return match, err, pred, mis

            def consensus(Z):  # facies where the mean decoded channel probability of the estimates exceeds 0.5
                return (red.decode(np.atleast_2d(Z)).values.mean(0) > 0.5).astype(float)

            def add(label, seed, nfev, secs, **est):
                results.append((k, label, seed, *report(label + (f"/s{seed}" if seed is not None else ""), nfev, secs, **est)))

            # reference row: the truth's own latent (its encoding), which no method is given
            report("encoded", 0, 0.0, zhat=latents(truth[None])[0])
            pre = {"pretrain": (z, train.output), "pretrain_epochs": a.pretrain_epochs}
            sfx = len(a.seeds) > 1  # seed suffixes on the rows
            for label, extra in (("TNNA", {}), ("TNNA-pre", pre), ("TNNA-ms", {"starts": a.starts})):
                if label.lower() not in a.methods:
                    continue
                Z, t_all = [], 0.0
                for seed in a.seeds:  # --seeds: the same inversions from other random initialisations
                    t0 = time.perf_counter()
                    if label == "TNNA-ms":  # starts drawn from the reducer's N(0, I) prior
                        extra["init"] = np.clip(np.random.default_rng(seed).standard_normal((a.starts, 100)), -3, 3)
                    # TNNA-ms: its networks share the 1000 surrogate calls of one TNNA run
                    epochs = 1000 // a.starts if label == "TNNA-ms" else 1000
                    tn = TNNA(sur, BOUNDS, transform=transform, epochs=epochs, lr=1e-3, weight_decay=1e-4, seed=seed,
                              **terms, **extra)
                    zhat, secs = tn.fit(y_obs).values, time.perf_counter() - t0
                    t_all += secs
                    if label == "TNNA-ms":  # its own consensus, then its lowest-misfit start
                        add(label, seed if sfx else None, tn.nfev, secs, field=consensus(tn.estimates.values))
                        label_z = label + " min"
                    else:
                        label_z = label
                        Z.append(zhat)
                    add(label_z, seed if sfx else None, tn.nfev, secs, zhat=zhat)
                if len(Z) > 1:
                    add(label + " cons", None, len(Z) * tn.nfev, t_all, field=consensus(Z))
            for method in ("ga", "pso", "de", "sa"):
                if method not in a.methods:
                    continue
                label, Z, t_all = f"{method.upper()}-{a.pop}", [], 0.0
                for seed in meta_seeds:
                    t0 = time.perf_counter()
                    r = minimize(misfit, BOUNDS, method, pop=a.pop, max_iter=a.iters, seed=seed)
                    secs = time.perf_counter() - t0
                    t_all += secs
                    add(label, seed if len(meta_seeds) > 1 else None, r.nfev, secs, zhat=r.x)
                    Z.append(r.x)
                if len(Z) > 1:
                    add(label + " cons", None, len(Z) * r.nfev, t_all, field=consensus(Z))
            if not a.adapt:
                continue

            def tnna(s, y_obs=y_obs):
                tn = TNNA(s, BOUNDS, transform=transform, epochs=1000, lr=1e-3, weight_decay=1e-4, **terms)
                return tn.fit(y_obs).values, tn.nfev

            def ga(s, y_obs=y_obs):
                fun = objective(s, y_obs, transform=transform, **terms)
                r = minimize(fun, BOUNDS, "ga", pop=a.pop, max_iter=a.iters, seed=0)
                return r.x, r.nfev

            print(f"adaptive update: {a.adapt} rounds x {a.n_local} solver runs, radius {a.radius}; label-round, "
                  f"surrogate calls, facies match, solver RMSE; solver runs = round x {a.n_local}")
            for label, invert in (("TNNA", tnna), (f"GA-{a.pop}", ga)):
                t0 = time.perf_counter()
                for r, _, calls, zhat, _, s in adaptive_rounds(a, sur, Latent3(red), invert, BOUNDS, transform):
                    # the misfit column on the surrogate this round's estimate was found with
                    report(f"{label}-{r}", calls, time.perf_counter() - t0, zhat=zhat,
                           misfit=objective(s, y_obs, transform=transform, **terms))
                print(f"{label}: surrogate test RMSE after the rounds {float(s.score(x_in[-n_test:], train.output[-n_test:]).rmse):.4f}")
        if a.refs > 1:
            summarise(results, background)


if __name__ == "__main__":
    main()
