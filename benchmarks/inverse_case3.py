"""Case 3 of Chen et al. (2025): 80 x 80 binary channelised field through a 100-D latent.

Usage: python benchmarks/inverse_case3.py [--fields 2000] [--vae-epochs 20] [--train 600]
       [--epochs 300] [--pop 100] [--iters 200]

800 m x 800 m, heads 5 m / 0 m, solute entering on the left, concentrations every 2 years to
24 years at a 7 x 7 monitoring grid plus steady heads. Facies: 1e-13 m2 (background) and
5.46e-12 m2 (channels). Realisations from basinsx.inverse.channel_fields (object-based, in
place of the paper's multiple-point statistics), a VAE reducer with a 100-D latent, an MLP
surrogate from the latent to the observations. The reference field is a held-out generator
realisation (not a decoder output). Reports the share of cells with the right facies.
"""

import argparse
import time

import numpy as np
import torch
import xarray as xr

from basinsx.groundwater import Aquifer, conductivity
from basinsx.inverse import TNNA, Surrogate, VAEReducer, channel_fields, minimize, objective, training_set

COORD = (np.arange(7) + 0.5) * 800.0 / 7
WELLS = {f"w{j}{i}": (x, y) for j, y in enumerate(COORD) for i, x in enumerate(COORD)}
TIMES = np.arange(2.0, 25.0, 2.0) * 365.25
BOUNDS = {f"z{k}": (-3.0, 3.0) for k in range(100)}
NORM = np.r_[np.full(49, 5.0), np.ones(49 * 12)]


class Case3:
    """Picklable simulator of a binary facies field (ny, nx) -> heads and concentrations at 49 wells."""

    def __call__(self, facies):
        aq = Aquifer((80, 80), (800.0, 800.0), porosity=0.3, dispersivity=(5.0, 0.5), diffusion=0.0,
                     heads={"left": 5.0, "right": 0.0}, inflow_conc={"left": 1.0}, wells=WELLS)
        return aq.observe(conductivity(np.where(np.reshape(facies, (80, 80)) > 0.5, 5.46e-12, 1.0e-13)), TIMES)


def main(a):
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    fields = channel_fields(a.fields, (80, 80), seed=0)
    red = VAEReducer(100, epochs=a.vae_epochs, batch_size=64, lr=1e-3, beta=0.2, progress=True).fit(fields)
    held = channel_fields(200, (80, 80), seed=1)
    print(f"VAE trained in {time.perf_counter() - t0:.1f} s; facies reproduced by encode-decode: "
          f"train {red.accuracy(fields[:200]):.3f}, held-out {red.accuracy(held):.3f}")

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    z = xr.DataArray(np.clip(rng.standard_normal((a.train, 100)), -3, 3), dims=("sample", "param"),
                     coords={"param": list(BOUNDS)})
    # decode the whole design in one batch, then simulate the facies fields in parallel
    facies = red.decode(z.values, binary=True).values.reshape(a.train, -1).astype(float)
    train = training_set(Case3(), xr.DataArray(facies, dims=("sample", "param")), scheduler="processes")
    print(f"{a.train} forward runs in {time.perf_counter() - t0:.1f} s")
    sur = Surrogate("mlp", hidden_layers=3, width=512, epochs=a.epochs, lr=1e-3).fit(z, train.output)

    truth = held.values[0]
    clean = Case3()(truth)
    for noise in (0.01, 0.10):
        y_obs = xr.DataArray(sur.unscale_y(sur.scale_y(clean) * rng.normal(1.0, noise, clean.shape)), dims="obs")
        print(f"\nnoise {100 * noise:.0f}%  (facies match of the prior, all background: {np.mean(truth == 0):.3f};"
              f" best possible through the decoder: {np.mean(red.decode(red.encode(truth[None]), binary=True).values[0] == truth):.3f})")
        print(f"{'method':10s} {'forward calls':>13s} {'facies match':>12s} {'solver RMSE':>11s} {'time [s]':>8s}")

        def report(label, zhat, nfev, secs):
            f = red.decode(zhat[None], binary=True).values[0]
            # heads over the 5 m head drop, concentrations over the inflow concentration 1
            err = np.sqrt(np.mean(((Case3()(f) - clean) / NORM) ** 2))
            print(f"{label:10s} {nfev:13d} {np.mean(f == truth):12.3f} {err:11.4f} {secs:8.1f}", flush=True)

        t0 = time.perf_counter()
        tn = TNNA(sur, BOUNDS, epochs=1000, lr=1e-3, weight_decay=1e-4)
        report("TNNA", tn.fit(y_obs).values, tn.nfev, time.perf_counter() - t0)
        for method in ("ga", "pso", "de", "sa"):
            t0 = time.perf_counter()
            r = minimize(objective(sur, y_obs), BOUNDS, method, pop=a.pop, max_iter=a.iters, seed=0)
            report(f"{method.upper()}-{a.pop}", r.x, r.nfev, time.perf_counter() - t0)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--fields", type=int, default=2000)
    p.add_argument("--vae-epochs", type=int, default=20)
    p.add_argument("--train", type=int, default=600)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--pop", type=int, default=100)
    p.add_argument("--iters", type=int, default=200)
    main(p.parse_args())
