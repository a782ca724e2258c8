"""Zoned conductivities and a source concentration from well data: surrogate, TNNA and GA.

    python examples/groundwater_inversion.py [OUTDIR]

A small version of case 1 of Chen et al. (2025) (20 x 40 cells instead of 40 x 80, 400
training runs instead of 2,000), under a minute on one CPU core: the solver, a Latin-hypercube
training set, an MLP surrogate, the tandem network (TNNA) against a genetic algorithm on the
same surrogate, and the solver run again at both estimates. docs/benchmarks/inversion.md has the
paper-scale runs.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from basinsx.groundwater import Aquifer, conductivity
from basinsx.inverse import TNNA, Surrogate, latin_hypercube, minimize, objective, training_set, zone_map, zoned_field

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)

SHAPE, LENGTH = (20, 40), (10.0, 20.0)
ZONES = zone_map(SHAPE)  # 2 x 4 blocks
BOUNDS = {**{f"k{i + 1}": (1e-12, 9.9e-12) for i in range(8)}, "c0": (1e-3, 1.0)}  # permeability m2, c_in
WELLS = {f"w{j}{i}": (x, y) for j, y in enumerate((1.0, 3.0, 5.0, 7.0, 9.0))
         for i, x in enumerate((2.0, 6.0, 10.0, 14.0, 18.0))}


class Simulator:
    """Parameters -> heads and 20-day concentrations at the 25 wells (picklable, for dask processes)."""

    def aquifer(self, c0):
        return Aquifer(SHAPE, LENGTH, porosity=0.3, dispersivity=(0.05, 0.005), diffusion=1e-4,
                       heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": float(c0)}, wells=WELLS)

    def field(self, theta):
        return conductivity(zoned_field(ZONES, np.asarray(theta[:8])))

    def __call__(self, theta):
        return self.aquifer(theta[8]).observe(self.field(theta), [20.0])


sim = Simulator()
train = training_set(sim, latin_hypercube(BOUNDS, 400, seed=0))  # (sample, param), (sample, obs)
surrogate = Surrogate("mlp", epochs=300, seed=0).fit(train.params, train.output)
test = training_set(sim, latin_hypercube(BOUNDS, 50, seed=1), progress=False)
score = surrogate.score(test.params, test.output)
print(f"surrogate on 50 new runs: scaled RMSE {float(score.rmse):.4f}, R2 {float(score.r2):.3f}")

truth = np.array([2e-12, 8e-12, 4e-12, 6e-12, 9e-12, 3e-12, 5e-12, 7e-12, 0.6])
rng = np.random.default_rng(0)
y_obs = train.output[0].copy(data=sim(truth) * (1 + 0.01 * rng.standard_normal(train.sizes["obs"])))  # 1 % noise

tnna = TNNA(surrogate, BOUNDS, epochs=300, pretrain=(train.params, train.output))
est_tnna = tnna.fit(y_obs)
ga = minimize(objective(surrogate, y_obs), BOUNDS, "ga", pop=40, max_iter=100, seed=0)
estimates = {"TNNA": np.asarray(est_tnna), "GA": np.asarray(ga.x)}

low, span = np.array([lo for lo, _ in BOUNDS.values()]), np.array([hi - lo for lo, hi in BOUNDS.values()])
print(f"{'method':6s} {'surrogate calls':>15s} {'parameter error (of range)':>27s} {'solver misfit':>14s}")
for (name, est), calls in zip(estimates.items(), (tnna.nfev, ga.nfev)):
    err = np.mean(np.abs(est - truth) / span)
    misfit = np.sqrt(np.mean((sim(est) - y_obs.values) ** 2))
    print(f"{name:6s} {calls:15d} {err:27.3f} {misfit:14.4f}")

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
x = np.arange(len(BOUNDS))
for k, (name, values) in enumerate({"truth": truth, **estimates}.items()):
    axes[0].bar(x + (k - 1) * 0.27, (values - low) / span, 0.27, label=name)
axes[0].set(xticks=x, xticklabels=list(BOUNDS), ylabel="value (fraction of range)", title="parameters")
axes[0].legend(fontsize=8)
x_edges, y_edges = np.linspace(0, LENGTH[1], SHAPE[1] + 1), np.linspace(0, LENGTH[0], SHAPE[0] + 1)
wells = np.array(list(WELLS.values()))
for ax, (name, theta) in zip(axes[1:], (("truth", truth), ("TNNA estimate", estimates["TNNA"]))):
    ax.pcolormesh(x_edges, y_edges, np.log10(zoned_field(ZONES, theta[:8])), vmin=-12, vmax=-11, cmap="cividis")
    ax.scatter(wells[:, 0], wells[:, 1], marker="^", s=22, c="w", edgecolor="k", lw=0.5, label="observation wells")
    ax.set(title=f"permeability, {name}", xlabel="x (m): head 1 m and inflow at x = 0", ylabel="y (m)",
           aspect="equal")
axes[1].legend(loc="lower left", bbox_to_anchor=(0, 1.1), fontsize=8, frameon=False)
fig.colorbar(axes[1].collections[0], ax=axes[1:], label="log10 permeability (m2)")
fig.savefig(out / "groundwater_inversion.png", dpi=100)
print(f"wrote {out / 'groundwater_inversion.png'}")
