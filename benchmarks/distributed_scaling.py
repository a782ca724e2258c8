"""Scaling of ``calibrate`` over dask worker processes, and peak worker memory from a zarr store.

    python benchmarks/distributed_scaling.py [--basins 40] [--n-starts 4]

1. Converts the 100 Caravan basins of ../shared/data/caravan to a zarr store (temporary).
2. Calibrates GR4J (KGE, 1982-1995, 1981 spin-up) on the first ``--basins`` basins on a
   LocalCluster with 1 worker process, then with 2 (one thread each), and prints the speed-up
   and the parallel efficiency; results of both runs must be identical.
3. Calibrates all 100 basins from the store on 2 workers and reports the peak resident memory
   of each worker (sampled every 0.2 s), next to the same for 20 basins: memory should be flat
   in the number of basins.
"""

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr
from common import PeakMemory, argument_parser, caravan, dask_worker_memory

import basinsx


def calibrate(store, basins, n_starts, chunk):
    ds = basinsx.open_dataset(store, chunks={"basin": chunk})
    if basins is not None:
        ds = ds.isel(basin=slice(0, basins))
    return ds.hydro.calibrate(model="gr4j", loss="kge", period=slice("1982", "1995"), warmup=365,
                              n_starts=n_starts, seed=0).compute()


def main(argv=None):
    from distributed import Client, LocalCluster

    parser = argument_parser(__doc__)
    parser.add_argument("--basins", type=int, default=40)
    parser.add_argument("--n-starts", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=2)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="basinsx-scale-"))
    try:
        store = basinsx.to_zarr(caravan("era5"), work / "caravan.zarr", basin_chunk=args.chunk)
        timings, results = {}, {}
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster, Client(cluster):
                calibrate(store, 2, 1, args.chunk)  # compile the kernels in every worker first
                start = time.perf_counter()
                results[workers] = calibrate(store, args.basins, args.n_starts, args.chunk)
                timings[workers] = time.perf_counter() - start
        xr.testing.assert_identical(results[1], results[2])
        speedup = timings[1] / timings[2]
        print(f"calibrate {args.basins} basins x {args.n_starts} starts: 1 worker {timings[1]:.1f} s, "
              f"2 workers {timings[2]:.1f} s; speed-up {speedup:.2f}x, efficiency {speedup / 2:.0%} (identical results)")

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster, Client(cluster) as client:
            calibrate(store, 2, 1, args.chunk)
            for n in (20, 100):
                with PeakMemory(dask_worker_memory(client), interval=0.2) as mem:
                    start = time.perf_counter()
                    res = calibrate(store, n, 1, args.chunk)
                    secs = time.perf_counter() - start
                peaks = [v / 2**20 for v in mem.peaks.values()]
                print(f"{n:3d} basins from zarr, 1 start: {secs:6.1f} s, {n / secs:5.2f} basins/s, "
                      f"peak worker RSS {', '.join(f'{p:.0f}' for p in peaks)} MB, "
                      f"median KGE {float(np.nanmedian(res.kge)):.3f}")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
