"""Two-dimensional confined-aquifer flow and conservative transport (finite volumes, scipy.sparse).

Steady Darcy flow with two-point fluxes and harmonic-mean transmissibilities, then transient
advection-dispersion of a conservative solute, fully implicit in time (backward Euler,
upwind advection, MT3DMS dispersion tensor). The aquifer has unit thickness; heads in m,
hydraulic conductivity in m/d, lengths in m, times in d, concentrations in the caller's unit.

Grid convention: cell ``(j, i)`` is row ``j`` along ``y`` (``bottom`` is ``y = 0``, ``top`` is
``y = Ly``) and column ``i`` along ``x`` (``left`` is ``x = 0``); flat index ``j * nx + i``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import xarray as xr

from .units import UnitsError, parse, to_canonical

__all__ = ["Aquifer", "conductivity", "ogata_banks"]

_SIDES = ("left", "right", "bottom", "top")
# largest dispersion number dt * (sum of a cell's dispersive conductances) / (its pore volume) of a step:
# theta <= 5/6, the dispersion number of the default (Courant 1) step of the Ogata-Banks column at grid Peclet 0.5
_DISPERSION_NUMBER = 6.0


def conductivity(permeability, density=1000.0, gravity=9.81, viscosity=1.0e-3):
    """Hydraulic conductivity in m/d of a permeability (water at 20 degC by default).

    Plain numbers are in m2. A DataArray's ``units`` are read: an area (``m2``, ``cm2``,
    ``darcy``, ``mD``) is converted to m2, anything else is a :class:`~basinsx.units.UnitsError`
    (a conductivity given again, ``D`` read as a day); without units it is in m2. A DataArray
    stays one (lazy for dask, labels kept); values in memory must be positive.
    """
    factor = density * gravity / viscosity * 86400.0
    if isinstance(permeability, xr.DataArray):
        permeability = _permeability_m2(permeability)
        if permeability.chunks is None and not np.all(permeability.values > 0):
            raise ValueError("permeability must be positive (m2)")
        return (permeability * factor).assign_attrs(units="m d-1", long_name="hydraulic conductivity")
    permeability = np.asarray(permeability, dtype=float)
    if not np.all(permeability > 0):
        raise ValueError("permeability must be positive (m2)")
    return permeability * factor


def _units(da):
    """The ``units`` attribute of a DataArray, None where there is none (or it is blank)."""
    units = da.attrs.get("units") if isinstance(da, xr.DataArray) else None
    if units is None or not str(units).strip():
        return None
    return str(units).strip()


def _dimensions(units):
    """The dimensions of ``units`` (``{"L": 2}`` for an area), None where a symbol is unknown."""
    try:
        return parse(units)[1]
    except UnitsError:
        return None


def _permeability_m2(da):
    """A permeability DataArray in m2 from its ``units`` (an area; none: m2)."""
    units = _units(da)
    if units is None:
        return da
    dims = _dimensions(units)
    if dims != {"L": 2}:
        why = ""
        if dims == {"T": 1} and units.lower() == "d":
            why = "; 'D' reads as a day: write a darcy 'darcy' (a millidarcy 'mD')"
        elif dims == {"L": 1, "T": -1}:
            why = ": that is a hydraulic conductivity already (give it to Aquifer as K)"
        raise UnitsError(f"permeability is in {units!r}, which is not an area (m2, cm2, darcy, mD){why}")
    return to_canonical(da, "permeability", expected="m2")[0]


def _conductivity_m_per_d(K):
    """A conductivity DataArray in m/d from its ``units`` (a velocity; none: m/d); a permeability is refused."""
    units = _units(K)
    if units is None:
        return K
    if _dimensions(units) == {"L": 2}:
        raise UnitsError(f"K is in {units!r}, a permeability, not a hydraulic conductivity (m d-1): "
                         "convert it with basinsx.groundwater.conductivity() first")
    return to_canonical(K, "K", expected="m d-1")[0]


def _days(times) -> np.ndarray:
    """Output times in d: numbers are days; timedelta64 and a DataArray's time ``units`` are converted."""
    import datetime

    if isinstance(times, xr.DataArray):
        units = _units(times)
        if units is not None and times.dtype.kind != "m":
            to_canonical(times, "times", expected="d")  # a UnitsError naming times where it is not a time
            # divided by the unit's days (24 for h): 48 h is 2 d exactly, as the time labels should be
            return np.atleast_1d(np.asarray(times.values, dtype=float) / (86400.0 / parse(units)[0]))
        times = times.values
    t = np.atleast_1d(np.asarray(times))
    if t.dtype.kind == "O" and t.size and all(isinstance(v, datetime.timedelta) for v in t.ravel()):
        t = t.astype("timedelta64[us]")
    if t.dtype.kind == "M":
        raise ValueError("times must be durations since the release (days, or timedelta64), not dates")
    if t.dtype.kind == "m":
        return t / np.timedelta64(1, "D")
    return t.astype(float)


def _extent(values):
    """``lo .. hi, n cells, spacing d`` of sorted coordinates (``spacing lo .. hi: not uniform`` where it is not)."""
    if values.size == 0:
        return "no cells"
    text = f"{values[0]:g} .. {values[-1]:g}, {values.size} cells"
    if values.size < 2:
        return text
    d = np.diff(values)
    if np.allclose(d, d[0], rtol=1e-9, atol=0.0):
        return f"{text}, spacing {d[0]:g}"
    return f"{text}, spacing {d.min():g} .. {d.max():g}: not uniform"


def grid_values(field, y=None, x=None, name: str = "field") -> np.ndarray:
    """``field (..., ny, nx)`` as floats; a DataArray with ``y`` and ``x`` dims is taken by those labels.

    Where the DataArray has ``y``/``x`` coordinates and the grid's cell centres ``y``, ``x`` are
    given, its cells are put in the order of the centres (a north-up raster has ``y``
    descending), and coordinates that are not the grid's are an error naming ``name``.
    """
    if isinstance(field, xr.DataArray) and {"y", "x"} <= set(field.dims):
        field = field.transpose(..., "y", "x")
        for dim, centres in (("y", y), ("x", x)):
            if centres is None or dim not in field.coords:
                continue
            labels, centres = np.asarray(field[dim].values, dtype=float), np.asarray(centres, dtype=float)
            have, want = np.argsort(labels, kind="stable"), np.argsort(centres, kind="stable")
            mine, grid = labels[have], centres[want]
            # centres are computed as (i + 0.5) * d: compare to round-off of the grid's extent
            tol = 1e-9 * np.abs(centres).max() + 1e-12
            same = mine.size == grid.size and np.isclose(mine, grid, rtol=0.0, atol=tol)
            if not np.all(same):
                where = ""
                if mine.size == grid.size:  # the first that differs, in increasing order
                    k = int(np.argmin(same))
                    where = f": {dim} = {mine[k]:g} (number {k + 1} in increasing order) where the grid's is "
                    where += f"{grid[k]:g}"
                raise ValueError(f"{name}'s {dim} coordinates ({_extent(mine)}) are not the grid's cell centres "
                                 f"({_extent(grid)}){where}")
            cells = np.empty_like(have)
            cells[want] = have  # the field's cell at each grid position
            field = field.isel({dim: cells})
    return np.ascontiguousarray(field, dtype=float)


def ogata_banks(x, t, velocity, dispersion, c0=1.0):
    """Ogata-Banks (1961) solution of 1-D advection-dispersion with ``c(0, t) = c0``.

    Parameters
    ----------
    x, t : array_like
        Distance from the inflow boundary (m) and time (d), broadcast together.
    velocity, dispersion : float
        Pore velocity (m/d) and longitudinal dispersion coefficient (m2/d).
    """
    from scipy.special import erfc

    x, t = np.broadcast_arrays(np.asarray(x, float), np.asarray(t, float))
    s = 2.0 * np.sqrt(dispersion * t)
    a = erfc((x - velocity * t) / s)
    # the second term overflows far from the front where erfc underflows: it is zero there
    with np.errstate(over="ignore", invalid="ignore"):
        b = np.exp(velocity * x / dispersion) * erfc((x + velocity * t) / s)
    return 0.5 * c0 * (a + np.nan_to_num(b, nan=0.0, posinf=0.0))


# --------------------------------------------------------------------------------------
# kernels on plain arrays
# --------------------------------------------------------------------------------------
def _harmonic(a, b):
    return 2.0 * a * b / (a + b)


def _flow_system(K, dx, dy, heads):
    """Sparse matrix, right-hand side and boundary transmissibilities of steady flow."""
    ny, nx = K.shape
    idx = np.arange(ny * nx).reshape(ny, nx)
    tx = _harmonic(K[:, :-1], K[:, 1:]) * dy / dx  # (ny, nx-1)
    ty = _harmonic(K[:-1, :], K[1:, :]) * dx / dy  # (ny-1, nx)
    rows = [idx[:, :-1].ravel(), idx[:, 1:].ravel(), idx[:-1, :].ravel(), idx[1:, :].ravel()]
    cols = [idx[:, 1:].ravel(), idx[:, :-1].ravel(), idx[1:, :].ravel(), idx[:-1, :].ravel()]
    vals = [-tx.ravel(), -tx.ravel(), -ty.ravel(), -ty.ravel()]
    diag = np.zeros((ny, nx))
    diag[:, :-1] += tx
    diag[:, 1:] += tx
    diag[:-1, :] += ty
    diag[1:, :] += ty
    rhs = np.zeros((ny, nx))
    tb = {}
    for side, h in heads.items():
        cells, t = _boundary(side, K, dx, dy)
        tb[side] = t
        diag[cells] += t
        rhs[cells] += t * h
    rows.append(idx.ravel())
    cols.append(idx.ravel())
    vals.append(diag.ravel())
    A = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(ny * nx,) * 2)
    return A, rhs.ravel(), tb


def _boundary(side, K, dx, dy):
    """Index of the cells along ``side`` and their half-cell transmissibility to the boundary."""
    if side == "left":
        return (slice(None), 0), K[:, 0] * dy / (0.5 * dx)
    if side == "right":
        return (slice(None), -1), K[:, -1] * dy / (0.5 * dx)
    if side == "bottom":
        return (0, slice(None)), K[0, :] * dx / (0.5 * dy)
    return (-1, slice(None)), K[-1, :] * dx / (0.5 * dy)


def _face_flows(K, h, dx, dy, heads, tb):
    """Volumetric flows per unit thickness (m2/d) through x-faces (ny, nx+1) and y-faces (ny+1, nx)."""
    ny, nx = K.shape
    qx = np.zeros((ny, nx + 1))
    qy = np.zeros((ny + 1, nx))
    qx[:, 1:-1] = _harmonic(K[:, :-1], K[:, 1:]) * dy / dx * (h[:, :-1] - h[:, 1:])
    qy[1:-1, :] = _harmonic(K[:-1, :], K[1:, :]) * dx / dy * (h[:-1, :] - h[1:, :])
    for side, hb in heads.items():
        if side == "left":
            qx[:, 0] = tb[side] * (hb - h[:, 0])
        elif side == "right":
            qx[:, -1] = tb[side] * (h[:, -1] - hb)
        elif side == "bottom":
            qy[0, :] = tb[side] * (hb - h[0, :])
        else:
            qy[-1, :] = tb[side] * (h[-1, :] - hb)
    return qx, qy


def _dispersion(vx, vy, aL, aT, dm):
    """MT3DMS dispersion tensor components (Dxx, Dyy, Dxy) from pore velocities."""
    speed = np.hypot(vx, vy)
    safe = np.where(speed > 0, speed, 1.0)
    dxx = np.where(speed > 0, (aL * vx**2 + aT * vy**2) / safe, 0.0) + dm
    dyy = np.where(speed > 0, (aL * vy**2 + aT * vx**2) / safe, 0.0) + dm
    dxy = np.where(speed > 0, (aL - aT) * vx * vy / safe, 0.0)
    return dxx, dyy, dxy


def _transport_operator(qx, qy, theta, dx, dy, aL, aT, dm, inflow_conc, advection=True):
    """Implicit transport operator ``L`` (mass flux out of each cell is ``L @ c - r``) and ``r``.

    Every interior face carries a flux ``F = sum_k a_k c_k`` from its first cell ``p`` to its
    second cell ``q``; it enters row ``p`` with ``+a_k`` and row ``q`` with ``-a_k``, so the
    scheme conserves mass exactly. ``advection=False`` leaves out the (upwind) advective
    fluxes, boundaries included: dispersion only, for the explicit TVD advection.
    """
    ny, nx = theta.shape
    idx = np.arange(ny * nx).reshape(ny, nx)
    rows, cols, vals = _face_terms(qx, qy, theta, dx, dy, aL, aT, dm, advection)
    diag, rhs = _boundary_terms(qx, qy, theta, dx, dy, aL, dm, inflow_conc, advection)
    rows = np.concatenate([rows, idx.ravel()])
    cols = np.concatenate([cols, idx.ravel()])
    vals = np.concatenate([vals, diag.ravel()])
    L = sp.csc_matrix((vals, (rows, cols)), shape=(ny * nx,) * 2)
    return L, rhs.ravel()


def _face_terms(qx, qy, theta, dx, dy, aL, aT, dm, advection):
    """Entries ``(rows, cols, vals)`` of the transport operator from the interior faces' fluxes.

    Upwind advection (if ``advection``), normal dispersion and the dispersive cross term, each
    face in both its cells' rows with opposite signs (see :func:`_transport_operator`).
    """
    ny, nx = theta.shape
    idx = np.arange(ny * nx).reshape(ny, nx)
    # pore velocities on faces; the transverse component is averaged from the neighbouring faces
    thx = 0.5 * (theta[:, :-1] + theta[:, 1:])
    thy = 0.5 * (theta[:-1, :] + theta[1:, :])
    vy_cell = 0.5 * (qy[:-1, :] + qy[1:, :]) / (dx * theta)
    vx_cell = 0.5 * (qx[:, :-1] + qx[:, 1:]) / (dy * theta)
    vx_f = qx[:, 1:-1] / (dy * thx)
    vy_f = qy[1:-1, :] / (dx * thy)
    dxx_x, _, dxy_x = _dispersion(vx_f, 0.5 * (vy_cell[:, :-1] + vy_cell[:, 1:]), aL, aT, dm)
    _, dyy_y, dxy_y = _dispersion(0.5 * (vx_cell[:-1, :] + vx_cell[1:, :]), vy_f, aL, aT, dm)

    P, Q, Kc, A = [], [], [], []

    def add(p, q, k, a):
        P.append(p.ravel())
        Q.append(q.ravel())
        Kc.append(k.ravel())
        A.append(np.broadcast_to(a, p.shape).ravel())

    # x-faces: p = (j, i), q = (j, i+1)
    p, q = idx[:, :-1], idx[:, 1:]
    Fx = qx[:, 1:-1]
    if advection:
        add(p, q, np.where(Fx > 0, p, q), Fx)  # upwind advection
    g = thx * dxx_x * dy / dx
    add(p, q, p, g)
    add(p, q, q, -g)
    if ny > 1:  # cross term: -theta dy Dxy dc/dy, centred (one-sided at walls) in both cells
        j = np.arange(ny)[:, None]
        jp, jm = np.minimum(j + 1, ny - 1), np.maximum(j - 1, 0)
        w = 1.0 / (2.0 * (jp - jm) * dy) * np.ones((1, nx - 1))
        a = -thx * dy * dxy_x * w
        cols = np.arange(nx - 1)[None, :]
        for jj, sgn in ((jp, 1.0), (jm, -1.0)):
            for ii in (cols, cols + 1):
                add(p, q, idx[jj * np.ones_like(cols), ii * np.ones_like(j)], sgn * a)
    # y-faces: p = (j, i), q = (j+1, i)
    p, q = idx[:-1, :], idx[1:, :]
    Fy = qy[1:-1, :]
    if advection:
        add(p, q, np.where(Fy > 0, p, q), Fy)
    g = thy * dyy_y * dx / dy
    add(p, q, p, g)
    add(p, q, q, -g)
    if nx > 1:
        i = np.arange(nx)[None, :]
        ip, im = np.minimum(i + 1, nx - 1), np.maximum(i - 1, 0)
        w = 1.0 / (2.0 * (ip - im) * dx) * np.ones((ny - 1, 1))
        a = -thy * dx * dxy_y * w
        rws = np.arange(ny - 1)[:, None]
        for ii, sgn in ((ip, 1.0), (im, -1.0)):
            for jj in (rws, rws + 1):
                add(p, q, idx[jj * np.ones_like(ii), ii * np.ones_like(rws)], sgn * a)

    P, Q, Kc, A = (np.concatenate(v) for v in (P, Q, Kc, A))
    rows = np.concatenate([P, Q])
    cols = np.concatenate([Kc, Kc])
    vals = np.concatenate([A, -A])
    return rows, cols, vals


def _boundary_terms(qx, qy, theta, dx, dy, aL, dm, inflow_conc, advection):
    """Diagonal and right-hand side ``(ny, nx)`` of the transport operator from the domain's four sides."""
    ny, nx = theta.shape
    # boundaries: advective outflow leaves with the cell concentration; inflow brings c_b
    # (0 unless given) and, where c_b is prescribed, a dispersive flux over half a cell
    diag = np.zeros((ny, nx))
    rhs = np.zeros((ny, nx))
    outward = {"left": -qx[:, 0], "right": qx[:, -1], "bottom": -qy[0, :], "top": qy[-1, :]}
    cells = {"left": (slice(None), 0), "right": (slice(None), -1), "bottom": (0, slice(None)), "top": (-1, slice(None))}
    for side in _SIDES:
        out = outward[side]
        sl = cells[side]
        cb = inflow_conc.get(side)
        if advection:
            diag[sl] += np.maximum(out, 0.0)
            if cb is not None:
                rhs[sl] += np.maximum(-out, 0.0) * cb
        if cb is not None:
            th = theta[sl]
            if side in ("left", "right"):
                vn = np.abs(out) / (dy * th)
                dn = aL * vn + dm  # the face velocity is normal to the boundary here
                gb = th * dn * dy / (0.5 * dx)
            else:
                vn = np.abs(out) / (dx * th)
                dn = aL * vn + dm
                gb = th * dn * dx / (0.5 * dy)
            diag[sl] += gb
            rhs[sl] += gb * cb
    return diag, rhs


_LIMITERS = {
    # Sweby (1984) limiters phi(r), all in the second-order TVD region: 0 <= phi <= min(2 r, 2)
    "minmod": lambda r: np.clip(r, 0.0, 1.0),
    "van_leer": lambda r: (r + np.abs(r)) / (1.0 + np.abs(r)),
    "mc": lambda r: np.maximum(0.0, np.minimum(np.minimum(2.0 * r, 0.5 * (1.0 + r)), 2.0)),
    "superbee": lambda r: np.maximum(0.0, np.maximum(np.minimum(2.0 * r, 1.0), np.minimum(r, 2.0))),
}
ADVECTION = ("upwind", *_LIMITERS)


class _Advection:
    """Explicit flux-limited advection: Lax-Wendroff limited to TVD (Sweby 1984), per face.

    The concentration carried through a face is ``c_up + (1 - Cr) / 2 phi(r) (c_down - c_up)``
    with ``r = (c_up - c_upup) / (c_down - c_up)`` and ``Cr = |q| dt / V_up`` the face Courant number
    (``V_up`` the pore volume of the upwind cell, the volume :meth:`max_dt` bounds): upwind
    where the profile is not smooth, second order in space and time (no ``v^2 dt / 2``
    numerical dispersion) where it is. Boundary faces are upwind; water entering through a
    side brings its inflow concentration (0 unless given). Each face flux leaves one cell and
    enters the other, so mass is conserved exactly.

    Faces of both directions form one list; indices point into the concentrations followed by
    one ghost slot per boundary face (the concentration of the water entering there).
    """

    def __init__(self, qx, qy, theta, dx, dy, inflow_conc, limiter):
        ny, nx = theta.shape
        self.n, self.limiter = ny * nx, _LIMITERS[limiter]
        self.volume = (theta * dx * dy).ravel()
        idx = np.arange(self.n).reshape(ny, nx)
        parts, ghosts = [], []
        # each direction as lines of cells along the last axis: x rows, then y columns
        for q, cells, lo, hi in ((qx, idx, "left", "right"), (qy.T, idx.T, "bottom", "top")):
            m, k = cells.shape
            first = self.n + sum(len(g) for g in ghosts)
            g_lo, g_hi = first + np.arange(m), first + m + np.arange(m)
            enters_lo, enters_hi = q[:, 0] > 0, q[:, -1] < 0
            ghosts += [np.where(enters_lo, inflow_conc.get(lo, 0.0), 0.0),
                       np.where(enters_hi, inflow_conc.get(hi, 0.0), 0.0)]
            ext = np.concatenate([g_lo[:, None], cells, g_hi[:, None]], axis=1)  # (m, k + 2)
            pos = q > 0
            up = np.where(pos, ext[:, :-1], ext[:, 1:])
            down = np.where(pos, ext[:, 1:], ext[:, :-1])
            # the value behind the upwind cell: the next cell, an inflow ghost (half a cell away:
            # ``half``), or on boundary faces and behind other walls the upwind value (phi = 0)
            behind = np.concatenate([ext[:, :1], ext, ext[:, -1:]], axis=1)  # (m, k + 4)
            upup = np.where(pos, behind[:, :-3], behind[:, 3:])
            wall = (upup >= self.n) & ~(np.isin(upup, g_lo[enters_lo]) | np.isin(upup, g_hi[enters_hi]))
            interior = np.zeros(q.shape, bool)
            interior[:, 1:-1] = True
            upup = np.where(interior & ~wall, upup, up)
            half = interior & (upup >= self.n)
            parts.append((up, down, upup, half, interior, np.abs(q)))
        self.up, self.down, self.upup, self.half, self.interior, self.flow = (
            np.concatenate([p[i].ravel() for p in parts]) for i in range(6))
        self.ghost = np.concatenate(ghosts)
        # the Courant number of a face is that of its upwind cell: with the mean porosity of the two
        # cells, a cell smaller than its neighbour overshot (6.6e-5 of c_in) at steps within max_dt
        self.face_volume = np.where(self.interior, np.r_[self.volume, np.ones(self.ghost.size)][self.up], 1.0)

    def max_dt(self):
        """Largest step that keeps every cell a convex combination of its neighbours.

        With outflows ``q_k`` from a cell of pore volume ``V`` (``A = sum q_k / V``,
        ``B = sum q_k^2 / V^2``) the update is bounded when ``2 A dt - B dt^2 <= 1``, i.e.
        ``dt <= 1 / (A + sqrt(A^2 - B))``: Courant 1 in 1-D, down to 1 - 1/sqrt(2) of the
        cell throughput where the flow leaves through two faces.
        """
        size = self.n + self.ghost.size
        A = np.bincount(self.up, self.flow, size)[: self.n] / self.volume
        B = np.bincount(self.up, self.flow**2, size)[: self.n] / self.volume**2
        with np.errstate(divide="ignore"):
            return float(np.min(1.0 / (A + np.sqrt(np.maximum(A * A - B, 0.0)))))

    def step(self, c, dt):
        """Concentrations after one advective step of ``dt`` and the net mass that entered."""
        ce = np.concatenate([c, self.ghost])
        cu, cd = ce[self.up], ce[self.down]
        den = cd - cu
        r = np.divide(cu - ce[self.upup], den, out=np.zeros_like(den), where=den != 0.0)
        r[self.half] *= 2.0  # the slope to a ghost on the face is over half a cell
        phi = self.limiter(r)
        # on those faces phi <= 2 r of the unscaled r, the bound max_dt relies on
        phi[self.half] = np.minimum(phi[self.half], np.maximum(r[self.half], 0.0))
        w = np.where(self.interior, 0.5 * (1.0 - self.flow * dt / self.face_volume), 0.0)
        F = self.flow * (cu + w * phi * den)
        net = np.bincount(self.up, F, ce.size) - np.bincount(self.down, F, ce.size)
        return c - dt / self.volume * net[: self.n], dt * net[self.n :].sum()


def _theta_step(L, storage, dt, diag, fixed, split: bool):
    """``(theta, lu, explicit)`` of a theta step of ``storage dc/dt = r - L c`` of size ``dt``.

    ``lu`` factors ``storage / dt + theta L`` (identity rows for the ``fixed`` cells); ``explicit``
    is ``(1 - theta) L``, None for backward Euler. Theta is 1 unless ``split`` (see :func:`_march`),
    where it is 1/2 or the smallest value that keeps the explicit part's coefficients non-negative.
    """
    theta = 1.0
    if split:
        with np.errstate(divide="ignore"):
            theta = max(0.5, 1.0 - float(np.min(storage / (dt * np.maximum(diag, 0.0)))))
    M = sp.diags(storage / dt) + theta * L
    if fixed is not None:  # fixed-concentration cells: identity rows
        M = M.tolil()
        M[fixed, :] = 0.0
        M[fixed, fixed] = 1.0
        M = M.tocsc()
    return theta, spla.splu(sp.csc_matrix(M)), (1.0 - theta) * L if theta < 1.0 else None


def _march(L, r, storage, times, max_dt, fixed=None, fixed_values=None, advect=None):
    """Steps of ``storage dc/dt = r - L c`` from ``c = 0``; one LU per step size.

    Without ``advect``, ``L`` holds advection and dispersion and every step is backward Euler.
    With ``advect`` (an :class:`_Advection`), ``L`` is dispersion only and the steps are Strang
    split: half an advective step, a theta step of ``L``, half an advective step (the halves
    between two steps merged into one). Theta is 1/2 (Crank-Nicolson, second order) where the
    explicit half keeps every coefficient non-negative, else the smallest theta that does
    (towards backward Euler where the dispersion number is large), so the dispersion step
    creates no new extremum either.
    Returns the concentrations at ``times``, the mass in the domain, the cumulative net mass
    that entered across the boundaries and from the ``fixed`` cells, the part of it from the
    ``fixed`` cells, the mass added by clipping negative values to zero and the lowest and
    highest concentrations before clipping.

    The ``fixed`` cells take in what keeps them at ``fixed_values``: over a step, their change
    plus their net outflow (the rows ``L`` that their identity rows replace), and at an output
    time the reset after the last advective half step.
    """
    n = storage.size
    c = np.zeros(n)
    cum_in = cum_fixed = 0.0
    if fixed is not None:
        c[fixed] = fixed_values
        cum_in = cum_fixed = float(storage[fixed] @ c[fixed])  # the fixed cells' own solute, added at t = 0
    out = np.empty((len(times), n))
    mass = np.empty(len(times))
    inflow = np.empty(len(times))
    from_fixed = np.zeros(len(times))
    clipped = 0.0
    low, high = 0.0, 0.0
    steps = {}
    # the net boundary inflow is r - L c summed over cells; interior fluxes cancel in the sum
    col = np.asarray(L.sum(axis=0)).ravel()
    r_total = r.sum()
    diag = L.diagonal()
    if fixed is not None:
        col_fixed = np.asarray(L[fixed].sum(axis=0)).ravel()
        r_fixed = r[fixed].sum()

    def hold(c, c_new, flux):
        """Mass the fixed cells took in: their change plus ``flux``, the net outflow of their rows."""
        nonlocal cum_in, cum_fixed
        added = float(storage[fixed] @ (c_new[fixed] - c[fixed])) + flux
        cum_in += added
        cum_fixed += added

    def advance(c, dt):
        nonlocal cum_in, low, high
        c, entered = advect.step(c, dt)
        cum_in += entered
        low, high = min(low, c.min()), max(high, c.max())
        return c

    t = 0.0
    for k, t_out in enumerate(times):
        nsub = max(1, int(np.ceil((t_out - t) / max_dt - 1e-9)))
        dt = (t_out - t) / nsub
        key = round(dt, 12)
        if key not in steps:
            steps[key] = _theta_step(L, storage, dt, diag, fixed, split=advect is not None)
        theta, lu, explicit = steps[key]
        for i in range(nsub):
            if advect is not None:
                c = advance(c, dt if i else 0.5 * dt)
            b = storage / dt * c + r
            if explicit is not None:
                b -= explicit @ c
            if fixed is not None:
                b[fixed] = fixed_values
            c_new = lu.solve(b)
            # net boundary inflow over the step (theta-weighted like the fluxes)
            c_mid = theta * c_new + (1.0 - theta) * c
            cum_in += dt * (r_total - col @ c_mid)
            if fixed is not None:
                hold(c, c_new, dt * (col_fixed @ c_mid - r_fixed))
            low, high = min(low, c_new.min()), max(high, c_new.max())
            neg = c_new < 0
            if neg.any():
                clipped -= float(storage[neg] @ c_new[neg])
                c_new[neg] = 0.0
            c = c_new
        if advect is not None:
            c = advance(c, 0.5 * dt)
            if fixed is not None:
                c_new = c.copy()
                c_new[fixed] = fixed_values
                hold(c, c_new, 0.0)
                c = c_new
        t = t_out
        out[k] = c
        mass[k] = storage @ c
        inflow[k] = cum_in
        from_fixed[k] = cum_fixed
    return out, mass, inflow, from_fixed, clipped, low, high


# --------------------------------------------------------------------------------------
# public class
# --------------------------------------------------------------------------------------
class Aquifer:
    """A 2-D confined aquifer of unit thickness on a regular grid.

    Parameters
    ----------
    shape : (int, int)
        Number of cells ``(ny, nx)``.
    length : (float, float)
        Extent ``(Ly, Lx)`` in m.
    porosity : float or array of shape ``shape``
        Effective porosity (-), a fraction; a DataArray's ``units`` are read (``%`` is converted).
    dispersivity : (float, float)
        Longitudinal and transverse dispersivity ``(aL, aT)`` in m.
    diffusion : float
        Effective molecular diffusion coefficient (m2/d).
    heads : mapping
        Fixed heads (m) on sides among ``left``, ``right``, ``bottom``, ``top``, one number per
        side; other sides are no-flow. At least one side is needed.
    inflow_conc : mapping, optional
        Concentration of water entering through a fixed-head side, one number per side; sides not
        given bring clean water. Sides given here are Dirichlet concentration boundaries
        (Ogata-Banks type).
    wells : mapping or sequence, optional
        Observation points ``{name: (x, y)}`` in m (or a sequence of ``(x, y)``); each reads the
        cell that contains it.
    sources : mapping, optional
        Fixed-concentration cells ``{(x, y): c}`` (``c`` finite, >= 0); the mass they add (or remove) to stay at ``c``
        is in the results' ``net_inflow`` and ``source_inflow``.
    max_dt : float, optional
        Largest time step (d). By default the largest step the explicit TVD advection keeps
        bounded (Courant 1 in 1-D, less where water leaves a cell through two faces; a larger
        ``max_dt`` is reduced to it), and with ``advection="upwind"`` the step where the
        Courant number is 1 in the fastest cell. Either way the step is also at most the one
        where a cell's dispersion number ``dt sum(theta D / dx^2)`` (its dispersive conductances
        over its pore volume) is 6, which keeps the dispersion step accurate where there is
        little or no flow; no step is longer than the last output time.
    advection : str
        ``"mc"`` (monotonized central, default), ``"van_leer"``, ``"superbee"`` or ``"minmod"``: explicit
        flux-limited second-order (TVD) advection with that limiter, dispersion implicit;
        ``"upwind"``: fully implicit first-order upwind (backward Euler), the scheme of
        basinsx <= 0.x, whose numerical dispersion is ``v dx / 2 + v^2 dt / 2``.
    """

    def __init__(
        self,
        shape,
        length,
        porosity=0.3,
        dispersivity=(0.1, 0.01),
        diffusion=0.0,
        heads=None,
        inflow_conc=None,
        wells=None,
        sources=None,
        max_dt=None,
        advection="mc",
    ):
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape must be two positive cell counts (ny, nx), got {shape!r}")
        if len(length) != 2 or min(length) <= 0:
            raise ValueError(f"length must be two positive extents (Ly, Lx) in m, got {length!r}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.length = (float(length[0]), float(length[1]))
        self.dy, self.dx = self.length[0] / self.shape[0], self.length[1] / self.shape[1]
        self.y = (np.arange(self.shape[0]) + 0.5) * self.dy
        self.x = (np.arange(self.shape[1]) + 0.5) * self.dx
        if isinstance(porosity, xr.DataArray):
            porosity = to_canonical(porosity, "porosity", expected="1")[0]  # 30 % -> 0.3
        por = np.broadcast_to(grid_values(porosity, self.y, self.x, "porosity"), self.shape)
        if not np.all((por > 0) & (por <= 1)):
            raise ValueError(f"porosity must lie in (0, 1] as a fraction, got {por.min():g} .. {por.max():g}; "
                             "a percentage needs a DataArray with units '%'")
        self.porosity = np.array(por)
        if np.ndim(dispersivity) != 1 or len(dispersivity) != 2:
            raise ValueError(f"dispersivity must be (longitudinal, transverse) in m, got {dispersivity!r}")
        aL, aT = dispersivity
        if not (aL >= 0 and aT >= 0 and diffusion >= 0):
            raise ValueError("dispersivities and diffusion must be non-negative")
        self.dispersivity = (float(aL), float(aT))
        self.diffusion = float(diffusion)
        heads = dict(heads or {})
        if not heads:
            raise ValueError("heads needs at least one fixed-head side, e.g. {'left': 1.0, 'right': 0.0}")
        inflow_conc = dict(inflow_conc or {})
        for name, d in (("heads", heads), ("inflow_conc", inflow_conc)):
            bad = set(d) - set(_SIDES)
            if bad:
                raise ValueError(f"{name} has unknown sides {sorted(bad)}; use {_SIDES}")
        if set(inflow_conc) - set(heads):
            raise ValueError("inflow_conc sides must be fixed-head sides (no water enters through no-flow sides)")
        for name, d in (("heads", heads), ("inflow_conc", inflow_conc)):
            for side, v in d.items():
                if np.ndim(v) != 0:
                    raise ValueError(f"{name}[{side!r}] must be one number for the whole side, got an array of "
                                     f"shape {np.shape(v)}; values varying along a side are not supported")
            if not all(np.isfinite(float(v)) for v in d.values()):
                raise ValueError(f"{name} must be finite; got {d}")
        for side, v in inflow_conc.items():
            if float(v) < 0:
                raise ValueError(f"inflow_conc[{side!r}] must be a finite concentration >= 0; got {float(v):g}")
        self.heads = {k: float(v) for k, v in heads.items()}
        self.inflow_conc = {k: float(v) for k, v in inflow_conc.items()}
        self.wells = self._locate(wells)
        self.sources = None
        if sources:
            fixed = {}
            for xy, value in sources.items():
                j, i = self._cell(xy)
                cell, value = j * self.shape[1] + i, float(value)
                if not (np.isfinite(value) and value >= 0):
                    raise ValueError(f"sources at {xy!r} must be a finite concentration >= 0; got {value:g}")
                if fixed.get(cell, value) != value:
                    raise ValueError(f"sources at {xy!r} and another point in the same cell fix it at "
                                     f"{fixed[cell]:g} and {value:g}")
                fixed[cell] = value
            self.sources = (np.array(list(fixed)), np.array(list(fixed.values())))
        if max_dt is not None and not max_dt > 0:
            raise ValueError("max_dt must be positive")
        self.max_dt = max_dt
        if advection not in ADVECTION:
            raise ValueError(f"advection={advection!r} is not one of {ADVECTION}")
        self.advection = advection

    def _cell(self, xy):
        x, y = xy
        if not (0 <= x <= self.length[1] and 0 <= y <= self.length[0]):
            raise ValueError(f"point {xy!r} lies outside the domain {self.length[1]} m x {self.length[0]} m")
        return min(int(y / self.dy), self.shape[0] - 1), min(int(x / self.dx), self.shape[1] - 1)

    def _locate(self, wells):
        if wells is None:
            return None
        if not isinstance(wells, Mapping):
            wells = {f"w{k}": xy for k, xy in enumerate(wells)}
        names = list(wells)
        cells = np.array([self._cell(wells[n]) for n in names]).reshape(-1, 2)
        return names, cells

    def _check_K(self, K):
        if isinstance(K, xr.DataArray):
            K = _conductivity_m_per_d(K)  # m s-1 -> m d-1; a permeability is refused
        K = grid_values(K, self.y, self.x, "K")
        if K.shape != self.shape:
            raise ValueError(f"K has shape {K.shape}, the aquifer grid is {self.shape} (ny, nx)")
        if not np.all(np.isfinite(K)) or np.any(K <= 0):
            raise ValueError("K must be finite and strictly positive everywhere (m/d)")
        return K

    def flow(self, K):
        """Steady heads (ny, nx) and face flows ``qx`` (ny, nx+1), ``qy`` (ny+1, nx) in m2/d."""
        K = self._check_K(K)
        A, rhs, tb = _flow_system(K, self.dx, self.dy, self.heads)
        h = spla.splu(A).solve(rhs).reshape(self.shape)
        qx, qy = _face_flows(K, h, self.dx, self.dy, self.heads, tb)
        return h, qx, qy

    def simulate(self, K, times) -> xr.Dataset:
        """Run flow and transport for a conductivity field.

        Parameters
        ----------
        K : array_like, shape ``(ny, nx)``
            Hydraulic conductivity (m/d). A DataArray's ``units`` are read: a velocity (``m s-1``,
            ``cm s-1``, ...) is converted, a permeability (``m2``, ``mD``) is a
            :class:`~basinsx.units.UnitsError` (convert it with :func:`conductivity`).
        times : array_like
            Increasing output times since the release, all positive; the solute starts at zero
            concentration. Numbers are days; ``timedelta64`` values, and a DataArray with time
            ``units`` (``s``, ``h``, ...), are converted to days (the ``time`` coordinate is in d).

        Returns
        -------
        xarray.Dataset
            ``head(y, x)``, ``conc(time, y, x)``, ``mass(time)`` (solute in the domain),
            ``net_inflow(time)`` (cumulative net mass entered across the boundaries and from the
            sources, so that ``mass - net_inflow - attrs['clipped_mass']`` is zero to round-off),
            with sources ``source_inflow(time)`` (the sources' part of it), and with
            wells ``well_head(well)``, ``well_conc(time, well)``. ``attrs['clipped_mass']`` is
            the mass added by clipping negative concentrations (from cross-dispersion) to zero;
            ``attrs['undershoot']`` and ``attrs['overshoot']`` are the largest excursions below 0
            and above the highest inflow or source concentration over all steps, before clipping.
        """
        times = _days(times)
        if times.ndim != 1 or not np.all(np.isfinite(times)) or times[0] <= 0 or np.any(np.diff(times) <= 0):
            raise ValueError("times must be positive and strictly increasing (d)")
        h, qx, qy = self.flow(K)
        tvd = self.advection != "upwind"
        L, r = _transport_operator(qx, qy, self.porosity, self.dx, self.dy, *self.dispersivity, self.diffusion,
                                   self.inflow_conc, advection=not tvd)
        storage = (self.porosity * self.dx * self.dy).ravel()
        advect = _Advection(qx, qy, self.porosity, self.dx, self.dy, self.inflow_conc, self.advection) if tvd else None
        fixed, fixed_values = self.sources if self.sources is not None else (None, None)
        if tvd:
            max_dt = min(advect.max_dt(), self.max_dt or np.inf)
        elif self.max_dt is None:
            vmax = max(np.abs(qx).max() / (self.dy * self.porosity.min()) / self.dx,
                       np.abs(qy).max() / (self.dx * self.porosity.min()) / self.dy)
            max_dt = 1.0 / vmax if vmax > 0 else np.inf
        else:
            max_dt = self.max_dt
        # the dispersion step's accuracy: a dispersion number of at most _DISPERSION_NUMBER in every cell
        # (without it, diffusion with no flow took one step per output time: 0.12 of c0 off in one of 100 d)
        dispersive = L.diagonal()
        if not tvd:  # upwind: less the advective part of the diagonal, each cell's outflow
            dispersive = dispersive - (np.maximum(qx[:, 1:], 0.0) + np.maximum(-qx[:, :-1], 0.0)
                                       + np.maximum(qy[1:, :], 0.0) + np.maximum(-qy[:-1, :], 0.0)).ravel()
        rate = np.maximum(dispersive, 0.0) / storage
        if fixed is not None:
            rate[fixed] = 0.0  # identity rows
        if rate.max() > 0:
            max_dt = min(max_dt, _DISPERSION_NUMBER / rate.max())
        max_dt = min(max_dt, times[-1])
        c, mass, inflow, from_fixed, clipped, low, high = _march(L, r, storage, times, max_dt, fixed, fixed_values,
                                                                 advect)
        c = c.reshape(len(times), *self.shape)
        c_max = max([0.0, *self.inflow_conc.values(), *(fixed_values if fixed is not None else [])])
        coords = {
            "time": ("time", times, {"units": "d", "long_name": "time since release"}),
            "y": ("y", self.y, {"units": "m", "long_name": "cell centre y"}),
            "x": ("x", self.x, {"units": "m", "long_name": "cell centre x"}),
        }
        ds = xr.Dataset(
            {
                "head": (("y", "x"), h, {"units": "m", "long_name": "steady hydraulic head"}),
                "conc": (("time", "y", "x"), c, {"long_name": "solute concentration"}),
                "mass": ("time", mass, {"long_name": "solute mass in the domain per unit thickness"}),
                "net_inflow": ("time", inflow, {"long_name": "cumulative net solute mass entered across boundaries "
                                                             "and from sources"}),
            },
            coords=coords,
            attrs={"clipped_mass": clipped, "max_dt": max_dt, "advection": self.advection,
                   "undershoot": max(0.0, -low), "overshoot": max(0.0, high - c_max)},
        )
        if fixed is not None:
            ds["source_inflow"] = ("time", from_fixed, {"long_name": "cumulative net solute mass the fixed-"
                                                                     "concentration sources added"})
        if self.wells is not None:
            names, cells = self.wells
            jj, ii = cells[:, 0], cells[:, 1]
            ds = ds.assign_coords(well=("well", names), well_x=("well", self.x[ii]), well_y=("well", self.y[jj]))
            ds["well_head"] = ("well", h[jj, ii], {"units": "m", "long_name": "head at observation well"})
            ds["well_conc"] = (("time", "well"), c[:, jj, ii], {"long_name": "concentration at observation well"})
        return ds

    def observe(self, K, times) -> np.ndarray:
        """Heads then concentrations (time-major) at the wells as one vector, for surrogates."""
        if self.wells is None:
            raise ValueError("observe needs an aquifer with wells")
        ds = self.simulate(K, times)
        return np.concatenate([ds.well_head.values, ds.well_conc.values.ravel()])

    def __repr__(self):
        return (f"Aquifer(shape={self.shape}, length={self.length}, heads={self.heads}, "
                f"inflow_conc={self.inflow_conc}, advection={self.advection!r})")
