"""Reading every variable of the Caravan basins: zarr store vs parsing the source files.

    python benchmarks/store.py [../shared/data/caravan] [--repeat 3]

Prints the time to parse the source netCDF files (basinsx.read_caravan, eager),
the time to open the zarr store, the time to read every variable from it, and the
ratios. Both reads produce the same in-memory Dataset (checked).
"""

import shutil
import tempfile
from pathlib import Path

import xarray as xr
from common import CARAVAN, argument_parser, best_of

import basinsx


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("caravan", nargs="?", default=str(CARAVAN))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--format", default="netcdf", choices=["netcdf", "csv"])
    args = parser.parse_args(argv)

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
