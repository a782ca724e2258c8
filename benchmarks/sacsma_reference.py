"""basinsx's SAC-SMA next to jsacsma 0.2.5's (the open SAC-SMA on PyPI) at equal parameters, and its run cost.

Sample basins, 15 years of real forcing with Oudin PET, no snow. jsacsma runs in its own virtual environment
(``--jsacsma-python``: a Python with ``jsacsma`` and numpy; ``pip install --no-deps jsacsma jsnow17 numpy``
suffices for its NumPy SAC-SMA), called once as a subprocess on all sets; its ``sacsma_simulate_numpy`` returns
the unrouted channel inflow, compared with basinsx's (``sacsma_run``'s budget, before the unit hydrograph).
Both start with every store half full (``ADIMC`` at half of ``UZTWM + LZTWM``), ``RIVA = SIDE = 0``,
``RSERV = 0.3``.

jsacsma is not Burnash's ``FLAND1``: one step a day (no increments); ET takes the full demand from upper-zone
tension water first (not ``E UZTWC/UZTWM``); a percolation demand ``PBASE (1 + ZPERC DEFR^REXP)`` without the
``UZFWC/UZFWM`` factor, taken before the day's input; a fixed primary/supplemental split ``LZFPM/(LZFPM + LZFSM)``;
no resupply of lower-zone tension water; its own ADIMP-area runoff.
The comparison therefore measures the structural difference (printed: the ratio of the long-term channel
inflow, NSE of jsacsma's series against basinsx's, over ``--sets`` Latin-hypercube parameter sets); the exact
check of basinsx's ``FLAND1`` is the plain-Python re-implementation in ``tests/models/test_sacsma.py``. Then
the cost of one run with and without the Jacobian (best of ``--repeat``), next to gr4j's.

    python benchmarks/sacsma_reference.py --jsacsma-python /work/venv-sac/bin/python
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
from basinsx.models.sacsma import NUH, RSERV, sacsma_run

#: run in jsacsma's environment: read the batch, run its NumPy SAC-SMA per column, write the channel inflow
JSACSMA = """
import sys
import numpy as np
from jsacsma.parameters import SacSmaParameters
from jsacsma.sacsma import sacsma_simulate_numpy

data = np.load(sys.argv[1])
p, e, theta, names = data["prcp"], data["pet"], data["theta"], list(data["names"])
out = []
for c in range(theta.shape[0]):
    par = dict(zip(names, theta[c]))
    par.update(RIVA=0.0, SIDE=0.0, RSERV=float(data["rserv"]))
    q, _ = sacsma_simulate_numpy(p[:, c], e[:, c], SacSmaParameters(**par))
    out.append(q)
np.savez(sys.argv[2], q=np.stack(out, axis=1))
"""
#: basinsx's SAC-SMA parameters that jsacsma shares (upper-case there)
SHARED = ("uztwm", "uzfwm", "uzk", "zperc", "rexp", "lztwm", "lzfsm", "lzfpm", "lzsk", "lzpk", "pfree", "pctim",
          "adimp")


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--jsacsma-python", default="python", help="a Python with jsacsma and numpy")
    parser.add_argument("--basins", default="01031500,09510200,12010000")
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--years", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from scipy.stats import qmc

    basins = args.basins.split(",")
    ds = basinsx.open_dataset("sample", basins=basins, chunks=None)
    ds = ds.assign(pet=ds.hydro.pet("oudin")).isel(time=slice(0, 365 * args.years))
    m = bm.get("sacsma")
    lo, hi = np.array([m.bounds[p] for p in m.params]).T
    theta = qmc.scale(qmc.LatinHypercube(d=len(lo), seed=args.seed).random(args.sets), lo, hi)
    forcing = {b: np.vstack([ds[v].sel(basin=b).values.astype(float) for v in m.forcings]) for b in basins}
    cols = [(b, k) for b in basins for k in range(len(theta))]
    idx = [m.params.index(p) for p in SHARED]

    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(inp, prcp=np.stack([forcing[b][0] for b, _ in cols], axis=1),
                 pet=np.stack([forcing[b][1] for b, _ in cols], axis=1),
                 theta=np.stack([theta[k][idx] for _, k in cols]), names=np.array([p.upper() for p in SHARED]),
                 rserv=RSERV)
        subprocess.run([args.jsacsma_python, "-c", JSACSMA, str(inp), str(out)], check=True)
        q_ref = np.load(out)["q"]

    n_days = forcing[basins[0]].shape[1]
    print(f"{len(basins)} basins x {len(theta)} parameter sets, {n_days} days; unrouted channel inflow, "
          "first year left out (spin-up)")
    print(f"{'basin':10s} {'volume ratio jsacsma/basinsx (min, median, max)':>48s} {'NSE (min, median, max)':>26s}")
    for b in basins:
        ratio, nse = [], []
        for k in range(len(theta)):
            budget = np.zeros((n_days, 4))
            sacsma_run(theta[k], forcing[b], 0, False, 0, np.full(7 + NUH, np.nan), budget)
            tci, ref = budget[365:, 2], q_ref[365:, cols.index((b, k))]
            ratio.append(ref.sum() / tci.sum())
            nse.append(1 - np.sum((ref - tci) ** 2) / np.sum((tci - tci.mean()) ** 2))
        r, s = np.percentile(ratio, [0, 50, 100]), np.percentile(nse, [0, 50, 100])
        print(f"{b:10s} {r[0]:16.2f} {r[1]:15.2f} {r[2]:15.2f} {s[0]:9.2f} {s[1]:8.2f} {s[2]:8.2f}")

    f = forcing[basins[0]]
    print(f"\none {f.shape[1]}-day run (basin {basins[0]}, mid-range parameters), best of {args.repeat}")
    for name in ("sacsma", "gr4j"):  # gr4j for scale, timed alike
        mod = bm.get(name)
        th = 0.5 * np.sum([mod.bounds[p] for p in mod.params], axis=1)
        t_q, _ = best_of(lambda: mod.run(th, f, sensitivities=False), args.repeat)
        t_j, _ = best_of(lambda: mod.run(th, f), args.repeat)
        print(f"{name:6s} flow {1e3 * t_q:.2f} ms ({1 / t_q:.0f} runs/s), flow + Jacobian {1e3 * t_j:.2f} ms "
              f"({1 / t_j:.0f} runs/s), ratio {t_j / t_q:.1f}")


if __name__ == "__main__":
    main()
