"""Run cost of the discrete GR models, with and without sensitivities, next to GRsuite's (airGR port).

One sample basin (01031500), 15 years of real forcing with Oudin PET. Each timing is the median
of ``--repeat`` runs, the contenders interleaved so that load on the machine hits all alike:
basinsx's ``Model.run`` without and with the Jacobian, GRsuite's ``run_model`` (airGR's
``RunModel_GR*J``: kernel plus output assembly) and GRsuite's numba kernel alone. Printed as
ratios to GRsuite's kernel; the flows are checked first (equal to 1e-10 relative, in fact about 1e-13: the GR kernel
multiplies by reciprocals of x1, x3 and (9/4)^4 where airGR divides, which shortens a day's dependency chain).

    python benchmarks/model_cost.py --repeat 30
    python benchmarks/model_cost.py --repeat 30 --former 2bdb5bf  # adds the kernels with J against REV's

``--former REV`` times, interleaved with the rest, the GR kernel with the Jacobian of commit ``REV``
(``basinsx/models/_grcore.py`` from ``git show``) and today's, both called directly (no input checks);
their flows must be equal bit for bit, their Jacobians to 1e-12 of each column's largest entry.

Then CemaNeige-GR4J (5 elevation layers, with and without hysteresis) against GRsuite's
``run_model(..., "CemaNeigeGR4J")``, ratios to it: GRsuite's layer inputs are built once (as its
calibration does), basinsx's ``Model.run`` builds them on every run.
"""

from __future__ import annotations

import importlib.util
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from common import ROOT, argument_parser

import basinsx
import basinsx.models as bm

THETA = {"gr4j": [350.0, 0.5, 90.0, 1.7], "gr5j": [350.0, 0.5, 90.0, 1.7, 0.3],
         "gr6j": [350.0, 0.5, 90.0, 1.7, 0.2, 8.0]}


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--years", type=int, default=15)
    parser.add_argument("--former", metavar="REV", help="also time the GR kernels with J of this commit")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import grsuite
    from grsuite import _kernels

    ds = basinsx.open_dataset("sample", basins=["01031500"], chunks=None)
    ds = ds.assign(pet=ds.hydro.pet("oudin")).isel(basin=0, time=slice(0, 365 * args.years))
    p, e = ds["prcp"].values.astype(float), ds["pet"].values.astype(float)
    dates = ds["time"].values.astype("datetime64[D]")
    im = grsuite.InputsModel(dates, precip=p, pot_evap=e)
    print(f"{p.size} days, median of {args.repeat} interleaved runs; ratios to GRsuite's kernel alone")
    print(f"{'model':6s} {'GRsuite kernel ms':>17s} {'GRsuite run_model':>17s} {'basinsx run':>11s} "
          f"{'basinsx run + J':>15s}")
    former = former_grcore(args.former) if args.former else None
    for name, theta in THETA.items():
        m = bm.get(name)
        ro = grsuite.RunOptions(im, name.upper(), ind_period_run=np.arange(p.size), ind_period_warmup=np.arange(0))
        kernel = getattr(_kernels, f"run_{name}")
        ini = np.asarray(ro.ini_states, dtype=float).copy()
        ini[0], ini[1] = 0.3 * theta[0], 0.5 * theta[2]
        th = np.asarray(theta, dtype=float)
        f = np.vstack([p, e])
        ref = grsuite.run_model(im, ro, theta)["Qsim"]
        assert np.array_equal(kernel(p, e, th, ini)[0][:, -1], ref), name
        print(f"{name}: basinsx flow vs GRsuite's, max relative difference "
              f"{rel_diff(m.run(theta, f, sensitivities=False)[0], ref):.1e}")
        runs = {"kernel": lambda: kernel(p, e, th, ini), "run_model": lambda: grsuite.run_model(im, ro, theta),
                "run": lambda: m.run(theta, f, sensitivities=False), "run_J": lambda: m.run(theta, f)}
        if former is not None:
            runs.update(against_former(former, th, f, int(name[2])))
        times = {k: [] for k in runs}
        for _ in range(args.repeat):
            for k, fn in runs.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        med = {k: float(np.median(v)) for k, v in times.items()}
        r = {k: med[k] / med["kernel"] for k in med}
        print(f"{name:6s} {1e3 * med['kernel']:17.2f} {r['run_model']:17.2f} {r['run']:11.2f} {r['run_J']:15.2f}")
        if former is not None:
            print(f"{'':6s} kernel + J: {args.former} {1e3 * med['former_J']:.3f} ms, now {1e3 * med['now_J']:.3f} ms, "
                  f"former / now {med['former_J'] / med['now_J']:.2f}x")

    cemaneige(ds, p, e, dates, args.repeat)


def former_grcore(rev):
    """The module ``basinsx/models/_grcore.py`` of commit ``rev``, imported from a temporary file."""
    src = subprocess.run(["git", "show", f"{rev}:basinsx/models/_grcore.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / f"grcore_{rev}.py"
    path.write_text(src.replace("from .snow import", "from basinsx.models.snow import"))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def against_former(former, theta, f, variant):
    """The runs ``former_J`` (the former kernel with J) and ``now_J`` (today's), checked against each other first."""
    from basinsx.models import _grcore

    x0 = np.full(former.N_STATES, np.nan)
    q0, j0, _ = former.gr_kernel(theta, f, 0, True, 0, variant, x0)
    q1, j1 = _grcore.gr_run(theta, f, 0, True, 0, variant)
    assert np.array_equal(q0, q1), "the flows differ"
    err = float(np.max(np.abs(j1 - j0) / np.maximum(np.abs(j0).max(axis=0), 1e-300)))
    assert err <= 1e-12, err
    print(f"gr{variant}j: Jacobian vs the former kernel's, largest difference / column maximum {err:.1e}")
    return {"former_J": lambda: former.gr_kernel(theta, f, 0, True, 0, variant, x0),
            "now_J": lambda: _grcore.gr_run(theta, f, 0, True, 0, variant)}


def rel_diff(q, ref):
    """Largest relative difference of two flows; more than 1e-10 (the tests' tolerance) stops the benchmark."""
    out = float(np.max(np.abs(q - ref) / np.maximum(np.abs(ref), 1e-300)))
    assert out <= 1e-10, out
    return out


def cemaneige(ds, p, e, dates, repeat):
    """CemaNeige-GR4J: basinsx ``Model.run`` with/without the Jacobian next to GRsuite's ``run_model``."""
    import grsuite

    t = ds["tmean"].values.astype(float)
    hyps = np.linspace(150.0, 1200.0, 101)  # the sample has no hypsometry: a made-up one, 5 layers
    print("\nCemaNeigeGR4J, 5 layers; ratios to GRsuite's run_model (its layer inputs built once, basinsx's per run)")
    print(f"{'snow':15s} {'GRsuite run_model ms':>20s} {'basinsx run':>11s} {'basinsx run + J':>15s}")
    for snow, cn in (("cemaneige", [0.5, 3.5]), ("cemaneige_hyst", [0.3, 4.0, 20.0, 0.6])):
        theta = THETA["gr4j"] + cn
        cat = grsuite.Catchment(dates, p, e, temperature=t, hypsometry=hyps, elevation=300.0, n_layers=5)
        im = cat.inputs("CemaNeigeGR4J")
        ro = grsuite.RunOptions(im, "CemaNeigeGR4J", ind_period_run=np.arange(p.size),
                                ind_period_warmup=np.arange(0), is_hyst=snow == "cemaneige_hyst")
        m = bm.get("gr4j", snow=snow).with_layers(hyps, 300.0, dates=dates)
        f = np.vstack([p, e, t])
        ref = grsuite.run_model(im, ro, theta, model="CemaNeigeGR4J")["Qsim"]
        print(f"{snow}: basinsx flow vs GRsuite's, max relative difference "
              f"{rel_diff(m.run(theta, f, sensitivities=False)[0], ref):.1e}")
        runs = {"run_model": lambda: grsuite.run_model(im, ro, theta, model="CemaNeigeGR4J"),
                "run": lambda: m.run(theta, f, sensitivities=False), "run_J": lambda: m.run(theta, f)}
        times = {k: [] for k in runs}
        for _ in range(repeat):
            for k, fn in runs.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        med = {k: float(np.median(v)) for k, v in times.items()}
        print(f"{snow:15s} {1e3 * med['run_model']:20.2f} {med['run'] / med['run_model']:11.2f} "
              f"{med['run_J'] / med['run_model']:15.2f}")


if __name__ == "__main__":
    main()
