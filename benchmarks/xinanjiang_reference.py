"""basinsx's ``xinanjiang`` against hydromodel's ``xaj`` at equal parameters on real forcing, and its run cost.

hydromodel (0.4.0, Ouyang et al.) runs in a subprocess of its own virtual environment (``--hm-python``;
it pins numpy and torch versions of its own): it reads the forcing and the parameter sets from a
temporary ``.npz`` and writes its flow back. Sample basins with Oudin PET, ``--years`` years;
``--sets`` parameter sets drawn uniformly within the bounds (seeded), the lag ``l`` rounded to an
integer, where hydromodel's truncated lag and basinsx's interpolated lag agree. Both runs start cold
(no warm-up). hydromodel's channel starts with ``Q = QT`` for the first ``l`` days, basinsx's empty;
the difference then decays as ``cs^t``. Two measures per basin, each the largest over the sets:

* flow: ``max |q - q_hm| / max q_hm`` after the first ``--skip`` days, over the sets whose
  ``cs^skip < 1e-12`` (the channel start forgotten);
* channel inflow, every set: ``X_t = (q_t - cs q_{t-1}) / (1 - cs)`` (the lagged ``QT``, which both
  channels turn into flow by the same recursion) compared from day ``l + 1``, relative to ``max X_hm``.

and the same for one corner set (``CORNER``: a 1 mm free-water store drained slowly), where the free
water is often concentrated above ``sm``: hydromodel discards that excess, basinsx lets it run off;
printed with the flow volume hydromodel loses, ``1 - sum q_hm / sum q``.

Then the run cost of one 15-year run (best of ``--repeat``) with and without the Jacobian, next to
basinsx's ``gr4j`` (measured alternately in the same run) and hydromodel's ``xaj`` on the same forcing
(best of 3, in its process).

    python benchmarks/xinanjiang_reference.py --hm-python /work/venv-hm/bin/python
    python benchmarks/xinanjiang_reference.py --hm-python /work/venv-hm/bin/python \\
        --fixture tests/models/data/xinanjiang_hydromodel.npz

``--fixture`` also writes the small reference of ``tests/models/test_xinanjiang.py``: two years of one
basin's forcing (float32) and hydromodel's flow for three parameter sets.
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

BASINS = ("01031500", "02324400", "03346000", "12010000")
CORNER = [0.11, 0.101, 0.0101, 0.2, 60.5, 60.5, 0.002, 1.05, 1.001, 0.007, 0.007, 0.01, 1.0, 0.01, 0.9801]
FIXTURE_THETA = [[0.8, 0.3, 0.05, 10.0, 75.0, 90.0, 0.1, 30.0, 1.2, 0.3, 0.3, 0.5, 2.0, 0.5, 0.99],
                 [0.95, 0.15, 0.03, 5.0, 65.0, 110.0, 0.18, 60.0, 1.4, 0.1, 0.5, 0.2, 1.0, 0.8, 0.995],
                 [0.5, 0.4, 0.09, 18.0, 85.0, 65.0, 0.02, 8.0, 1.05, 0.6, 0.6, 0.8, 4.0, 0.2, 0.985]]

# runs in hydromodel's environment: forcing (T, 2) and theta (n, 15) in, q (n, T) and seconds of one run out
HM_SCRIPT = """
import sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
from hydromodel.models.xaj import xaj

data = np.load(sys.argv[1])
f, theta = data["forcing"], data["theta"]
n = theta.shape[0]
p_and_e = np.repeat(f.T[:, None, :], n, axis=1)
q, _ = xaj(p_and_e, theta, warmup_length=0, normalized_params=False, name="xaj")
best = float("inf")
for _ in range(3):
    t0 = time.perf_counter()
    xaj(p_and_e[:, :1], theta[:1], warmup_length=0, normalized_params=False, name="xaj")
    best = min(best, time.perf_counter() - t0)
np.savez(sys.argv[2], q=q[:, :, 0].T, seconds=best)
"""


def run_hydromodel(hm_python: str, forcing: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, float]:
    """hydromodel's ``xaj`` flow (n_sets, T) for forcing (2, T) and parameters (n_sets, 15), and one run's seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, forcing=forcing, theta=theta)
        subprocess.run([hm_python, "-c", HM_SCRIPT, str(src), str(out)], check=True)
        res = np.load(out)
        return res["q"], float(res["seconds"])


def draw(model, n: int, seed: int) -> np.ndarray:
    """``n`` parameter sets uniform within the bounds, the lag rounded to an integer."""
    rng = np.random.default_rng(seed)
    lo, hi = (np.array([model.bounds[p][i] for p in model.params]) for i in (0, 1))
    theta = lo + (hi - lo) * rng.random((n, len(lo)))
    theta[:, model.params.index("l")] = np.round(theta[:, model.params.index("l")])
    return theta


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument("--hm-python", default="/work/venv-hm/bin/python", help="python of hydromodel's venv")
    parser.add_argument("--years", type=int, default=15)
    parser.add_argument("--sets", type=int, default=50)
    parser.add_argument("--skip", type=int, default=365, help="leading days left out of the flow comparison")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixture", type=Path, help="also write the test reference here")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    m = bm.get("xinanjiang")
    ds = basinsx.open_dataset("sample", basins=list(BASINS), chunks=None)
    ds = ds.assign(pet=ds.hydro.pet("oudin")).isel(time=slice(0, 365 * args.years)).load()
    theta = draw(m, args.sets, args.seed)
    forgot = theta[:, m.params.index("cs")] ** args.skip < 1e-12
    print(f"{args.sets} parameter sets (integer l), {ds.sizes['time']} days; flow compared after day {args.skip} "
          f"for the {forgot.sum()} sets with cs^{args.skip} < 1e-12, channel inflow for all")
    print(f"{'basin':9s} {'flow max rel diff':>17s} {'inflow max rel diff':>19s} {'corner inflow':>13s} "
          f"{'corner volume':>13s}")
    hm_seconds = None
    for basin in BASINS:
        b = ds.sel(basin=basin)
        f = np.vstack([b["prcp"].values, np.maximum(b["pet"].values, 0.0)]).astype(np.float64)
        ref, hm_seconds = run_hydromodel(args.hm_python, f, np.vstack([theta, CORNER]))
        flow, inflow = [], []
        for th, q_ref, done in zip(np.vstack([theta, CORNER]), ref, np.r_[forgot, False]):
            q, _ = m.run(th, f, sensitivities=False)
            if done:
                flow.append(np.abs(q - q_ref)[args.skip:].max() / q_ref[args.skip:].max())
            cs, lag = th[m.params.index("cs")], int(th[m.params.index("l")])
            x, x_ref = ((v[1:] - cs * v[:-1])[lag:] / (1.0 - cs) for v in (q, q_ref))
            inflow.append(np.abs(x - x_ref).max() / x_ref.max())
        lost = 1.0 - ref[-1].sum() / q.sum()
        print(f"{basin:9s} {max(flow):17.2e} {max(inflow[:-1]):19.2e} {inflow[-1]:13.2e} {lost:13.2%}")

    b = ds.sel(basin=BASINS[0])
    f = np.vstack([b["prcp"].values, np.maximum(b["pet"].values, 0.0)]).astype(np.float64)
    th = np.array(FIXTURE_THETA[0])
    gr4j, th4 = bm.get("gr4j"), [350.0, 0.5, 90.0, 1.7]
    runs = {"xinanjiang": lambda: m.run(th, f, sensitivities=False), "xinanjiang + J": lambda: m.run(th, f),
            "gr4j": lambda: gr4j.run(th4, f, sensitivities=False), "gr4j + J": lambda: gr4j.run(th4, f)}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.repeat):
        for name, fn in runs.items():
            best[name] = min(best[name], best_of(fn, 1)[0])
    print(f"run cost, {f.shape[1]} days, best of {args.repeat} (ms): "
          + ", ".join(f"{name} {1e3 * t:.2f}" for name, t in best.items())
          + f", hydromodel xaj {1e3 * hm_seconds:.0f}")
    print(f"xinanjiang: J costs {best['xinanjiang + J'] / best['xinanjiang']:.1f}x the flow; "
          f"{best['xinanjiang'] / best['gr4j']:.1f}x gr4j's flow, {best['xinanjiang + J'] / best['gr4j + J']:.1f}x "
          f"gr4j's flow + J; hydromodel's xaj {hm_seconds / best['xinanjiang']:.0f}x basinsx's flow")

    if args.fixture:
        f2 = f[:, : 2 * 365].astype(np.float32)
        ref, _ = run_hydromodel(args.hm_python, f2.astype(np.float64), np.array(FIXTURE_THETA))
        args.fixture.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.fixture, forcing=f2, theta=np.array(FIXTURE_THETA), q=ref)
        print(f"wrote {args.fixture} ({args.fixture.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
