"""Optimizers on the unit cube and the per-basin calibration kernel (plain arrays).

Parameters are searched in ``u in [0, 1]^d`` with ``theta = lo + u (hi - lo)``, so the
gradient is ``(hi - lo) * J.T @ delta``; parameters whose model declares the transform ``"log"``
(``Model.transforms``: by default positive ones whose bounds span two decades or more) use
``ln theta`` in place of ``theta`` (gradient factor ``theta ln(hi/lo)``).
A gradient step's model run carries the sensitivities (one forward pass gives ``q`` and
``J = dq/dtheta``); the screening before it uses plain runs. Each counts as one evaluation.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
from scipy.optimize import minimize

from ..design import latin_hypercube  # the unit-cube design, shared with basinsx.inverse
from ..models import cemaneige
from ..models.base import SNOW_CODES, Model, NegativePETWarning, default_transform
from .losses import KGE, NSE, get_loss

#: Loss reported to L-BFGS-B for a parameter set at which the model fails.
FAILED_RUN_PENALTY = 1e10
#: Distance (max norm in the unit cube) below which a start is merged with a known optimum.
MERGE_RADIUS = 0.02
#: Consecutive L-BFGS-B iterations with a relative loss decrease below ``tol`` that end a start.
SLOW_ITERATIONS = 2
#: Unit-cube values at which a parameter without gradient at the optimum is tried (plain runs).
SCAN = np.linspace(0.0, 1.0, 11)
#: Share of the loss period's observed days (at least :data:`SCREEN_MIN_DAYS` of them) on which a screening
#: run side by side scores its points: it runs the leading days that hold them. A plain run costs in
#: proportion to the days run, and ranking points needs less than the whole record (issue 24: GR4J on
#: 100 basins 1.03-1.11x faster over three screening designs, as many basins below GRsuite). Not behind a
#: snow module: fewer winters ranked CemaNeige's parameters worse (1-3 more basins below GRsuite for 2-3 %).
SCREEN_SHARE = 0.5
#: Fewest observed days the screening scores on (all of them where the record holds fewer).
SCREEN_MIN_DAYS = 3 * 365

__all__ = ["OPTIMIZERS", "PRIORS", "Problem", "calibrate_basin", "latin_hypercube", "levenberg_marquardt",
           "lbfgsb"]


def log_scaled(model, log_scale: bool = True) -> np.ndarray:
    """Which parameters of ``model`` are searched on a log scale: its ``transforms`` equal to ``"log"``.

    The model contract declares the scale per parameter (:attr:`basinsx.models.Model.transforms`;
    by default positive ranges of two decades or more, such as GR4J's store capacities, which are
    far better conditioned on a log scale). A model object without ``transforms`` gets that default
    rule (:func:`basinsx.models.base.default_transform`). ``log_scale=False`` searches every parameter linearly.
    """
    transforms = getattr(model, "transforms", None) or {}
    bounds = [tuple(float(b) for b in model.bounds[p]) for p in model.params]
    log = [transforms.get(p) or default_transform(*b) for p, b in zip(model.params, bounds)]
    return np.array([t == "log" and log_scale for t in log], dtype=bool)


def to_search(theta, log) -> np.ndarray:
    """Search-space values of physical ``theta``: ``log(theta)`` where ``log``, ``theta`` elsewhere."""
    return np.where(log, np.log(np.where(log, theta, 1.0)), theta)


def from_search(v, log) -> np.ndarray:
    """Physical values of search-space values ``v``: ``exp(v)`` where ``log``, ``v`` elsewhere.

    The exponential is taken of the log-scaled entries only: a linear parameter's value (hbv's ``fc``
    reaches 1000) would overflow it, even in the branch ``np.where`` then discards.
    """
    return np.where(log, np.exp(np.where(log, v, 0.0)), v)


class Problem:
    """A calibration problem for one basin: model, forcing, observations and loss.

    Keeps the count of model runs and the best simulation seen, so the final
    efficiencies need no extra run.
    """

    def __init__(self, model, forcing, obs, loss, warmup=0, log_scale=True, solver_options=None):
        self.model = model
        self.solver_options = dict(solver_options or {})
        self.forcing = forcing
        self.obs = obs
        self.loss = get_loss(loss)
        self.loss.check(obs)
        self.warmup = int(warmup)
        if np.shape(obs)[-1] != np.shape(forcing)[-1] - self.warmup:
            raise ValueError(f"obs has {np.shape(obs)[-1]} days; the forcing after the {self.warmup}-day warm-up has "
                             f"{np.shape(forcing)[-1] - self.warmup}: obs must be the flow of those days")
        lo, hi = np.array([model.bounds[p] for p in model.params], dtype=float).T
        self.bounds = lo, hi
        self.log = log_scaled(model, log_scale)
        self.lo = to_search(lo, self.log)
        self.width = to_search(hi, self.log) - self.lo
        self._kernel, self._many = self._direct()
        #: Loss days the side-by-side screening runs: the leading ones holding :data:`SCREEN_SHARE` of the observed
        #: days (None: all, and behind a snow module).
        self.screen_days = None
        observed = np.cumsum(np.isfinite(self.obs))
        if observed.size and not getattr(model, "snow", None):
            need = min(int(observed[-1]), max(int(np.ceil(SCREEN_SHARE * observed[-1])), SCREEN_MIN_DAYS))
            self.screen_days = int(np.searchsorted(observed, need)) + 1 if need < observed[-1] else None
        self.n_evals = 0
        self.n_plain = 0  # of n_evals, runs without sensitivities (screening)
        self.last_value = np.nan
        self.best = (np.inf, None, None)  # (loss value, u, q)
        self.best_grad = None  # the gradient at best[1] where a run with sensitivities found it
        self.optima = []  # (u, loss) of the starts that ran to convergence

    def theta(self, u):
        """Physical parameters of a unit-cube point (clipped: exp(log(hi)) can exceed hi by an ulp)."""
        return np.clip(from_search(self.lo + np.clip(u, 0.0, 1.0) * self.width, self.log), *self.bounds)

    def unit(self, theta):
        """Unit-cube point of physical parameters ``theta`` (..., d), clipped to the bounds."""
        v = to_search(theta, self.log)
        return np.clip((v - self.lo) / self.width, 0.0, 1.0)

    def _direct(self):
        """``(f, g)``: the model's kernel on the forcing checked once, ``f(theta, sens) -> (q, J)`` (or None).

        ``g(thetas, days) -> flows`` runs many parameter sets ``(m, d)`` side by side without
        sensitivities over the first ``days`` loss days (None: all; always None behind CemaNeige,
        see :data:`SCREEN_SHARE`) where the kernel can (its ``many``; behind CemaNeige its
        ``many_input``, on each set's water input; else None): the screening.

        ``Model.run`` checks its inputs on every call (the forcing's values, the parameters) and
        builds CemaNeige's layer inputs: here they are checked and built once per basin, the
        forcing by ``check_forcing`` (negative PET clipped, warned once) and the parameters by the
        bounds, which the unit cube keeps them in and whose positive parameters must then be > 0.
        Models with solver options (ODE models) keep ``Model.run``.
        """
        model = self.model
        # only a registry Model: another object's run (a wrapper delegating the rest) is what it means to run
        if (not isinstance(model, Model) or type(model).run is not Model.run or self.solver_options
                or model.solver_options or any(model.bounds[p][0] <= 0 for p in model.positive)):
            return None, None
        kernel = model.kernel
        forcing, negative = model.check_forcing(self.forcing)
        if not 0 <= self.warmup < forcing.shape[1]:
            return None, None  # Model.run raises what is wrong
        if negative:
            warnings.warn(f"{negative} negative PET values treated as zero", NegativePETWarning, stacklevel=4)
        warmup, snow = self.warmup, SNOW_CODES[model.snow] if model.snow else 0
        if snow == 2:  # CemaNeige: its layer inputs once, its water input per run (as Model.run)
            hyst = model.snow == "cemaneige_hyst"
            i0 = len(model.params) - len(cemaneige.PARAMS[model.snow])
            setup = cemaneige.layer_setup(forcing, model.layers, None)
            many = getattr(kernel, "many_input", None)
            return (lambda theta, sens: kernel(theta, cemaneige.water_input(forcing, theta, i0, hyst, None, None, sens,
                                                                             setup)[0], warmup, sens, 2),
                    None if many is None else
                    lambda thetas, days: many(thetas, cemaneige.cemaneige_many(*setup, thetas, i0, hyst), forcing[1],
                                              warmup))
        many = getattr(kernel, "many", None)
        # the leading days copied: the kernel was compiled for contiguous forcing
        return (lambda theta, sens: kernel(theta, forcing, warmup, sens, snow),
                None if many is None or snow else
                lambda thetas, days: many(thetas, forcing if days is None else
                                          np.ascontiguousarray(forcing[:, : warmup + days]), warmup))

    def _run(self, u):
        """Flow, ``J = dq/dtheta`` and the chain-rule factor ``dtheta/du`` (applied to d-vectors, not to J)."""
        self.n_evals += 1
        theta = self.theta(u)
        q, J = self.model.run(theta, self.forcing, warmup=self.warmup, sensitivities=True, **self.solver_options)
        if not np.all(np.isfinite(q)):
            raise FloatingPointError(f"the model produced non-finite flow at theta={theta}")
        return q, J, self.width * np.where(self.log, theta, 1.0)

    def _loss(self, u, sens):
        """Loss, its unit-cube gradient (None without ``sens``) and the flow at ``u``.

        Raises FloatingPointError where the model fails (non-finite flow).
        """
        self.n_evals += 1
        theta = self.theta(u)
        if self._kernel is not None:
            q, J = self._kernel(theta, sens)
        else:
            q, J = self.model.run(theta, self.forcing, warmup=self.warmup, sensitivities=sens,
                                  **self.solver_options)
        if not np.all(np.isfinite(q)):
            raise FloatingPointError(f"the model produced non-finite flow at theta={theta}")
        # without sensitivities J is empty: the fused loss kernels compute the value alone
        value, grad = self.loss.value_grad(q, J if sens else np.empty((q.size, 0)), self.obs)
        return value, (grad * self.width * np.where(self.log, theta, 1.0) if sens else None), q

    def value(self, u):
        """Loss of a plain run (no sensitivities: about half the cost of a run with them); ``inf`` where it fails."""
        self.n_plain += 1
        try:
            value, _, q = self._loss(u, False)
        except FloatingPointError:
            return np.inf
        self._keep(value, u, q)
        return value

    def values(self, u):
        """:meth:`value` of each unit-cube point ``u (m, d)``, the runs side by side where the kernel can."""
        if self._many is None:
            return np.array([self.value(x) for x in u])
        scores, flows = self._side_by_side(u, None)
        for i, q in enumerate(flows):
            self._keep(scores[i], u[i], q)
        return scores

    def screen(self, u):
        """Loss of each unit-cube point ``u (m, d)`` for ranking (plain runs; side by side: on :attr:`screen_days`).

        Side by side (GR4J's kernel) the runs end after the leading loss days that hold
        :data:`SCREEN_SHARE` of the observed ones; those scores are not comparable with a whole
        period's loss and are not kept as the best point. Elsewhere, over the whole period, or where the
        loss is undefined on those days for every point: :meth:`values`.
        """
        if self._many is None or self.screen_days is None:
            return self.values(u)
        try:
            scores = self._side_by_side(u, self.screen_days)[0]
        except (ArithmeticError, ValueError):  # undefined on those days (constant flow: a river dry for years)
            scores = np.full(len(u), np.nan)
        return scores if np.isfinite(scores).any() else self.values(u)

    def _side_by_side(self, u, days):
        """Plain runs of the points ``u (m, d)`` side by side over the first ``days`` loss days (None: all).

        Returns their losses (``inf`` where the flow is not finite) and flows; counts the runs.
        """
        flows = self._many(self.theta(u), days)
        self.n_evals += len(u)
        self.n_plain += len(u)
        obs = self.obs if days is None else self.obs[:days]
        none = np.empty((obs.size, 0))
        return np.array([self.loss.value_grad(q, none, obs)[0] if np.all(np.isfinite(q)) else np.inf
                         for q in flows]), flows

    def _keep(self, value, u, q, grad=None):
        if value < self.best[0]:
            self.best, self.best_grad = (value, np.array(u, dtype=float), q), grad

    def value_grad(self, u):
        """Loss and its gradient in the unit cube.

        Where the model fails (an ODE integration diverges) the value is a large finite
        penalty, so that a line search backs off (scipy's cannot handle ``inf``).
        """
        try:
            value, grad, q = self._loss(u, True)
        except FloatingPointError:
            return FAILED_RUN_PENALTY, np.zeros(len(u))
        self._keep(value, u, q, grad)
        return value, grad

    def residual_jac(self, u):
        """Residual vector and its Jacobian in the unit cube (residual losses only)."""
        q, J, dtheta = self._run(u)
        r, Jr = self.loss.residuals(q, self.obs, J)
        self.last_value = self.loss(q, self.obs)[0]
        self._keep(self.last_value, u, q)
        return r, Jr * dtheta


def lbfgsb(problem: Problem, u0, maxiter=200, tol=5e-5):
    """L-BFGS-B (scipy) on the unit cube with the exact gradient.

    Converges when :data:`SLOW_ITERATIONS` iterations in a row each lower the loss by
    less than ``tol`` times the loss itself. Relative to the loss, not to ``max(loss, 1)``
    as scipy's ``ftol``: a poor fit (KGE 0.5) stops at changes in the fifth decimal, a
    fifth fewer model runs than ``ftol=1e-10``, while a near-perfect fit still converges
    to its last digits. One slow iteration is not enough: on a plateau the next ones
    can still descend to a better optimum.

    A start whose iterate comes within :data:`MERGE_RADIUS` (unit cube, max norm) of an
    optimum found by an earlier start, at a higher loss, is stopped: it is converging to
    that optimum, and its slow final iterations would add nothing (the clustering idea of
    multi-level single linkage).

    Returns ``(u, value, converged, message)``.
    """
    last, slow, reason = [np.inf], [0], []

    def callback(intermediate_result):
        f, u = intermediate_result.fun, intermediate_result.x
        if any(f >= f_opt and np.max(np.abs(u - u_opt)) < MERGE_RADIUS for u_opt, f_opt in problem.optima):
            reason.append("merged with the optimum of an earlier start")
            raise StopIteration
        slow[0] = slow[0] + 1 if last[0] - f <= tol * abs(f) else 0
        if slow[0] == SLOW_ITERATIONS:
            reason.append("relative reduction of the loss below tol")
            raise StopIteration
        last[0] = f

    # scipy's own tests stay as a backstop (ftol is absolute near a zero loss).
    res = minimize(problem.value_grad, u0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(u0),
                   callback=callback, options={"maxiter": maxiter, "ftol": 1e-10, "gtol": 1e-8})
    message = reason[0] if reason else str(res.message)
    if message.startswith("merged"):
        return res.x, float(res.fun), True, message
    problem.optima.append((res.x, float(res.fun)))
    return res.x, float(res.fun), bool(res.success or reason), message


def levenberg_marquardt(problem: Problem, u0, maxiter=200, tol=1e-10):
    """Projected Levenberg-Marquardt on the unit cube for residual losses.

    Minimises ``|r|^2``; steps solve ``(Jr'Jr + lam diag(Jr'Jr)) s = -Jr'r`` over the
    parameters not held at a bound by the gradient, and are projected onto the box.
    ``lam`` shrinks after a successful step (towards Gauss-Newton) and grows after a
    failed one. Converges when the relative decrease
    of ``|r|^2``, the step or the projected gradient falls below ``tol``.

    Returns ``(u, value, converged, message)`` where ``value`` is the loss itself.
    """
    u = np.clip(np.asarray(u0, dtype=float), 0.0, 1.0)
    r, Jr = problem.residual_jac(u)
    f, value, lam = r @ r, problem.last_value, 1.0
    message, converged = f"maximum number of iterations ({maxiter}) reached", False
    for _ in range(maxiter):
        g = Jr.T @ r
        if np.max(np.abs(u - np.clip(u - g, 0.0, 1.0))) < tol:
            message, converged = "projected gradient below tolerance", True
            break
        # Parameters held at a bound by the gradient stay there; the step uses the others.
        free = ~(((u <= 0.0) & (g > 0)) | ((u >= 1.0) & (g < 0)))
        A = Jr[:, free].T @ Jr[:, free]
        scale = np.diag(A) + 1e-12 * max(np.max(np.diag(A)), 1e-300)
        while True:
            step = np.zeros_like(u)
            step[free] = np.linalg.solve(A + lam * np.diag(scale), -g[free])
            u_new = np.clip(u + step, 0.0, 1.0)
            try:
                r_new, J_new = problem.residual_jac(u_new)
                f_new, value_new = r_new @ r_new, problem.last_value
            except FloatingPointError:  # the model failed there: a rejected step
                f_new = np.inf
            if f_new < f:
                lam = max(lam / 3.0, 1e-12)
                break
            lam *= 4.0
            if lam > 1e12:
                break
        if lam > 1e12:
            message, converged = "no descent step found (local minimum)", True
            break
        decrease, moved = f - f_new, np.max(np.abs(u_new - u))
        u, r, Jr, f, value = u_new, r_new, J_new, f_new, value_new
        if decrease <= tol * f or moved < tol:
            message, converged = "relative reduction of the residuals below tolerance", True
            break
    return u, float(value), converged, message


OPTIMIZERS = {"lbfgsb": lbfgsb, "lm": levenberg_marquardt}
#: Smallest distance (max norm in the unit cube) between two starts taken from the screening.
SEPARATION = 0.25
#: Typical parameter ranges whose corners the screening tries first, by model name: GR4J's is airGR's
#: starting distribution (``CreateCalibOptions``: quantiles of parameters calibrated on many basins),
#: the prior of GRsuite's and airGR's Michel calibration.
PRIORS = {"gr4j": {"x1": (169.017, 432.681), "x2": (-2.376, -0.020), "x3": (20.697, 83.096), "x4": (1.417, 2.384)}}


def prior_points(problem: Problem, params, prior) -> np.ndarray:
    """Unit-cube corners of a ``{param: (low, high)}`` box; parameters without a range at the middle (0.5)."""
    named = [j for j, p in enumerate(params) if p in prior]
    if not named:
        return np.empty((0, len(params)))
    corners = np.array(np.meshgrid(*[prior[params[j]] for j in named], indexing="ij"), dtype=float)
    theta = problem.theta(np.full(len(params), 0.5)) * np.ones((corners[0].size, 1))
    theta[:, named] = corners.reshape(len(named), -1).T
    return problem.unit(theta)


def screened_starts(problem: Problem, n_screen: int, n_starts: int, seed=0, first=None) -> np.ndarray:
    """The best ``n_starts`` screening points by plain runs (:meth:`Problem.screen`), at least :data:`SEPARATION` apart.

    The screening is ``first`` (unit-cube points, e.g. :func:`prior_points`) followed by
    Latin-hypercube points up to ``n_screen`` in all. Starts closer than that to a better
    one would mostly descend to the same optimum. Fewer starts come back when the screened
    points do not hold that many separated ones (or the model fails at all of them).
    """
    first = np.empty((0, len(problem.lo))) if first is None else first
    u = np.vstack([first, latin_hypercube(max(n_screen - len(first), 0), len(problem.lo), seed)])
    values = problem.screen(u)
    starts = []
    for k in np.argsort(values, kind="stable"):
        if len(starts) == n_starts or not np.isfinite(values[k]):
            break
        if all(np.max(np.abs(u[k] - s)) >= SEPARATION for s in starts):
            starts.append(u[k])
    return np.array(starts).reshape(-1, len(problem.lo))


def _start_points(problem: Problem, model, start, n_screen) -> np.ndarray:
    """Unit-cube points ``(k, d)`` of the physical parameter sets ``start`` (none: ``k = 0``), checked."""
    d = len(model.params)
    if start is None:
        return np.empty((0, d))
    theta = np.array(start, dtype=float, ndmin=2)
    if theta.ndim != 2 or theta.shape[1] != d:
        raise ValueError(f"start must have shape ({d},) or (k, {d}) (parameters {list(model.params)}); "
                         f"got {np.shape(start)}")
    lo, hi = np.array([model.bounds[p] for p in model.params], dtype=float).T
    if not np.all((theta >= lo) & (theta <= hi)):  # NaN fails too
        raise ValueError(f"start must be finite and within the bounds {dict(model.bounds)}; got {theta.tolist()}")
    if not n_screen:
        raise ValueError("start needs n_screen >= 1: its points are screened first")
    return problem.unit(theta)


def _scan_flat(problem: Problem) -> bool:
    """Try :data:`SCAN` values (plain runs) of the parameters whose gradient is zero at the best point.

    A parameter that acts on the flow only through switches (CemaNeige's ``cn_ctg``: the day the
    thermal state reaches 0) has a zero derivative almost everywhere, so the gradient phase keeps it
    where the screening put it. Returns whether a scanned value lowered the loss (then the gradient
    phase should continue from :attr:`Problem.best`).
    """
    if problem.best_grad is None:  # the best point came from the screening, or from LM
        return False
    value, flat = problem.best[0], np.flatnonzero(problem.best_grad == 0.0)
    u = np.repeat(problem.best[1][None], len(flat) * len(SCAN), axis=0)
    for i, j in enumerate(flat):
        u[i * len(SCAN):(i + 1) * len(SCAN), j] = SCAN
    if len(u):
        problem.values(u)  # side by side where the kernel can
    return problem.best[0] < value


@lru_cache(maxsize=1)
def _blas_controller():
    """One threadpoolctl controller per process: building one scans the loaded libraries (1-3 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def calibrate_basin(model, forcing, obs, loss="kge", warmup=0, n_starts=4, optimizer="lbfgsb", seed=0,
                    maxiter=200, tol=None, log_scale=True, solver_options=None, n_screen=32, prior=None,
                    start=None):
    """Calibrate ``model`` for one basin: screening by plain runs, then gradient starts from the best points.

    With ``n_screen > 0``: plain runs (no sensitivities, about half the cost of a run with
    them) at ``start``, the corners of ``prior`` and Latin-hypercube points, ``n_screen`` in all; the
    optimizer then starts from the best screened points (at least :data:`SEPARATION` apart),
    best first, and stops once a start ends at the best optimum found so far (within
    :data:`MERGE_RADIUS`), after ``n_starts`` starts at most. With ``n_screen=0``:
    ``n_starts`` Latin-hypercube starts, all run. Parameters whose gradient is exactly zero at
    the best point (switches, as CemaNeige's ``cn_ctg``) are then tried at :data:`SCAN` values
    by plain runs, and where one lowers the loss the optimizer starts once more from it. The
    best point evaluated is kept.

    A start during which the model fails (an ODE integration that diverges) ends there;
    the points it evaluated still count. The basin fails only if every start fails.

    Parameters
    ----------
    model : model object
        With ``params``, ``bounds`` and ``run(theta, forcing, warmup, sensitivities)``.
    forcing : ndarray, shape (n_forcings, T)
        Forcing in the order of ``model.forcings``, warm-up days first.
    obs : ndarray, shape (T - warmup,)
        Observed flow on the loss days (NaN = missing, masked in the loss).
    loss, warmup, n_starts, optimizer, seed, maxiter, tol, log_scale, solver_options, n_screen
        See :func:`basinsx.calibration.calibrate` (``tol=None``: the optimizer's default).
    prior : dict, optional
        ``{param: (low, high)}``: typical ranges whose corners are screened first (e.g. an
        entry of :data:`PRIORS`); parameters without one at the middle of their range.
    start : array_like, shape (d,) or (k, d), optional
        Physical parameter sets screened first, before the prior corners (e.g. the parameters
        of similar basins, :func:`basinsx.regional.donor_params`); they count in ``n_screen``.

    Returns
    -------
    dict
        ``params`` (physical, shape (d,)), ``loss``, ``kge``, ``nse`` (of the best
        simulation), ``n_evals`` (all model runs), ``n_plain`` (of them, runs without
        sensitivities), ``converged``, ``message``.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
    problem = Problem(model, forcing, obs, loss, warmup, log_scale, solver_options)
    if optimizer == "lm" and not problem.loss.residual:
        raise ValueError(f"loss {problem.loss.name!r} has no residual form; optimizer 'lm' needs one of "
                         "sse, nse, lognse, kge, kge2012, fdc, fdc_log, recession")
    options = {"maxiter": maxiter} if tol is None else {"maxiter": maxiter, "tol": tol}
    given = _start_points(problem, model, start, n_screen)

    best = None
    # The linear algebra here is on d-vectors: a multithreaded BLAS only adds wake-up
    # latency (10x slower on a busy machine); parallelism comes from basins instead.
    with _blas_controller().limit(limits=1, user_api="blas"):
        if n_screen:
            first = prior_points(problem, list(model.params), prior) if prior else given[:0]
            starts = screened_starts(problem, n_screen, n_starts, seed, np.vstack([given, first]))
            if not len(starts):
                raise FloatingPointError(f"the model failed at all {problem.n_evals} screened parameter sets")
        else:
            starts = latin_hypercube(n_starts, len(model.params), seed)
        for u0 in starts:
            try:
                result = OPTIMIZERS[optimizer](problem, u0, **options)
            except FloatingPointError as err:
                failure = err
                continue
            confirmed = best is not None and np.max(np.abs(result[0] - best[0])) < MERGE_RADIUS
            if best is None or result[1] < best[1]:
                best = result
            if n_screen and confirmed:
                break  # a second start reached the best optimum: the later, worse-screened starts rarely beat it
        if best is not None and _scan_flat(problem):
            try:
                OPTIMIZERS[optimizer](problem, problem.best[1], **options)
            except FloatingPointError:
                pass  # the scanned point itself stays the best
    if best is None:
        raise failure
    if problem.best[1] is None:
        raise FloatingPointError(f"the model failed at all {problem.n_evals} parameter sets tried")
    # The best point evaluated over all starts (normally the best start's end point).
    value, u, q = problem.best
    # the best run's efficiencies: undefined (NaN) on a constant record, which loss="sse" or "sae" accepts
    spread = np.ptp(obs[np.isfinite(obs)]) > 0
    kge, nse = (1.0 - KGE()(q, obs)[0], 1.0 - NSE()(q, obs)[0]) if spread else (np.nan, np.nan)
    return {"params": problem.theta(u), "loss": value, "kge": kge, "nse": nse,
            "n_evals": problem.n_evals, "n_plain": problem.n_plain, "converged": best[2], "message": best[3]}
