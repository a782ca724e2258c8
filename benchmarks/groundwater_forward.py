"""Time forward runs of basinsx.groundwater (flow + transport) on the grids of inversion cases 1-3, by scheme.

Usage: python benchmarks/groundwater_forward.py [--repeat 3] [--fields 5] [--advection upwind mc]

Each case as its benchmark script sets it up (grid, porosity, dispersivities, heads, wells,
output times), on ``--fields`` conductivity fields drawn as there: case 1, 40 x 80 cells on
10 m x 20 m, eight zones of permeability 1e-12..9.9e-12 m2, 25 wells, concentrations at 20 d;
case 2, 64 x 64 cells on 10 m x 10 m, ln k from the 100-term KLE (variance 2, l = 2.5 m), 81
wells, every 2 d to 40 d; case 3, 80 x 80 cells on 800 m x 800 m, binary channel fields, 49
wells, every 2 years to 24 years.

Per case and scheme: the median forward time (each run the best of ``--repeat``), the flow solve
alone, transport steps, the worst mass-balance error, the largest undershoot before clipping (of
c_in) and clipped mass (of the solute mass); then, per case, how far the well concentrations of
each scheme are from those of the first (RMS and max, of c_in): what a change of scheme does to
the observations a training set holds. No MODFLOW/MT3DMS binary is available here, so there is
no peer timing; the schemes are verified against Ogata-Banks in tests/test_groundwater.py.
"""

import numpy as np
from common import argument_parser, best_of

from basinsx.groundwater import Aquifer, conductivity
from basinsx.inverse import KLE, channel_fields, latin_hypercube, zone_map, zoned_field


def wells(n, extent):
    xy = (np.arange(n) + 0.5) * extent / n
    return {f"w{j}{i}": (x, y) for j, y in enumerate(xy) for i, x in enumerate(xy)}


def cases(n_fields):
    """(name, aquifer keywords, fields K (m/d), output times (d)) of the three cases."""
    bounds = {**{f"k{i + 1}": (1e-12, 9.9e-12) for i in range(8)}, "c0": (1e-3, 1.0)}
    theta = latin_hypercube(bounds, n_fields, seed=99).values
    w1 = {f"w{j}{i}": (x, y) for j, y in enumerate((1.0, 3.0, 5.0, 7.0, 9.0))
          for i, x in enumerate((2.0, 6.0, 10.0, 14.0, 18.0))}
    case1 = dict(shape=(40, 80), length=(10.0, 20.0), porosity=0.3, dispersivity=(0.05, 0.005), diffusion=1e-4,
                 heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": 1.0}, wells=w1)
    K1 = [conductivity(zoned_field(zone_map((40, 80)), t[:8])) for t in theta]
    kle = KLE((64, 64), (10.0, 10.0), 2.5, variance=2.0, n_terms=100, kernel="isotropic")
    case2 = dict(shape=(64, 64), length=(10.0, 10.0), porosity=0.3, dispersivity=(0.05, 0.005), diffusion=1e-4,
                 heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": 1.0}, wells=wells(9, 10.0))
    xi = np.random.default_rng(0).standard_normal((n_fields, 100))
    K2 = [conductivity(2e-13) * np.exp(kle.field(x)) for x in xi]
    case3 = dict(shape=(80, 80), length=(800.0, 800.0), porosity=0.3, dispersivity=(5.0, 0.5), diffusion=0.0,
                 heads={"left": 5.0, "right": 0.0}, inflow_conc={"left": 1.0}, wells=wells(7, 800.0))
    K3 = [conductivity(np.where(f > 0.5, 5.46e-12, 1.0e-13)) for f in channel_fields(n_fields, (80, 80), seed=0).values]
    return [("case 1, 40x80", case1, K1, np.array([20.0])),
            ("case 2, 64x64", case2, K2, np.arange(2.0, 41.0, 2.0)),
            ("case 3, 80x80", case3, K3, np.arange(2.0, 25.0, 2.0) * 365.25)]


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fields", type=int, default=5)
    parser.add_argument("--advection", nargs="+", default=["upwind", "mc"])
    a = parser.parse_args(argv)
    print(f"{'case':14s} {'scheme':8s} {'forward [ms]':>12s} {'flow [ms]':>9s} {'fwd/flow':>8s} {'steps':>6s} "
          f"{'mass err':>9s} {'undershoot':>10s} {'clipped':>8s}")
    for name, kw, fields, times in cases(a.fields):
        obs, t_fwd = {}, {}
        for scheme in a.advection:
            aq = Aquifer(**kw, advection=scheme)
            runs = [(best_of(lambda K=K: aq.simulate(K, times), a.repeat), best_of(lambda K=K: aq.flow(K), a.repeat)[0])
                    for K in fields]
            dss = [ds for (_, ds), _ in runs]
            t_fwd[scheme] = np.median([t for (t, _), _ in runs])
            t_flow = np.median([t for _, t in runs])
            steps = np.median([np.sum(np.ceil(np.diff(np.r_[0.0, times]) / ds.attrs["max_dt"] - 1e-9)) for ds in dss])
            err = max(abs(float(ds.mass[-1] - ds.net_inflow[-1]) - ds.attrs["clipped_mass"]) for ds in dss)
            under = max(ds.attrs["undershoot"] for ds in dss)
            clipped = max(ds.attrs["clipped_mass"] / float(ds.mass[-1]) for ds in dss)
            obs[scheme] = np.stack([ds.well_conc.values for ds in dss])
            print(f"{name:14s} {scheme:8s} {1e3 * t_fwd[scheme]:12.1f} {1e3 * t_flow:9.1f} {t_fwd[scheme] / t_flow:8.1f} "
                  f"{steps:6.0f} {err:9.1e} {under:10.1e} {clipped:8.1e}", flush=True)
        first = a.advection[0]
        for scheme in a.advection[1:]:
            d = obs[scheme] - obs[first]
            print(f"{name}: {scheme} / {first} forward time {t_fwd[scheme] / t_fwd[first]:.2f}; well concentrations "
                  f"differ by RMS {np.sqrt(np.mean(d**2)):.4f}, max {np.abs(d).max():.4f} (of c_in)")


if __name__ == "__main__":
    main()
