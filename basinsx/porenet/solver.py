"""Steady Stokes flow through a pore network and its absolute permeability.

Mass balance at every interior pore ``i``: ``sum_j g_ij (p_i - p_j) = 0``, with
``p = dP`` on the inlet face (``pore_<axis>min``) and ``p = 0`` on the outlet face. The
interior block of the weighted graph Laplacian is symmetric positive definite once every
interior pore reaches a Dirichlet pore, so it is solved with a sparse Cholesky-type direct
method or with algebraic multigrid preconditioned conjugate gradients. Darcy's law then
gives ``K = Q mu L / (A dP)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import xarray as xr
from scipy.sparse.csgraph import connected_components

from .conductance import conductance
from .geometry import axis_index
from .network import adjacency, checked, validate

MILLIDARCY = 9.869233e-16  # m2


class FlowSystem:
    """The linear system of a network with fixed Dirichlet faces (plain arrays, no xarray).

    Parameters
    ----------
    conns : int array (n_throats, 2)
    npore : int
    inlet, outlet : bool arrays (n_pores,)
        Pores held at ``dP`` and at 0.

    Notes
    -----
    Pores whose cluster contains no inlet or outlet pore (floating clusters) have no
    defined pressure: they are excluded (pressure NaN, no flow).
    """

    def __init__(self, conns, npore, inlet, outlet):
        self.conns = np.ascontiguousarray(conns, dtype=np.int64)  # torch refuses negative strides
        self.npore = int(npore)
        inlet = np.asarray(inlet, bool)
        outlet = np.asarray(outlet, bool)
        if not inlet.any() or not outlet.any():
            raise ValueError(f"the network needs inlet and outlet pores (found {inlet.sum()} inlet, "
                             f"{outlet.sum()} outlet)")
        if (inlet & outlet).any():
            raise ValueError(f"{(inlet & outlet).sum()} pores are labelled both inlet and outlet")
        _, lab = connected_components(adjacency(self.conns, self.npore), directed=False)
        if np.intersect1d(lab[inlet], lab[outlet]).size == 0:
            raise ValueError("no path from the inlet face to the outlet face: no cluster of throats joins them "
                             "(check the flow axis, the face labels and trim_disconnected)")
        anchored = np.isin(lab, np.unique(lab[inlet | outlet]))
        self.inlet, self.outlet = inlet, outlet
        self.interior = anchored & ~inlet & ~outlet
        self.floating = ~anchored
        self.index = np.full(self.npore, -1, np.int64)
        self.n = int(self.interior.sum())
        self.index[self.interior] = np.arange(self.n)
        i, j = self.conns.T
        ii, ij = self.interior[i], self.interior[j]
        self.t_in = np.flatnonzero(ii & ij)  # both ends unknown
        self.t_bi = np.flatnonzero(ii & ~ij & (inlet[j] | outlet[j]))  # unknown i, known j
        self.t_ib = np.flatnonzero(ij & ~ii & (inlet[i] | outlet[i]))  # known i, unknown j
        # throats through the inlet face, oriented inlet -> other end
        self.t_face = np.flatnonzero(inlet[i] ^ inlet[j])
        self.face_sign = np.where(inlet[i[self.t_face]], 1.0, -1.0)

    def matrix(self, g):
        """Interior block ``L_II`` of the weighted Laplacian (CSR)."""
        a = self.index[self.conns[self.t_in, 0]]
        b = self.index[self.conns[self.t_in, 1]]
        gi = g[self.t_in]
        diag = (np.bincount(a, gi, self.n) + np.bincount(b, gi, self.n)
                + np.bincount(self.index[self.conns[self.t_bi, 0]], g[self.t_bi], self.n)
                + np.bincount(self.index[self.conns[self.t_ib, 1]], g[self.t_ib], self.n))
        rows = np.concatenate([a, b, np.arange(self.n)])
        cols = np.concatenate([b, a, np.arange(self.n)])
        vals = np.concatenate([-gi, -gi, diag])
        return sp.csr_matrix((vals, (rows, cols)), shape=(self.n, self.n))

    def rhs(self, g, dp):
        """Right-hand side ``-L_IB p_B`` for ``p = dp`` at the inlet and 0 at the outlet."""
        pb = np.where(self.inlet, dp, 0.0)
        return (np.bincount(self.index[self.conns[self.t_bi, 0]], g[self.t_bi] * pb[self.conns[self.t_bi, 1]], self.n)
                + np.bincount(self.index[self.conns[self.t_ib, 1]], g[self.t_ib] * pb[self.conns[self.t_ib, 0]],
                              self.n))

    def expand(self, p_interior, dp):
        """Pressure at every pore from the interior unknowns."""
        p = np.where(self.inlet, dp, 0.0)
        p[self.interior] = p_interior
        p[self.floating] = np.nan
        return p

    def flow_rate(self, g, p):
        """Total flow out of the inlet pores into the rest of the network."""
        i, j = self.conns[self.t_face].T
        return float(np.sum(self.face_sign * g[self.t_face] * (p[i] - p[j])))

    def throat_dp(self, p):
        """Pressure drop ``p_i - p_j`` of every throat (0 inside floating clusters)."""
        dpt = p[self.conns[:, 0]] - p[self.conns[:, 1]]
        return np.nan_to_num(dpt, nan=0.0)


def factorize(a, method="auto", rtol=1e-12):
    """Return ``solve(b)`` for the SPD matrix ``a``.

    Parameters
    ----------
    a : scipy.sparse matrix
    method : {"auto", "direct", "amg", "cg"}
        ``direct``: SuperLU with a symmetric ordering (factor kept for repeated solves);
        ``amg``: pyamg classical AMG as a CG preconditioner; ``cg``: Jacobi-CG
        (scipy only). ``auto``: direct below 5,000 unknowns (SuperLU fill-in grows fast on
        3-D networks), else amg when pyamg is installed, else cg.
    rtol : float
        Relative residual tolerance of the iterative methods.
    """
    n = a.shape[0]
    if method == "auto":
        if n < 5_000:
            method = "direct"
        else:
            try:
                import pyamg  # noqa: F401
                method = "amg"
            except ImportError:
                method = "cg"
    if n == 0:
        return lambda b: np.zeros(0)
    if method == "direct":
        lu = spla.splu(a.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                       options={"SymmetricMode": True})
        return lu.solve
    if method == "amg":
        try:
            import pyamg
        except ImportError as err:
            raise ImportError("method='amg' needs pyamg (pip install pyamg, or basinsx[pnm])") from err
        # classical (Ruge-Stuben) AMG: a cheaper setup than smoothed aggregation for these
        # M-matrices at the same ~15 CG iterations to 1e-12
        ml = pyamg.ruge_stuben_solver(a.tocsr(), max_coarse=500)

        def solve(b):
            res = []
            x = ml.solve(b, tol=rtol, accel="cg", maxiter=1000, residuals=res)
            if res[-1] > rtol * max(res[0], np.linalg.norm(b)) * 10:
                raise RuntimeError(f"AMG-CG did not converge: residual {res[-1]:.3g} after {len(res)} iterations")
            return x
        return solve
    if method == "cg":
        m = sp.diags(1.0 / a.diagonal())

        def solve(b):
            x, info = spla.cg(a, b, rtol=rtol, atol=0.0, M=m, maxiter=20 * n)
            if info != 0:
                raise RuntimeError(f"CG did not converge (info={info})")
            return x
        return solve
    raise ValueError(f"unknown method {method!r}; choose auto, direct, amg or cg")


def _by_label(g: xr.DataArray, net: xr.Dataset) -> xr.DataArray:
    """``g`` matched to the network's throats by their ``throat`` labels; an error names what does not match."""
    labels, want = g["throat"].values, net["throat"].values
    uniq, counts = np.unique(labels, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"conductance g gives throats {uniq[counts > 1][:10].tolist()} more than once")
    missing = np.setdiff1d(want, labels)
    if missing.size:
        raise ValueError(f"conductance g has no conductance for throats {missing[:10].tolist()} "
                         f"({missing.size} of the network's {want.size})")
    extra = np.setdiff1d(labels, want)
    if extra.size:
        raise ValueError(f"conductance g has conductances for throats {extra[:10].tolist()} that the network does "
                         f"not have ({extra.size}; trimmed or subset networks need g of their own throats)")
    return g.sel(throat=want)


def _resolve_g(net, g, mu):
    nt = net.sizes["throat"]
    if isinstance(g, xr.DataArray) and g.dims == ("throat",) and "throat" in g.coords and "throat" in net.coords:
        g = _by_label(g, net)  # labelled on both sides: by label, never by position
    if g is None:  # conductances that came with the network (OpenPNM) before a geometric model
        g = net["throat_hydraulic_conductance"].values if "throat_hydraulic_conductance" in net else "hagen_poiseuille"
    if isinstance(g, str):
        g = conductance(net, g, mu)
    g = np.asarray(g, dtype=float)
    g = np.broadcast_to(g, (nt,)).copy() if g.ndim == 0 else g
    if g.shape != (nt,):
        raise ValueError(f"conductance must have one value per throat ({nt}), got shape {g.shape}")
    if not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise ValueError("conductances must be finite and positive")
    return g


def check_dp_mu(dp, mu) -> None:
    """Raise unless the pressure drop (Pa) and the viscosity (Pa s) are positive."""
    if not dp > 0 or not mu > 0:
        raise ValueError(f"dp and mu must be positive, got dp={dp}, mu={mu}")


def length_and_area(net: xr.Dataset, axis: str) -> tuple[float, float]:
    """Sample length along ``axis`` and cross-section for Darcy's law.

    Lattices (attribute ``lattice_shape``): the distance between the inlet and outlet pore
    planes ``(N - 1) a`` and ``A = N_1 N_2 a^2``. Other networks: the domain (image) extent.
    """
    d = axis_index(axis)
    others = [k for k in range(3) if k != d]
    if "lattice_shape" in net.attrs:
        shape, a = net.attrs["lattice_shape"], net.attrs["spacing"]
        if shape[d] < 2:
            raise ValueError(f"a lattice needs at least 2 pores along {axis} for flow")
        return (shape[d] - 1) * a, shape[others[0]] * shape[others[1]] * a**2
    size = net.attrs.get("domain_size")
    if size is None:
        raise ValueError("network has no 'domain_size' attribute: cannot convert flow rate to permeability")
    return float(size[d]), float(size[others[0]] * size[others[1]])


def system(net: xr.Dataset, axis: str) -> FlowSystem:
    """The :class:`FlowSystem` of a network for flow along ``axis``."""
    validate(net)
    axis_index(axis)
    return FlowSystem(net["throat_conns"].values, net.sizes["pore"], net[f"pore_{axis}min"].values,
                      net[f"pore_{axis}max"].values)


def viscosity(net: xr.Dataset, mu=None) -> float:
    """``mu`` (Pa s) if given, else the network's ``viscosity`` attribute, else water's 1e-3."""
    return float(net.attrs.get("viscosity", 1e-3)) if mu is None else mu


def permeability(net: xr.Dataset, g=None, axis: str = "x", dp: float = 1.0, mu: float | None = None,
                 method: str = "auto", rtol: float = 1e-12) -> xr.Dataset:
    """Absolute permeability of a pore network along one axis.

    Parameters
    ----------
    net : xarray.Dataset
        Network (see :mod:`basinsx.porenet.network`).
    g : None, str, array or DataArray
        Throat conductances in m3 s-1 Pa-1, or a model name from
        :data:`basinsx.porenet.conductance.MODELS`. Default: the network's
        ``throat_hydraulic_conductance`` when it has one (e.g. from :func:`from_openpnm`, which
        also sets the ``viscosity`` attribute from the phase), else ``"hagen_poiseuille"``.
        A DataArray with a ``throat`` coordinate is matched to a network with one by label
        (throats missing from ``g``, or in ``g`` only, are a ValueError naming them); arrays
        without labels are taken by position.
    axis : {"x", "y", "z"}
        Flow axis; inlet pores are ``pore_<axis>min``, outlet pores ``pore_<axis>max``.
    dp : float
        Applied pressure drop in Pa.
    mu : float, optional
        Dynamic viscosity in Pa s. Default: the network's ``viscosity`` attribute (the phase's,
        from :func:`from_openpnm`), else 1e-3 (water at 20 C).
    method : {"auto", "direct", "amg", "cg"}
        Linear solver (see :func:`factorize`).
    rtol : float
        Tolerance of the iterative solvers.

    Returns
    -------
    xarray.Dataset
        ``flow_rate`` (m3 s-1 through the inlet face), ``permeability`` (m2, attribute
        ``millidarcy``), ``pressure(pore)`` (Pa; NaN in floating clusters),
        ``throat_flow(throat)`` (m3 s-1 from end 0 to end 1) and ``conductance(throat)``.

    Raises
    ------
    ValueError
        No path from inlet to outlet, non-positive conductances, bad axis.

    Examples
    --------
    >>> from basinsx.porenet import cubic, permeability
    >>> net = cubic((5, 4, 3), 1e-4)
    >>> round(float(permeability(net, g=1e-12, mu=1e-3)["permeability"]) / 1e-11, 12)  # K = g mu / a
    1.0
    """
    net = checked(net)  # lengths in m, whatever units they declare
    mu = viscosity(net, mu)
    check_dp_mu(dp, mu)
    system_ = system(net, axis)
    g = _resolve_g(net, g, mu)
    solve = factorize(system_.matrix(g), method, rtol)
    p = system_.expand(solve(system_.rhs(g, dp)), dp)
    q = system_.flow_rate(g, p)
    length, area = length_and_area(net, axis)
    k = q * mu * length / (area * dp)
    return xr.Dataset(
        {
            "flow_rate": ((), q, {"units": "m3 s-1", "long_name": f"flow rate through the {axis}min face"}),
            "permeability": ((), k, {"units": "m2", "long_name": f"absolute permeability along {axis}",
                                     "millidarcy": k / MILLIDARCY}),
            "pressure": ("pore", p, {"units": "Pa", "long_name": "pore pressure"}),
            "throat_flow": ("throat", g * system_.throat_dp(p),
                            {"units": "m3 s-1", "long_name": "flow rate from pore end 0 to end 1"}),
            "conductance": ("throat", g, {"units": "m3 s-1 Pa-1", "long_name": "hydraulic conductance"}),
        },
        attrs={"axis": axis, "dp": dp, "viscosity": mu, "length": length, "area": area,
               "floating_pores": int(system_.floating.sum())},
    )


__all__ = ["FlowSystem", "factorize", "length_and_area", "permeability", "system", "viscosity"]
