"""Reading every variable of the Caravan basins: zarr store vs parsing the source files.

    python benchmarks/store.py [../shared/data/caravan] [--repeat 3]

Prints the time to parse the source netCDF files (basinsx.read_caravan, eager),
the time to open the zarr store, the time to read every variable from it, and the
ratios. Both reads produce the same in-memory Dataset (checked).
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import xarray as xr

import basinsx


def best_of(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("caravan", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/caravan"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--format", default="netcdf", choices=["netcdf", "csv"])
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="basinsx-bench-"))
    try:
        t_parse, parsed = best_of(lambda: basinsx.read_caravan(args.caravan, format=args.format), args.repeat)
        store = basinsx.to_zarr(parsed, workdir / "caravan.zarr", basin_chunk=16)
        t_open, _ = best_of(lambda: basinsx.open_dataset(store), args.repeat)
        t_read, loaded = best_of(lambda: basinsx.open_dataset(store).load(), args.repeat)
        xr.testing.assert_allclose(loaded, parsed)
        n = parsed.sizes["basin"]
        size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 1e6
        print(f"{n} basins x {parsed.sizes['time']} days, {len(parsed.data_vars)} variables; store {size:.1f} MB")
        print(f"parse source files ({args.format}): {t_parse:8.3f} s")
        print(f"open zarr store:           {t_open:8.3f} s")
        print(f"read everything from zarr: {t_read:8.3f} s")
        print(f"ratio parse / zarr read:   {t_parse / t_read:8.1f} x")
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
