"""The ``basinsx`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _datasets(args) -> None:
    from .catalog import catalog

    for name, description in catalog().items():
        print(f"{name}\n    {' '.join(description.split())}")


def _fetch(args) -> None:
    from .catalog import fetch

    kwargs = {"subset": args.subset} if args.subset else {}
    print(fetch(args.name, **kwargs))


def _convert(args) -> None:
    from .store import open_dataset, to_zarr

    kwargs = {"forcing": args.forcing} if args.forcing else {}
    ds = open_dataset(args.src, basins=args.basins, chunks=args.basin_chunk, **kwargs)
    out = to_zarr(ds, args.dest, basin_chunk=args.basin_chunk, overwrite=args.overwrite, progress=True)
    print(f"wrote {out}: {ds.sizes['basin']} basins, {ds.sizes.get('time', 0)} days, {len(ds.data_vars)} variables")


def _demo(args) -> None:
    from .demo import run

    run(Path(args.out), model=args.model, n_starts=args.n_starts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="basinsx", description="xarray-native large-sample basin studies")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("datasets", help="list the data sets basinsx can fetch")
    p.set_defaults(func=_datasets)

    p = sub.add_parser("fetch", help="download, verify and convert a catalog data set to zarr (cached)")
    p.add_argument("name", help="catalog name, see `basinsx datasets`")
    p.add_argument("--subset", help="Caravan subset to convert (default: the catalog's)")
    p.set_defaults(func=_fetch)

    p = sub.add_parser("convert", help="convert a CAMELS-US folder, Caravan folder or store to a zarr store")
    p.add_argument("src", help="source: a path, 'sample' or a catalog name")
    p.add_argument("dest", help="zarr store to write (atomically)")
    p.add_argument("--basins", nargs="+", help="basin ids to keep")
    p.add_argument("--forcing", nargs="+", help="CAMELS-US forcing products (default daymet)")
    p.add_argument("--basin-chunk", type=int, default=16, help="basins per zarr chunk (default 16)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.set_defaults(func=_convert)

    p = sub.add_parser("demo", help="the main job on the bundled sample, offline")
    p.add_argument("--out", default="basinsx-demo", help="folder for the figure and results (default basinsx-demo)")
    p.add_argument("--model", default="gr4j", help="conceptual model to calibrate (default gr4j)")
    p.add_argument("--n-starts", type=int, default=4, help="multi-start count per basin (default 4)")
    p.set_defaults(func=_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"basinsx {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
