"""basinsx's HBV next to hydrodl2's HBV 1.0 (Feng et al. 2022; Beck et al. 2020) at equal parameters, and its run cost.

Sample basins, 15 years of real forcing with Oudin PET, all stores starting empty. hydrodl2 runs in its own
virtual environment (``--hydrodl2-python``: a Python with ``hydrodl2`` and ``torch`` installed), called once as a
subprocess on the whole batch; its HBV core (``Hbv._PBM``) is given the parameters directly, in float64.

The two structures agree except where hydrodl2 has no counterpart: no snowfall correction (``sfcf = 1`` here),
a gamma unit hydrograph instead of the triangular ``maxbas`` (compared: hydrodl2's unrouted
``streamflow_no_rout`` against basinsx with ``maxbas = 1``, no routing), soil moisture floored at 1e-5 mm after
evapotranspiration, and the flow stored in float32. ``BETAET`` (a dynamic-parameter option) and capillary rise
(``hbv_2``) are off, which is HBV-96. Printed: max and median of ``|q - q_ref| / max q_ref`` per basin over
``--sets`` Latin-hypercube parameter sets in the bounds; then the cost of one run with and without the Jacobian
(best of ``--repeat``), as runs per second, next to gr4j's.

    python benchmarks/hbv_reference.py --hydrodl2-python /work/venv-hbv/bin/python
"""

from __future__ import annotations

import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
from common import argument_parser, best_of

import basinsx
import basinsx.models as bm

#: run in hydrodl2's environment: read the batch, run ``Hbv._PBM`` on it, write the unrouted flow
HYDRODL2 = """
import sys
import numpy as np
import torch
from hydrodl2.models.hbv.hbv import Hbv

data = np.load(sys.argv[1])
p, e, t, theta = data["prcp"], data["pet"], data["tmean"], data["theta"]  # (T, n), (T, n), (T, n), (n, 12)
model = Hbv(device=torch.device("cpu"))
model.muwts = None
n = theta.shape[0]
model.routing_param_dict = {"route_a": torch.zeros(n), "route_b": torch.zeros(n)}  # float32 as its flow
x = torch.from_numpy(np.stack([p, t, e], axis=-1))  # model.variables: prcp, tmean, pet
params = {name: torch.from_numpy(np.ascontiguousarray(
    np.broadcast_to(theta[:, i][None, :, None], (p.shape[0], n, 1)))) for i, name in enumerate(model.parameter_bounds)}
states = tuple(torch.zeros(n, 1, dtype=torch.float64) for _ in model.state_names)
with torch.no_grad():
    fluxes, _ = model._PBM(x, states, params)
np.savez(sys.argv[2], q=fluxes["streamflow_no_rout"][:, :, 0].double().numpy(),
         q0=fluxes["srflow_no_rout"][:, :, 0].double().numpy(), names=np.array(list(model.parameter_bounds)))
"""
#: hydrodl2's parameter names -> basinsx's
NAMES = {"parBETA": "beta", "parFC": "fc", "parK0": "k0", "parK1": "k1", "parK2": "k2", "parLP": "lp",
         "parPERC": "perc", "parUZL": "uzl", "parTT": "tt", "parCFMAX": "cfmax", "parCFR": "cfr", "parCWH": "cwh"}


def parameter_sets(model, n: int, seed: int) -> np.ndarray:
    """``n`` Latin-hypercube sets in the bounds, ``sfcf = 1`` and ``maxbas = 1`` (what hydrodl2 has)."""
    from scipy.stats import qmc

    lo, hi = np.array([model.bounds[p] for p in model.params]).T
    theta = qmc.scale(qmc.LatinHypercube(d=len(lo), seed=seed).random(n), lo, hi)
    theta[:, model.params.index("sfcf")] = 1.0
    theta[:, model.params.index("maxbas")] = 1.0
    return theta


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--hydrodl2-python", default="python", help="a Python with hydrodl2 and torch")
    parser.add_argument("--basins", default="01031500,09510200,12010000")
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--years", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    basins = args.basins.split(",")
    ds = basinsx.open_dataset("sample", basins=basins, chunks=None)
    ds = ds.assign(pet=ds.hydro.pet("oudin")).isel(time=slice(0, 365 * args.years))
    m = bm.get("hbv")
    theta = parameter_sets(m, args.sets, args.seed)
    forcing = {b: np.vstack([ds[v].sel(basin=b).values.astype(float) for v in m.forcings]) for b in basins}

    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        # one batch column per (basin, parameter set)
        cols = [(b, k) for b in basins for k in range(len(theta))]
        order = [m.params.index(NAMES[name]) for name in NAMES]
        np.savez(inp, **{v: np.stack([forcing[b][i] for b, _ in cols], axis=1) for i, v in enumerate(m.forcings)},
                 theta=np.stack([theta[k][order] for _, k in cols]))
        subprocess.run([args.hydrodl2_python, "-c", HYDRODL2, str(inp), str(out)], check=True)
        ref = np.load(out)
        assert [NAMES[n] for n in ref["names"]] == list(NAMES.values())
        q_ref, q0_ref = ref["q"], ref["q0"]

    print(f"{len(basins)} basins x {len(theta)} parameter sets, {forcing[basins[0]].shape[1]} days; "
          "err = |q - q_hydrodl2| / max q_hydrodl2 (unrouted, sfcf = maxbas = 1)")
    print(f"{'basin':10s} {'max err':>9s} {'median err':>10s} {'sets with Q0 > 0':>16s}")
    for b in basins:
        errs, quick = [], 0
        for k in range(len(theta)):
            c = cols.index((b, k))
            q, _ = m.run(theta[k], forcing[b], sensitivities=False)
            errs.append(np.abs(q - q_ref[:, c]) / q_ref[:, c].max())
            quick += bool(q0_ref[:, c].max() > 0)
        errs = np.concatenate(errs)
        print(f"{b:10s} {errs.max():9.2e} {np.median(errs):10.2e} {quick:16d}")

    f = forcing[basins[0]]
    print(f"\none {f.shape[1]}-day run (basin {basins[0]}, mid-range parameters), best of {args.repeat}")
    for name in ("hbv", "gr4j"):  # gr4j for scale, timed alike
        mod = bm.get(name)
        th = 0.5 * np.sum([mod.bounds[p] for p in mod.params], axis=1)
        fm = f[: len(mod.forcings)]
        t_q, _ = best_of(lambda: mod.run(th, fm, sensitivities=False), args.repeat)
        t_j, _ = best_of(lambda: mod.run(th, fm), args.repeat)
        print(f"{name:5s} flow {1e3 * t_q:.2f} ms ({1 / t_q:.0f} runs/s), flow + Jacobian {1e3 * t_j:.2f} ms "
              f"({1 / t_j:.0f} runs/s), ratio {t_j / t_q:.1f}")


if __name__ == "__main__":
    main()
