"""The ``basinsx`` command line."""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path


def _datasets(args) -> None:
    from .io.catalog import catalog

    for name, description in catalog().items():
        print(f"{name}\n    {' '.join(description.split())}")


def _fetch(args) -> None:
    from .io.catalog import fetch

    kwargs = {"subset": args.subset} if args.subset else {}
    print(fetch(args.name, **kwargs))


def _basins_per_chunk(text: str) -> int:
    if not text.lstrip("-").isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of basins, got {text!r}")
    return int(text)


def _not_the_input(src: str, out: str) -> None:
    if Path(src).expanduser().exists() and Path(out).expanduser().resolve() == Path(src).expanduser().resolve():
        raise ValueError(f"{out} is the input being read; write the result to another path")


# Options that do not change a result; every other parsed option is recorded in a result store and must match
# for a rerun to resume (options added later join automatically).
NOT_THE_RESULT = {"func", "command", "store", "out", "scheduler", "overwrite", "progress"}


def _run(args) -> dict:
    """What determines a result: the command, the input's identity and the options, by flag name."""
    from .io.open import source_id

    options = {f"--{k.replace('_', '-')}": v for k, v in vars(args).items() if k not in NOT_THE_RESULT}
    return {"command": args.command, "input": source_id(args.store), **options}


def _with_pet(ds, pet: str | None):
    """``ds`` with the ``--pet`` the user chose as its ``pet`` (as ``calibrate(pet=)`` does; CAMELS-US has none)."""
    from .inputs import choose_pet

    return ds if pet is None else choose_pet(ds, pet)[0]


def _convert(args) -> None:
    from .io import open_dataset
    from .io.store import check_destination, to_zarr

    _not_the_input(args.src, args.dest)
    check_destination(args.dest, args.overwrite)
    kwargs = {"forcing": args.forcing} if args.forcing else {}
    ds = open_dataset(args.src, basins=args.basins, chunks=args.basin_chunk, **kwargs)
    out = to_zarr(ds, args.dest, basin_chunk=args.basin_chunk, overwrite=args.overwrite, progress=True)
    print(f"wrote {out}: {ds.sizes['basin']} basins, {ds.sizes.get('time', 0)} days, {len(ds.data_vars)} variables")


def _scheduler(name: str | None):
    """A dask scheduler context: threads (default), processes, or a distributed scheduler address."""
    import contextlib

    import dask

    if name == "processes":  # pool workers must not outlive a client killed outright
        import functools
        import os

        from .progress import exit_with_parent

        watch = functools.partial(exit_with_parent, os.getpid())
        return dask.config.set({"scheduler": "processes", "multiprocessing.initializer": watch})
    if name is None or name in ("threads", "synchronous"):
        return dask.config.set(scheduler=name or "threads")
    from distributed import Client

    @contextlib.contextmanager
    def connected():
        with Client(name) as client:
            print(f"dask dashboard: {client.dashboard_link}")
            yield client

    return connected()


def _calibrate(args) -> None:
    from .io import open_dataset
    from .io.store import to_zarr_regions

    _not_the_input(args.store, args.out)
    ds = open_dataset(args.store, basins=args.basins, chunks=args.basin_chunk)
    period = slice(*args.period) if args.period else None
    result = ds.hydro.calibrate(model=args.model, loss=args.loss, period=period, warmup=args.warmup,
                                n_starts=args.n_starts, optimizer=args.optimizer, seed=args.seed, snow=args.snow,
                                pet=args.pet)
    with _scheduler(args.scheduler):
        out = to_zarr_regions(result, args.out, basin_chunk=args.basin_chunk, run=_run(args),
                              overwrite=args.overwrite, progress=True)
    done = open_dataset(out).compute()
    failed = int((done.message.astype(str).str.startswith("failed")).sum())
    print(f"wrote {out}: {done.sizes['basin']} basins, median KGE {float(done.kge.median()):.3f}, {failed} failed")
    if "at_bound" in done:
        per_param = done.at_bound.sum("basin")
        names = ", ".join(f"{p}: {int(n)}" for p, n in zip(done.param.values, per_param.values) if n)
        print(f"{int(done.at_bound.any('param').sum())} basins with a parameter on a bound" + (f" ({names})" if names
              else "") + "; see at_bound in the store")
    from .flags import summarize

    for line, _ in summarize(done):  # once, after the run: workers' warnings never reach us
        print(f"warning: {line}", file=sys.stderr)


def _embed(args) -> None:
    from . import _serialization
    from .embedding import KGSSL, evaluate
    from .io import open_dataset
    from .io.sample import KRATZERT_ATTRIBUTES
    from .io.store import check_destination, to_zarr

    _not_the_input(args.store, args.out)
    check_destination(args.out, args.overwrite)  # before training, not after
    if args.save:
        _serialization.check_destination(args.save, KGSSL.FORMAT, "KGSSL model", "--save")
    ds = _with_pet(open_dataset(args.store, basins=args.basins), args.pet)
    attributes = args.attributes
    if attributes == ["kratzert"]:
        attributes = [a for a in KRATZERT_ATTRIBUTES if a in ds]
    period = tuple(args.period) if args.period else None
    epochs = {} if args.epochs is None else {"epochs": args.epochs}
    model = KGSSL(inputs=tuple(args.inputs), dim=args.dim, seed=args.seed, device=args.device, **epochs)
    model.fit(ds, attributes=attributes, period=period, checkpoint=args.checkpoint, resume=args.resume)
    if args.save:
        model.save(args.save)
    out = model.transform(ds, period=period)
    to_zarr(out, args.out, overwrite=args.overwrite, progress=True)
    print(f"wrote {args.out}: embeddings of {out.sizes['basin']} basins ({args.dim} dims)")
    from .flags import summarize

    for line, _ in summarize(open_dataset(args.out)[["missing_forcing_days"]].compute()):  # once, as calibrate
        print(f"warning: {line}", file=sys.stderr)
    if attributes:
        scores = evaluate(out.attributes_pred, ds[attributes].to_array("attribute")).to_dataframe()
        print(scores.round(3).to_string())


def _porenet_dataset(args) -> None:
    from .porenet.dataset import build

    ds = build(args.out, n_berea=args.n_berea, n_synthetic=args.n_synthetic, size=args.size, n_large=args.n_large,
               large_size=args.large_size, seed=args.seed, berea_path=args.berea, progress=True,
               overwrite=args.overwrite)
    print(f"wrote {args.out}: {ds.sizes.get('sample', 0)} LBM-labelled pore networks")


def _demo(args) -> None:
    from .demo import run

    run(Path(args.out), model=args.model, n_starts=args.n_starts, snow=not args.no_snow)


def _calibrate_default(name: str):
    """``calibrate``'s own default of argument ``name``, so that the command line and Python agree."""
    import inspect

    from .calibration import calibrate

    return inspect.signature(calibrate).parameters[name].default


def _default_period() -> list[str]:
    """``calibrate``'s own default period, so that the command line and Python agree."""
    import inspect

    from .calibration import calibrate

    period = inspect.signature(calibrate).parameters["period"].default
    return [period.start, period.stop]


def build_parser() -> argparse.ArgumentParser:
    """The ``basinsx`` command line: one subcommand per task, each with its ``--help``."""
    from . import __version__
    from .models import SNOW_CODES, available

    models = ", ".join(available())  # from the registry, so the help names every model
    parser = argparse.ArgumentParser(prog="basinsx", description="xarray-native large-sample basin studies")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    p.add_argument("--basin-chunk", type=_basins_per_chunk, default=16, help="basins per zarr chunk (default 16)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.set_defaults(func=_convert)

    p = sub.add_parser("calibrate", help="calibrate a conceptual model on every basin of a store (restartable)")
    p.add_argument("store", help="zarr store, data-set folder, catalog name or 'sample'")
    p.add_argument("--out", required=True, help="result zarr store; a rerun skips basin blocks already written")
    p.add_argument("--model", default="gr4j", help=f"one of {models} (default gr4j)")
    p.add_argument("--loss", default="kge", help="loss name, e.g. kge, nse, lognse, kge2012, huber (default kge)")
    p.add_argument("--period", nargs=2, metavar=("START", "END"), default=_default_period(),
                   help=f"calibration period, dates or years (default {' '.join(_default_period())}, as in Python)")
    p.add_argument("--warmup", type=int, default=365, help="spin-up days before the period (default 365)")
    starts, optimizer = _calibrate_default("n_starts"), _calibrate_default("optimizer")
    p.add_argument("--n-starts", type=int, default=starts,
                   help=f"most gradient starts per basin, from the best screened points (default {starts})")
    p.add_argument("--optimizer", default=optimizer, choices=["lbfgsb", "lm"], help=f"(default {optimizer})")
    p.add_argument("--snow", nargs="?", const="degree_day", choices=tuple(SNOW_CODES),
                   help="snow module in front of the model (needs tmean): degree_day (also bare --snow), or airGR's "
                        "cemaneige / cemaneige_hyst (elevation layers from a hypsometry variable, else one layer)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--basins", nargs="+", help="basin ids to calibrate (default all)")
    p.add_argument("--basin-chunk", type=_basins_per_chunk, default=8,
                   help="basins per task and per written block (default 8)")
    p.add_argument("--pet", help="PET to use: oudin, hargreaves or priestley_taylor (computed from the forcing) or a "
                   "variable, e.g. pet (default: the data set's pet; CAMELS-US has none)")
    p.add_argument("--scheduler", help="threads (default), processes, or a dask-distributed scheduler address")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh: replace an existing --out store (a rerun without it resumes only the same run)")
    p.set_defaults(func=_calibrate)

    p = sub.add_parser("embed", help="learn KGSSL basin embeddings (and impute attributes) from a store")
    p.add_argument("store", help="zarr store, data-set folder, catalog name or 'sample'")
    p.add_argument("--out", required=True, help="zarr store for embedding(basin, embedding_dim) and attributes_pred")
    p.add_argument("--inputs", nargs="+", default=["prcp", "tmean", "pet", "streamflow"],
                   help="dynamic inputs, the flow last (default prcp tmean pet streamflow)")
    p.add_argument("--attributes", nargs="+",
                   help="static attributes to learn and impute; 'kratzert' = the 27 CAMELS attributes present")
    p.add_argument("--period", nargs=2, metavar=("START", "END"), help="training period, e.g. 1999 2008")
    p.add_argument("--dim", type=int, default=32, help="embedding size (default 32)")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: KGSSL's, with early stopping)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--basins", nargs="+", help="basin ids (default all)")
    p.add_argument("--pet", help="PET to use: oudin, hargreaves or priestley_taylor (computed from the forcing) or a "
                   "variable, e.g. pet (default: the data set's pet; CAMELS-US has none)")
    p.add_argument("--save", help="write the fitted model (weights, config, normalisation) to this file")
    p.add_argument("--checkpoint", help="checkpoint file written during training")
    p.add_argument("--resume", action="store_true", help="resume training from --checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out store")
    p.set_defaults(func=_embed)

    p = sub.add_parser("porenet-dataset", help="build LBM-labelled pore networks from Berea and synthetic images")
    p.add_argument("out", help="netCDF file to write (atomically)")
    p.add_argument("--n-berea", type=int, default=40, help="Berea subvolumes at training scale (default 40)")
    p.add_argument("--n-synthetic", type=int, default=40, help="synthetic porespy images (default 40)")
    p.add_argument("--size", type=int, default=40, help="edge of training samples in voxels (default 40)")
    p.add_argument("--n-large", type=int, default=8, help="cross-scale samples (default 8)")
    p.add_argument("--large-size", type=int, default=64, help="edge of cross-scale samples (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--berea", help="berea_100_to_300.npz (default ../shared/data/rocks/)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing data set this command wrote")
    p.set_defaults(func=_porenet_dataset)

    p = sub.add_parser("demo", help="the main job on the bundled sample, offline")
    p.add_argument("--out", default="basinsx-demo", help="folder for the figure and results (default basinsx-demo)")
    p.add_argument("--model", default="gr4j", help=f"conceptual model to calibrate: one of {models} (default gr4j)")
    p.add_argument("--n-starts", type=int, default=4, help="multi-start count per basin (default 4)")
    p.add_argument("--no-snow", action="store_true", help="leave out the degree-day snow module")
    p.set_defaults(func=_demo)
    return parser


#: Errors in what the user gave (arguments, paths, file contents): a one-line message and exit status 2.
USER_ERRORS = (KeyError, ValueError, OSError)


def _in_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """Library message in command-line words: ``overwrite=True`` -> ``--overwrite``, ``n_starts=0`` -> ``--n-starts 0``.

    Only the names of this command's options change; other words stay as they are.
    """
    flags = {a.dest: a.option_strings[-1] for a in parser._actions if any(o.startswith("--") for o in a.option_strings)}

    def flag(match):
        name, value = match[1], match[2]
        if name not in flags:
            return match[0]
        return flags[name] if value in (None, "True") else f"{flags[name]} {value}"

    return re.sub(r"\b([a-z]+_[a-z_]+|[a-z]+(?==))(?:=([^\s,;)]+))?", flag, message)


def main(argv=None) -> int:
    """Run the command line; returns the exit status (2: a problem with the input, 1: work left undone)."""
    from .progress import IncompleteError

    parser = build_parser()
    args = parser.parse_args(argv)
    command = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]

    def error(err, status):
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"basinsx {args.command}: error: {_in_flags(message, command)}", file=sys.stderr)
        return status

    def warn(message, category, filename, lineno, file=None, line=None):  # one line, in flag names, no source
        print(f"basinsx {args.command}: warning: {_in_flags(str(message), command)}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = warn
            args.func(args)
    except IncompleteError as err:  # a lost worker or a failing block: the finished blocks are written
        status = error(err, 2 if isinstance(err.__cause__, USER_ERRORS) else 1)
        print("the other blocks are written; run the same command again to compute the rest", file=sys.stderr)
        return status
    except USER_ERRORS as err:
        return error(err, 2)
    except KeyboardInterrupt:
        print(f"basinsx {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
