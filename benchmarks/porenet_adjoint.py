"""Cost of the discrete adjoint: backward vs forward time of the differentiable solver.

For K (closed form, no solve) and for a loss on all pore pressures (general adjoint, one
solve with the factorization / AMG hierarchy kept from the forward pass).

Run: python benchmarks/porenet_adjoint.py --side 30 --repeat 3
"""

from __future__ import annotations

import time

import numpy as np
import torch
from common import argument_parser, best_of

from basinsx.porenet import cones_and_cylinders, cubic
from basinsx.porenet.torch_solver import permeability_torch, pressure_torch


def main(argv=None):
    ap = argument_parser(__doc__)
    ap.add_argument("--side", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    s, a = args.side, 1e-4
    net = cubic((s, s, s), a)
    net = cubic((s, s, s), a, pore_diameter=rng.uniform(0.4, 0.8, net.sizes["pore"]) * a,
                throat_diameter=rng.uniform(0.2, 0.35, net.sizes["throat"]) * a)
    g0 = torch.tensor(cones_and_cylinders(net).values)
    w = torch.tensor(rng.normal(size=net.sizes["pore"]))
    print(f"cubic {s}^3 = {s**3} pores")
    for method in ("direct", "amg"):
        for name, loss in (("K (closed form)", lambda g: permeability_torch(net, g, method=method)),
                           ("sum w p (adjoint solve)", lambda g: (pressure_torch(net, g, method=method) * w).sum())):
            g = g0.clone().requires_grad_(True)
            t_fwd, _ = best_of(lambda: loss(g), args.repeat)
            out = [None]

            def fwd():
                out[0] = loss(g)

            def bwd():
                out[0].backward()

            times = []
            for _ in range(args.repeat):
                fwd()
                t0 = time.perf_counter()
                bwd()
                times.append(time.perf_counter() - t0)
            print(f"  {method:>6} {name:>24}: forward {t_fwd:.3f} s, backward {min(times):.4f} s, "
                  f"backward/forward = {min(times) / t_fwd:.3f}", flush=True)


if __name__ == "__main__":
    main()
