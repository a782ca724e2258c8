"""GNN-embedded PNM vs classical PNM vs a pure data-driven GNN, on LBM-labelled networks.

Data: a file written by ``basinsx.porenet.dataset.build`` (networks extracted by snow2
from Berea subvolumes and porespy images, labelled by the D3Q19 LBM). Training-scale
samples are split 75/25 into train and held-out; the ``large`` samples are the
cross-scale test. Models:

- classical PNM: cones-and-cylinders conductances, no training;
- GNN-PNM: :class:`basinsx.porenet.gnn.ConductanceGNN` trained through the adjoint solver
  from scalar permeability only;
- data-driven: the same message passing with a mean-pooled read-out regressing log K
  directly (no solver).

Prints R^2 of log10 K and the mean relative error per split, the gradient sensitivity of
log K to uniform shifts of each input feature, and writes a parity plot.

Run: python benchmarks/porenet_gnn.py --data benchmarks/data/porenet_gnn_data.nc --epochs 60 --seeds 0 1 2 \
    --plot docs/benchmarks/porenet_parity.png
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr
from common import BENCHMARK_DATA, argument_parser
from torch import nn

from basinsx.porenet.dataset import networks
from basinsx.porenet.gnn import PORE_FEATURES, THROAT_FEATURES, ConductanceGNN, _mlp, fit, graph_inputs


class GraphRegressor(nn.Module):
    """Pure data-driven baseline: message passing, mean pooling, log K read-out."""

    def __init__(self, hidden=32, layers=2):
        super().__init__()
        self.body = ConductanceGNN(hidden, layers)
        self.readout = _mlp(hidden + len(THROAT_FEATURES), hidden, 1)
        self.double()

    def forward(self, inp):
        e = inp["e"]
        h = self.body.node_states(inp["x"], e, inp["conns"])
        # intensive read-out (means only): K does not scale with the number of pores
        pooled = torch.cat([h.mean(0), e.mean(0)])
        return self.readout(pooled)[0] + inp["logk_offset"]


def metrics(k_pred, k_true):
    lp, lt = np.log10(k_pred), np.log10(k_true)
    r2 = 1 - np.sum((lp - lt) ** 2) / np.sum((lt - lt.mean()) ** 2)
    return r2, np.mean(np.abs(k_pred - k_true) / k_true)


def train_models(nets, inputs, k, tr, epochs, seed):
    """GNN-PNM and data-driven predictions of every sample, both trained on ``tr`` with ``seed``."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gnn = ConductanceGNN(hidden=32, layers=2)
    hist = fit(gnn, [nets[i] for i in tr], k[tr], epochs=epochs, lr=3e-3, inputs=[inputs[i] for i in tr],
               progress=False, seed=seed)
    with torch.no_grad():
        k_gnn = np.array([gnn.permeability(nets[i], inputs[i]).item() for i in range(len(nets))])

    # data-driven: predict log K around the mean training log K (voxel size is common to all samples)
    offset = float(np.mean(np.log(k[tr])))
    for inp in inputs:
        inp["logk_offset"] = offset
    reg = GraphRegressor(32, 2)
    opt = torch.optim.Adam(reg.parameters(), lr=3e-3)
    for _ in range(epochs * 3):  # no solver in the loop: cheaper per step, give it more epochs
        for i in rng.permutation(tr):
            opt.zero_grad()
            loss = (reg(inputs[i]) - np.log(k[i])) ** 2
            loss.backward()
            opt.step()
    with torch.no_grad():
        k_dd = np.array([float(torch.exp(reg(inputs[i]))) for i in range(len(nets))])
    return gnn, hist, k_gnn, k_dd


def drop_unlabelled(ds):
    """Drop samples whose image does not percolate at voxel scale (``K_lbm <= 0``)."""
    bad = np.flatnonzero(ds["k_lbm"].values <= 0)
    if not bad.size:
        return ds
    print(f"dropping {bad.size} samples with K_lbm <= 0: {bad.tolist()}")
    keep = np.setdiff1d(np.arange(ds.sizes["sample"]), bad)
    ds = ds.isel(sample=keep, pore=np.flatnonzero(np.isin(ds["pore_sample"].values, keep)),
                 throat=np.flatnonzero(np.isin(ds["throat_sample"].values, keep)))
    remap = np.full(keep.max() + 1, -1)
    remap[keep] = np.arange(keep.size)
    ds["pore_sample"] = ("pore", remap[ds["pore_sample"].values])
    ds["throat_sample"] = ("throat", remap[ds["throat_sample"].values])
    return ds


def per_source(src, sets, k, k_pnm, k_gnn, k_dd):
    """R^2 and MRE per image source on the held-out and cross-scale samples (first seed)."""
    print("\nper source (first seed): n, R2 PNM / GNN-PNM / data, MRE PNM / GNN-PNM / data")
    for name in ("held-out", "cross-scale"):
        for source in np.unique(src):
            idx = sets[name][src[sets[name]] == source]
            if len(idx) < 3:
                continue
            r = [metrics(m[idx], k[idx]) for m in (k_pnm, k_gnn, k_dd)]
            print(f"  {name:>12} {source:>8} {len(idx):3d} | " + " ".join(f"{v[0]:7.3f}" for v in r) + " | "
                  + " ".join(f"{v[1]:7.3f}" for v in r))


def main(argv=None):
    ap = argument_parser(__doc__)
    ap.add_argument("--data", nargs="+", default=[str(BENCHMARK_DATA / "porenet_gnn_data.nc")],
                    help="one or more files written by basinsx.porenet.dataset.build")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (the split uses the first)")
    ap.add_argument("--plot", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    parts = [drop_unlabelled(xr.load_dataset(path)) for path in args.data]
    nets = [net for ds in parts for net in networks(ds)]
    k, k_pnm, split, size, src = (np.concatenate([ds[v].values for ds in parts])
                                  for v in ("k_lbm", "k_pnm", "split", "size", "source"))
    small = np.flatnonzero(split == "train")
    perm = np.random.default_rng(args.seeds[0]).permutation(small)
    n_train = int(round(0.75 * len(small)))
    sets = {"train": perm[:n_train], "held-out": perm[n_train:], "cross-scale": np.flatnonzero(split == "large")}
    sizes = {s: sorted({int(v) for v in size[i]}) for s, i in sets.items()}
    print(f"{len(nets)} samples: " + ", ".join(f"{s} {len(i)} (edge {sizes[s]})" for s, i in sets.items())
          + "; sources " + ", ".join(f"{s} {c}" for s, c in zip(*np.unique(src, return_counts=True))))
    npores = np.array([n.sizes["pore"] for n in nets])
    for s, i in sets.items():
        print(f"  {s}: {npores[i].min()}-{npores[i].max()} pores (median {int(np.median(npores[i]))})")
    inputs = [graph_inputs(n) for n in nets]
    tr = sets["train"]

    results = {}  # (split, model) -> list over seeds of (R2, MRE)
    for seed in args.seeds:
        gnn_s, hist, k_gnn_s, k_dd_s = train_models(nets, inputs, k, tr, args.epochs, seed)
        print(f"\nseed {seed}: GNN-PNM training loss {hist[0]:.3f} -> {hist[-1]:.3f} over {args.epochs} epochs")
        if seed == args.seeds[0]:
            gnn, k_gnn, k_dd = gnn_s, k_gnn_s, k_dd_s
        print(f"{'split':>12} {'n':>3} | {'R2 log K: PNM':>14} {'GNN-PNM':>8} {'data':>8} | "
              f"{'MRE: PNM':>9} {'GNN-PNM':>8} {'data':>8}")
        for name, idx in sets.items():
            if len(idx) < 2:
                continue
            r = [metrics(m[idx], k[idx]) for m in (k_pnm, k_gnn_s, k_dd_s)]
            for model, v in zip(("PNM", "GNN-PNM", "data"), r):
                results.setdefault((name, model), []).append(v)
            print(f"{name:>12} {len(idx):>3} | {r[0][0]:14.3f} {r[1][0]:8.3f} {r[2][0]:8.3f} | "
                  f"{r[0][1]:9.3f} {r[1][1]:8.3f} {r[2][1]:8.3f}")
    if len(args.seeds) > 1:
        print(f"\nmean +- sd over seeds {args.seeds}")
        for name in sets:
            if (name, "PNM") not in results:
                continue
            row = []
            for j in (0, 1):
                for model in ("PNM", "GNN-PNM", "data"):
                    v = np.array(results[(name, model)])[:, j]
                    row.append(f"{v.mean():.3f} +- {v.std():.3f}")
            print(f"{name:>12} | R2 " + " / ".join(row[:3]) + " | MRE " + " / ".join(row[3:]))
    per_source(src, sets, k, k_pnm, k_gnn, k_dd)

    # sensitivity: d log K / d (uniform shift of one feature over all pores or throats)
    sens = {f"pore {f}": [] for f in PORE_FEATURES} | {f"throat {f}": [] for f in THROAT_FEATURES}
    for i in np.r_[sets["held-out"], sets["cross-scale"]]:
        inp = dict(inputs[i])
        x = inp["x"].clone().requires_grad_(True)
        e = inp["e"].clone().requires_grad_(True)
        g = gnn(x, e, inp["conns"], inp["g0"])
        from basinsx.porenet.torch_solver import permeability_torch

        torch.log(permeability_torch(nets[i], g, flow_system=inp["system"])).backward()
        for j, f in enumerate(PORE_FEATURES):
            sens[f"pore {f}"].append(float(x.grad[:, j].sum()))
        for j, f in enumerate(THROAT_FEATURES):
            sens[f"throat {f}"].append(float(e.grad[:, j].sum()))
    print("\nsensitivity d log K / d(feature shift), mean +- sd over held-out and cross-scale samples")
    for f, v in sens.items():
        print(f"  {f:>26}: {np.mean(v):+.3f} +- {np.std(v):.3f}")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharex=True, sharey=True)
        md = 9.869233e-16
        for ax, (title, pred) in zip(axes, [("classical PNM", k_pnm), ("GNN-PNM", k_gnn), ("data-driven GNN", k_dd)]):
            for name, idx, mk in [("train", sets["train"], "."), ("held-out", sets["held-out"], "o"),
                                  ("cross-scale", sets["cross-scale"], "s")]:
                ax.loglog(k[idx] / md, pred[idx] / md, mk, label=name, alpha=0.8)
            lo, hi = k.min() / md / 3, k.max() / md * 3
            ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
            ax.set_title(title)
            ax.set_xlabel("K LBM (mD)")
        axes[0].set_ylabel("K predicted (mD)")
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"parity plot written to {args.plot}")


if __name__ == "__main__":
    main()
