"""Permeability of pore networks: the analytic cubic case, conductance models, and a gradient.

    python examples/pore_network.py [OUTDIR]

Runs offline in seconds (torch is used for the adjoint gradient).
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from basinsx import porenet

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)

# uniform cubic network: K = g mu / a exactly
a, g, mu = 1e-4, 2e-15, 1e-3
net = porenet.cubic((12, 8, 8), spacing=a)
res = porenet.permeability(net, g=np.full(net.sizes["throat"], g), mu=mu)
print(f"uniform cubic: K = {float(res.permeability):.6e} m2, analytic g mu / a = {g * mu / a:.6e} m2")

# random diameters and the three conductance models
rng = np.random.default_rng(0)
net = porenet.cubic((15, 10, 10), spacing=a, pore_diameter=rng.uniform(0.3, 0.6, 1500) * a)
for model in porenet.MODELS:
    k = porenet.permeability(net, g=model)
    print(f"{model:>22s}: K = {float(k.permeability) / porenet.MILLIDARCY:8.1f} mD")

# dK/dg by the discrete adjoint: which throats carry the permeability
g0 = torch.tensor(porenet.conductance(net, "hagen_poiseuille").values, dtype=torch.float64, requires_grad=True)
k = porenet.permeability_torch(net, g0)
k.backward()
share = (g0.grad * g0).detach().numpy() / k.item()  # elasticity of K to each throat, sums to 1
print(f"sum of throat elasticities dlnK/dln g = {share.sum():.6f} (1 for a linear network)")

fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
ax.hist(share, bins=60, log=True)
ax.set(xlabel="throat's share of K: elasticity ∂ln K / ∂ln g (sums to 1)", ylabel="number of throats (log scale)",
       title=f"which of the {share.size} throats carry the permeability")
fig.savefig(out / "pore_network.png", dpi=100)
print(f"wrote {out / 'pore_network.png'}")
