"""Time one forward run of basinsx.groundwater (flow + transport) on the paper's grids.

Usage: python benchmarks/groundwater_forward.py [--repeat 5]

Case 2 grid: 64 x 64 cells on 10 m x 10 m, ln-K field from a KLE, heads 1/0 m, concentration
every 2 d to 40 d. Case 3 grid: 80 x 80 cells on 800 m x 800 m, binary channel field, heads
5/0 m, concentration every 2 years to 24 years. No MODFLOW/MT3DMS/TOUGHREACT binary is
available here, so the peer is the analytic split: the time of the flow solve alone, and the
number of implicit steps the transport needs.
"""


import numpy as np
from common import argument_parser, best_of

from basinsx.groundwater import Aquifer, conductivity
from basinsx.inverse import KLE, channel_fields


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args(argv).repeat
    kle = KLE((64, 64), (10.0, 10.0), 2.5, variance=2.0, n_terms=100)
    K2 = conductivity(2e-13) * np.exp(kle.sample(1, seed=0)[0][0])
    aq2 = Aquifer((64, 64), (10.0, 10.0), porosity=0.3, dispersivity=(0.1, 0.01),
                  heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": 1.0})
    ch = channel_fields(1, (80, 80), seed=0).values[0]
    K3 = conductivity(np.where(ch > 0, 5.46e-12, 1.0e-13))
    aq3 = Aquifer((80, 80), (800.0, 800.0), porosity=0.3, dispersivity=(5.0, 0.5),
                  heads={"left": 5.0, "right": 0.0}, inflow_conc={"left": 1.0})
    rows = []
    for name, aq, K, times in (
        ("64x64 (case 2)", aq2, K2, np.arange(2.0, 41.0, 2.0)),
        ("80x80 (case 3)", aq3, K3, np.arange(2.0, 25.0, 2.0) * 365.25),
    ):
        t_flow, _ = best_of(lambda: aq.flow(K), repeat)
        t_all, ds = best_of(lambda: aq.simulate(K, times), repeat)
        n_steps = int(np.sum(np.ceil(np.diff(np.r_[0.0, times]) / ds.attrs["max_dt"] - 1e-9)))
        rows.append((name, t_all, t_flow, n_steps, float(ds.mass[-1] - ds.net_inflow[-1] - ds.attrs["clipped_mass"])))
    print(f"{'grid':16s} {'forward [ms]':>12s} {'flow only [ms]':>14s} {'forward/flow':>12s} {'steps':>6s} {'mass-balance err':>16s}")
    for name, t_all, t_flow, n, err in rows:
        print(f"{name:16s} {1e3 * t_all:12.1f} {1e3 * t_flow:14.1f} {t_all / t_flow:12.1f} {n:6d} {err:16.2e}")
    print(f"80x80 / 64x64 forward time ratio: {rows[1][1] / rows[0][1]:.2f} (cells ratio {6400 / 4096:.2f})")


if __name__ == "__main__":
    main()
