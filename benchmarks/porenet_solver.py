"""basinsx.porenet.permeability vs OpenPNM StokesFlow (default solver) on the same networks.

Both sides get the same network and the same throat conductances (cones and cylinders
with random diameters); each timing covers building the linear system, solving it and
computing the inlet flow rate (network and conductance construction excluded). The flow
rates are compared to 1e-8 relative. Also checks the Berea and F42A Statoil networks.

Run: python benchmarks/porenet_solver.py [--sizes 10000 100000 1000000] [--repeat 3]
"""

from __future__ import annotations

import warnings

import numpy as np
from common import STATOIL, argument_parser, best_of

from basinsx.porenet import (
    cones_and_cylinders,
    cubic,
    from_statoil,
    hagen_poiseuille,
    permeability,
    to_openpnm,
    trim_disconnected,
)


def openpnm_rate(pn, g):
    import openpnm as op

    phase = op.phase.Phase(network=pn)
    phase["throat.hydraulic_conductance"] = g
    sf = op.algorithms.StokesFlow(network=pn, phase=phase)
    sf.set_value_BC(pores=pn.pores("xmin"), values=1.0)
    sf.set_value_BC(pores=pn.pores("xmax"), values=0.0)
    sf.run()
    return float(sf.rate(pores=pn.pores("xmin"))[0])


def main(argv=None):
    ap = argument_parser(__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    import openpnm as op

    print(f"openpnm {op.__version__}, default solver {op.Workspace().settings.default_solver}")
    print(f"{'network':>16} {'pores':>9} {'openpnm s':>10} {'basinsx s':>10} {'method':>7} {'ratio':>7} "
          f"{'rel diff':>9}")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        side = round(n ** (1 / 3))
        a = 1e-4
        net = cubic((side, side, side), a)
        net = cubic((side, side, side), a, pore_diameter=rng.uniform(0.4, 0.8, net.sizes["pore"]) * a,
                    throat_diameter=rng.uniform(0.2, 0.35, net.sizes["throat"]) * a)
        g = cones_and_cylinders(net).values
        pn = to_openpnm(net)
        t_op, q_op = best_of(lambda: openpnm_rate(pn, g), args.repeat)
        for method in ("direct", "amg") if side ** 3 <= 20_000 else ("amg",):
            t_bx, res = best_of(lambda: permeability(net, g, method=method), args.repeat)
            q = float(res["flow_rate"])
            print(f"{f'cubic {side}^3':>16} {side**3:>9} {t_op:10.3f} {t_bx:10.3f} {method:>7} {t_op / t_bx:7.2f} "
                  f"{abs(q - q_op) / q_op:9.1e}", flush=True)
    if STATOIL.exists():
        for name in ("Berea", "F42A"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net = trim_disconnected(from_statoil(STATOIL / name))
            g = hagen_poiseuille(net).values
            pn = to_openpnm(net)
            t_op, q_op = best_of(lambda: openpnm_rate(pn, g), args.repeat)
            t_bx, res = best_of(lambda: permeability(net, g, method="direct"), args.repeat)
            q = float(res["flow_rate"])
            print(f"{'statoil ' + name:>16} {net.sizes['pore']:>9} {t_op:10.3f} {t_bx:10.3f} {'direct':>7} "
                  f"{t_op / t_bx:7.2f} {abs(q - q_op) / q_op:9.1e}   K = "
                  f"{res['permeability'].attrs['millidarcy']:.1f} mD", flush=True)


if __name__ == "__main__":
    main()
