"""What a case-2 surrogate must achieve: a linearised error budget around the reference field.

Usage: python benchmarks/inverse_case2_needs.py [--advection upwind] [--scale-runs 50] [--step 1e-3]
       [--gauss-newton ITERS] [--prior W ...]

The reference field, its 1 % noise and the known values are those of benchmarks/inverse_case2.py
(same random stream, default --train 2000 --test 100). The scaling of the observations is the
min-max of the first ``--scale-runs`` training designs (the surrogate's comes from all of them,
so rare extremes make its ranges somewhat wider). The Jacobian ``J`` of the scaled observations
at the true coefficients is taken by one-sided finite differences (101 solver runs).

An inversion through a surrogate ``F + e`` instead of the solver ``F`` is, to first order, the
inversion of the data ``y - e``: its estimate moves by ``G e`` with ``G = H^-1 J^T W`` the gain of
the linearised estimator (``H`` its Hessian). The RMSE of ln k that a surrogate error of RMS
``eps`` (scaled units) costs is therefore printed for two estimators:

* ``MAP``: the maximum a posteriori weighting of the Gauss-Newton reference (data std = the
  noise, the N(0, I) prior, the known values as near-hard constraints);
* ``TNNA``: the objective the case-2 benchmark gives TNNA (unit weights summed over the 1,701
  outputs, known values with weight 100 on their mean square, prior weight 0.03);

and for two kinds of error: white (independent per output, in expectation) and
the worst direction (the top singular vector of the field-space gain, the error a surrogate makes
when its mistakes line up with what the data can resolve). The noise alone (the benchmark's
realisation, through the same linearised estimators) is the floor both start from.

--gauss-newton ITERS checks the TNNA floor without linearising: Gauss-Newton on the solver
itself (no surrogate) for the TNNA objective with each prior weight of --prior, from the
``known only`` estimate, ITERS iterations of 101 runs each.
"""

import time

import numpy as np
from common import argument_parser
from inverse_case2 import TIMES, WELLS

from basinsx.groundwater import Aquifer, conductivity
from basinsx.inverse import KLE


class Case2Scheme:
    """inverse_case2.Case2 with a choice of transport scheme."""

    def __init__(self, kle, advection):
        self.kle, self.advection = kle, advection

    def __call__(self, xi):
        aq = Aquifer((64, 64), (10.0, 10.0), porosity=0.3, dispersivity=(0.05, 0.005), diffusion=1e-4,
                     heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": 1.0}, wells=WELLS,
                     advection=self.advection)
        return aq.observe(conductivity(2e-13) * np.exp(self.kle.field(xi)), TIMES)


def main(argv=None):
    p = argument_parser(__doc__)
    p.add_argument("--advection", default="upwind", help="transport scheme (the stored case-2 results: upwind)")
    p.add_argument("--scale-runs", type=int, default=50)
    p.add_argument("--step", type=float, default=1e-3, help="finite-difference step of the coefficients")
    p.add_argument("--gauss-newton", type=int, default=0, help="iterations of the solver-only check of the TNNA floor")
    p.add_argument("--prior", type=float, nargs="+", default=[0.03, 6e-6], help="prior weights W of that check")
    a = p.parse_args(argv)
    kle = KLE((64, 64), (10.0, 10.0), 2.5, variance=2.0, n_terms=100, kernel="isotropic")
    sim = Case2Scheme(kle, a.advection)
    rng = np.random.default_rng(0)  # the stream of inverse_case2.py: training, test, truth, noise
    xi_train = rng.standard_normal((2000, 100))
    rng.standard_normal((100, 100))
    xi_true = rng.standard_normal(100)
    t0 = time.perf_counter()
    runs = np.stack([sim(x) for x in xi_train[: a.scale_runs]])
    lo, span = runs.min(0), np.maximum(runs.max(0) - runs.min(0), 1e-12)

    def scaled(x):
        return (sim(x) - lo) / span

    f_true = scaled(xi_true)
    noisy = f_true * rng.normal(1.0, 0.01, f_true.shape)  # as the benchmark: 1 % on the scaled data
    J = np.stack([(scaled(xi_true + a.step * e) - f_true) / a.step for e in np.eye(100)], 1)
    n_runs = a.scale_runs + 101
    print(f"{a.advection}: {n_runs} solver runs in {time.perf_counter() - t0:.0f} s; J {J.shape}, "
          f"singular values {np.linalg.svd(J, compute_uv=False)[[0, 9, 49, 99]].round(3)} (1st, 10th, 50th, 100th)")

    cells = np.array([[min(int(y / (10 / 64)), 63), min(int(x / (10 / 64)), 63)] for x, y in WELLS.values()])
    A = kle.matrix[cells[:, 0] * 64 + cells[:, 1]]
    phi = kle.matrix  # (cells, 100): coefficients -> ln k
    sigma = 0.01 * float(np.sqrt(np.mean(noisy**2)))
    estimators = {
        "MAP": (J.T @ J / sigma**2 + np.eye(100) + A.T @ A / 1e-6, J.T / sigma**2),
        "TNNA": (J.T @ J + 0.03 * np.eye(100) + 100.0 / len(A) * A.T @ A, J.T),
    }
    eps_grid = (0.0025, 0.005, 0.01, 0.0155, 0.03, 0.048, 0.072)
    print("\nRMSE of ln k caused by a surrogate error of scaled RMS eps (first order), and the noise-only floor")
    print(f"{'estimator':9s} {'noise only':>10s} " + " ".join(f"{'white ' + str(e):>12s}" for e in eps_grid)
          + " " + " ".join(f"{'worst ' + str(e):>12s}" for e in eps_grid[:4]))
    n_out = J.shape[0]
    for name, (H, JtW) in estimators.items():
        gain = np.linalg.solve(H, JtW)  # coefficients per unit output error
        field_gain = phi @ gain  # (cells, outputs)
        # the linearised estimate from the noisy data, started at the truth; its prior/known pull
        # is part of the estimator, so the floor is the estimate's own RMSE
        if name == "MAP":
            g = JtW @ (noisy - f_true) - xi_true
        else:
            g = JtW @ (noisy - f_true) - 0.03 * xi_true
        floor = np.sqrt(np.mean((phi @ np.linalg.solve(H, g)) ** 2))
        # RMS ln k per unit of output error: white (expected, Frobenius) and along the worst direction
        per_white = np.linalg.norm(field_gain) / np.sqrt(phi.shape[0])
        top = np.linalg.norm(field_gain, 2) / np.sqrt(phi.shape[0])
        white = [per_white * e for e in eps_grid]
        worst = [top * e * np.sqrt(n_out) for e in eps_grid[:4]]
        print(f"{name:9s} {floor:10.4f} " + " ".join(f"{w:12.4f}" for w in white) + " "
              + " ".join(f"{w:12.4f}" for w in worst))
        # the surrogate error that keeps sqrt(floor^2 + caused^2) <= 0.06, white and worst case
        budget = np.sqrt(max(0.06**2 - floor**2, 0.0))
        print(f"{'':9s} for RMSE ln k <= 0.06: surrogate RMS error <= {budget / per_white:.4f} (white), "
              f"<= {budget / (top * np.sqrt(n_out)):.5f} (worst direction)")

    for W in a.prior if a.gauss_newton else []:
        solver_tnna(a, W, scaled, noisy, A, xi_true, phi)


def solver_tnna(a, W, scaled, y, A, xi_true, phi):
    """Gauss-Newton on the solver for the TNNA objective |y - F|^2 + 100 mean((A xi - b)^2) + W |xi|^2."""
    b = A @ xi_true
    xi = A.T @ np.linalg.solve(A @ A.T + 1e-6 * np.eye(len(b)), b)  # known only
    kw = 100.0 / len(b)
    print(f"\nGauss-Newton on the solver, TNNA objective with prior weight {W:g} (known only: "
          f"RMSE ln k {np.sqrt(np.mean((phi @ (xi - xi_true)) ** 2)):.4f})")
    t0 = time.perf_counter()
    for it in range(1, a.gauss_newton + 1):
        f = scaled(xi)
        J = np.stack([(scaled(xi + a.step * e) - f) / a.step for e in np.eye(len(xi))], 1)
        H = J.T @ J + kw * A.T @ A + W * np.eye(len(xi))
        xi = xi + np.linalg.solve(H, J.T @ (y - f) - kw * A.T @ (A @ xi - b) - W * xi)
        print(f"iteration {it}: {101 * it} solver runs, RMSE ln k {np.sqrt(np.mean((phi @ (xi - xi_true)) ** 2)):.4f}, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
