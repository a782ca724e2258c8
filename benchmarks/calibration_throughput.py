"""Benchmark 3: throughput of ``calibrate`` on 2 cores and peak memory streaming from zarr.

The Caravan CAMELS-US basins of ``../shared/data/caravan`` are written once to a zarr store
chunked by basin; ``calibrate`` (GR4J, 1 - KGE, 8 starts) then runs lazily on the store
with a 2-process ``distributed.LocalCluster`` for growing numbers of basins. Peak memory is
the largest sum of the resident set sizes of the client and the workers, sampled every
0.1 s. A serial in-process run on a few basins gives the per-basin cost on one core.

    python benchmarks/calibration_throughput.py --sizes 10,25,50,100 --store /tmp/caravan_cal.zarr
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

from common import PeakMemory, argument_parser, caravan

import basinsx
from basinsx.calibration import calibrate

KW = dict(model="gr4j", loss="kge", period=slice("1982", "1995"), warmup=365, n_starts=8)


def warm_up():
    """Import the model on a worker so that the timings exclude imports and numba cache loads."""
    import basinsx.models

    basinsx.models.get("gr4j").run([300.0, 0.0, 60.0, 2.0], [[1.0] * 30, [1.0] * 30])


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--sizes", default="10,25,50,100", help="numbers of basins to calibrate")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--basin-chunk", type=int, default=2)
    parser.add_argument("--serial", type=int, default=4, help="basins for the serial one-core reference")
    parser.add_argument("--store", default="/tmp/caravan_cal.zarr")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from distributed import Client, LocalCluster

    store = Path(args.store)
    if not store.exists():
        ds = caravan("era5")[["prcp", "pet", "streamflow"]]
        basinsx.to_zarr(ds, store, basin_chunk=args.basin_chunk)
    ds = basinsx.open_dataset(store)
    print(f"store {store}: {ds.sizes['basin']} basins, chunks {ds['prcp'].chunks[0][:3]}... x {ds.sizes['time']} days")

    t0 = time.perf_counter()
    calibrate(ds.isel(basin=slice(0, args.serial)).compute(), **KW)
    serial = (time.perf_counter() - t0) / args.serial
    print(f"serial, one core: {serial:.2f} s per basin")

    rows = []
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, Client(cluster) as client:
        client.run(warm_up)
        for n in map(int, args.sizes.split(",")):
            sub = ds.isel(basin=slice(0, n))
            with PeakMemory(interval=0.1) as mem:  # client + worker processes
                t0 = time.perf_counter()
                out = calibrate(sub, **KW).compute()
                wall = time.perf_counter() - t0
            failed = int(out["params"].isnull().any("param").sum())
            rows.append((n, wall, mem.peak / 2**20, failed))
            print(f"{n:4d} basins: {wall:7.1f} s wall, {n / wall * 60:6.1f} basins/min, "
                  f"speed-up over one core {serial * n / wall:.2f}x, peak RSS (client + workers) "
                  f"{mem.peak / 2**20:7.0f} MiB, failed {failed}, load average {os.getloadavg()[0]:.1f}", flush=True)
    print("\nbasins  wall_s  basins_per_min  speedup_vs_1core  peak_MiB")
    for n, wall, peak, _ in rows:
        print(f"{n:6d} {wall:7.1f} {n / wall * 60:15.1f} {serial * n / wall:17.2f} {peak:9.0f}")


if __name__ == "__main__":
    main()
