"""GR4J with sensitivities for many basins: side by side (``gr4j_sens_many``) vs one basin after another.

The regional learner's model call (``Model.run_batch`` -> ``_grcore.gr_batch``) for ``--basins`` Caravan
basins (``../shared/data``, Oudin PET, GR4J + degree-day snow and GR4J alone), random parameters within the
bounds, 365 days of warm-up. Contenders, called directly (compiled, no input checks), timed in CPU time
(``time.process_time``) with the repeats interleaved so that load on the machine hits all alike:

- ``one by one``: ``gr4j_sens`` basin after basin (``gr_batch`` before ``gr4j_sens_many``);
- ``many / K``: ``gr4j_sens_many`` in blocks of ``K`` basins (``--blocks``; 0: all basins in one block).

The results must equal the one-by-one run's bit for bit. Printed: median and minimum CPU ms per call,
the ratio of the medians to one by one.

    python benchmarks/gr4j_sens_many.py --repeat 30
"""

from __future__ import annotations

import time

import embedding_data
import numpy as np
from common import argument_parser
from numba import njit

import basinsx.models as bm
from basinsx.models._grcore import gr4j_sens, gr4j_sens_many


@njit(cache=True)
def one_by_one(theta, forcing, warmup, snow):
    """``gr4j_sens`` basin after basin, as ``gr_batch`` ran it before ``gr4j_sens_many``."""
    nb, d = theta.shape
    n = forcing.shape[2] - warmup
    q = np.empty((nb, n))
    jac = np.empty((nb, n, d))
    for b in range(nb):
        qb, jb = gr4j_sens(theta[b], forcing[b], warmup, snow)
        q[b] = qb
        jac[b] = jb
    return q, jac


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--basins", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--blocks", default="4,8,16,32,0", help="block sizes, comma-separated (0: all basins)")
    parser.add_argument("--days", default="730,5840", help="days per run (365 of them warm-up), comma-separated")
    args = parser.parse_args(argv)
    ds = embedding_data.load(pet="oudin").isel(basin=slice(0, args.basins)).sel(time=slice("1989-10-01", None))
    rng = np.random.default_rng(0)
    for snow in (1, 0):
        m = bm.get("gr4j", snow=bool(snow) or None)
        lo = np.array([m.bounds[p][0] for p in m.params])
        hi = np.array([m.bounds[p][1] for p in m.params])
        theta = lo + rng.random((args.basins, len(lo))) * (hi - lo)
        for days in map(int, args.days.split(",")):
            f = np.stack([ds[v].values[:, :days] for v in m.forcings], axis=1).astype(np.float64)
            f[:, 1] = np.maximum(f[:, 1], 0.0)
            runs = {"one by one": lambda: one_by_one(theta, f, 365, snow)}
            for k in map(int, args.blocks.split(",")):
                k = k or args.basins
                runs[f"many / {k}"] = lambda k=k: gr4j_sens_many(theta, f, 365, snow, k)
            ref = runs["one by one"]()
            for name, fn in runs.items():
                q, jac = fn()
                assert np.array_equal(q, ref[0]) and np.array_equal(jac, ref[1]), name
            cpu = {name: [] for name in runs}
            for _ in range(args.repeat):
                for name, fn in runs.items():
                    c = time.process_time()
                    fn()
                    cpu[name].append(time.process_time() - c)
            base = np.median(cpu["one by one"])
            print(f"{'GR4J + snow' if snow else 'GR4J'}, {args.basins} basins x {days} days, "
                  f"CPU ms (median, min of {args.repeat} interleaved), ratio of medians to one by one:")
            for name, t in cpu.items():
                print(f"  {name:12s} {np.median(t) * 1e3:8.2f} {min(t) * 1e3:8.2f}  {base / np.median(t):5.2f}x")


if __name__ == "__main__":
    main()
