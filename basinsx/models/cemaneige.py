"""CemaNeige (Valery et al. 2014) and its linear hysteresis (Riboust et al. 2019) as airGR computes them.

A degree-day snow module on elevation layers, as airGR's ``DataAltiExtrapolation_Valery``,
``CreateRunOptions`` and ``frun_CEMANEIGE.f90``:

* layers: ``n_layers`` bands of equal area from the 101 elevation quantiles (the median elevation
  of each band); precipitation extrapolated with ``exp(0.00041 (z_layer - z_station))`` (capped at
  4000 m) and rescaled so that the layers average to the station's; temperature with the daily
  lapse rates of Valery (2010); solid fraction ``1 - (T + 1)/4`` clipped to [0, 1] (USACE);
* the melt threshold ``0.9`` (or ``cn_rsp`` with hysteresis) times the mean annual solid
  precipitation of the whole forcing given (zero for a forcing without snowfall, whose pack stays
  empty: its ratio is 1 then, with hysteresis too, where airGR and GRsuite divide 0 by 0);
* per layer and day: thermal state ``eTG = min(0, ctg eTG + (1 - ctg) T)``, potential melt
  ``min(G, kf T)`` when ``eTG = 0`` and ``T > 0``, melt ``(0.9 Gratio + 0.1) PotMelt``.

Rain plus melt, averaged over the layers, is the runoff model's precipitation. The layer inputs
do not depend on the parameters; the kernel carries the derivatives of the snow states with
respect to ``cn_ctg, cn_kf`` (and ``cn_thacc, cn_rsp``) through every operation, so ``dw/dtheta``
is the derivative of the discrete map (kinks where a clamp or airGR's ``Gratio == 1`` test switches).
"""

from __future__ import annotations

import warnings

import numpy as np
from numba import njit

from ._gradt import GRAD_TMEAN

PARAMS = {"cemaneige": ("cn_ctg", "cn_kf"), "cemaneige_hyst": ("cn_ctg", "cn_kf", "cn_thacc", "cn_rsp")}
# airGR's search ranges (TransfoParam_CemaNeige[Hyst]) except kf, cut from exp(9.99)/200 = 110 to 20 mm/degC/d, and
# rsp, whose lower end 0 would make the melt threshold zero
BOUNDS = {"cn_ctg": (0.0, 1.0), "cn_kf": (0.0, 20.0), "cn_thacc": (0.05, 99.95), "cn_rsp": (0.001, 1.0)}
UNITS = {"cn_ctg": "1", "cn_kf": "mm degC-1 d-1", "cn_thacc": "mm", "cn_rsp": "1"}
POSITIVE = ("cn_thacc", "cn_rsp")
#: The states per layer (airGR's G, eTG, Gthreshold and, with the hysteresis, Glocalmax and Gratio, which airGR
#: restarts at 0 and which an exact continuation needs), in the rows of the kernel's ``x0``
STATES = {"cemaneige": ("cn_pack", "cn_thermal", "cn_threshold"),
          "cemaneige_hyst": ("cn_pack", "cn_thermal", "cn_threshold", "cn_localmax", "cn_ratio")}
STATE_UNITS = {"cn_pack": "mm", "cn_thermal": "degC", "cn_threshold": "mm", "cn_localmax": "mm", "cn_ratio": "1"}

N_LAYERS = 5  # elevation layers by default (airGR's)
GRAD_P = 0.00041  # precipitation gradient, m-1
Z_THRESHOLD = 4000.0  # m, above which precipitation is not extrapolated further
# airGR writes 0.1 and 0.9 without kind: single-precision literals
MIN_SPEED = float(np.float32(0.1))
G_THRESHOLD = float(np.float32(0.9))
_MONTH_START = np.cumsum([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30])


def layer_elevations(hypsometry, n_layers: int) -> np.ndarray:
    """Median elevation of ``n_layers`` equal-area bands of the 101 quantiles ``hypsometry`` (airGR)."""
    nmoy, nreste = divmod(100, n_layers)
    z, ncont = np.empty(n_layers), 0
    for i in range(n_layers):
        nn = nmoy + 1 if i < nreste else nmoy
        z[i] = (hypsometry[ncont] if nn == 1 else 0.5 * (hypsometry[ncont] + hypsometry[ncont + 1]) if nn == 2
                else hypsometry[ncont + nn // 2])
        ncont += nn
    return z


class Layers:
    """Elevation layers of one basin: airGR's ``DataAltiExtrapolation_Valery`` set-up.

    Parameters
    ----------
    hypsometry : array_like (101,) or None
        Elevation quantiles 0, 1, ..., 100 % of the basin, m. None: one layer at the station.
    n_layers : int
        Number of equal-area elevation bands. Without a hypsometry there is one: another number
        warns (as airGR, which cannot spread the forcing over layers without one).
    station_elevation : float or None
        Elevation the forcing refers to, m; default the median of ``hypsometry``.
    dates : array_like of datetime64, optional
        The days of the forcing, for the daily lapse rates (else given to ``Model.run``): one per
        day of forcing, daily and increasing (:func:`check_dates`).
    """

    def __init__(self, hypsometry=None, n_layers: int = N_LAYERS, station_elevation=None, dates=None):
        self.dates = dates
        n_layers = int(n_layers)
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1; got {n_layers}")
        if hypsometry is not None and np.all(np.isnan(np.asarray(hypsometry, dtype=float))):
            hypsometry = None
        if hypsometry is None:
            if n_layers != 1:
                # as airGR: without a hypsometry the forcing cannot be spread over layers
                warnings.warn(f"no hypsometry: one layer instead of n_layers={n_layers}", stacklevel=3)
            # one layer at the station: the basin's forcing as it is
            self.hypsometry, self.n_layers, self.single = None, 1, True
            self.station_elevation = np.nan if station_elevation is None else float(station_elevation)
            self.z = np.array([self.station_elevation])
            return
        h = np.asarray(hypsometry, dtype=float)
        if h.shape != (101,) or np.isnan(h).any() or np.any(np.diff(h) < 0):
            raise ValueError(f"hypsometry must hold the 101 elevation quantiles (m, non-decreasing, no NaN); got "
                             f"shape {h.shape}")
        self.hypsometry, self.n_layers = h, n_layers
        self.station_elevation = float(h[50]) if station_elevation is None else float(station_elevation)
        if not np.isfinite(self.station_elevation):
            raise ValueError(f"station_elevation must be finite (m); got {station_elevation}")
        self.z = layer_elevations(h, n_layers)
        self.single = n_layers == 1 and self.station_elevation == h[50]

    def __repr__(self):
        return f"Layers(n_layers={self.n_layers}, z={np.round(self.z, 1).tolist()}, station={self.station_elevation})"

    def forcing(self, prcp, tmean, dates=None):
        """Layer precipitation, temperature and solid fraction ``(n_layers, T)`` each, as airGR builds them."""
        dates = self.dates if dates is None else dates
        d = None if dates is None else check_dates(dates, prcp.shape[0])
        if self.single:
            p, t = prcp[None].copy(), tmean[None].copy()
        else:
            if d is None:
                raise ValueError("CemaNeige on elevation layers needs the dates of the forcing (daily lapse rates of "
                                 "Valery 2010): pass dates= to Model.run")
            month = d.astype("datetime64[M]")
            day = (d - month).astype(int)
            grad = np.asarray(GRAD_TMEAN)[_MONTH_START[month.astype(int) % 12] + day]
            zs, cols = self.station_elevation, []
            for z in self.z:
                cols.append(prcp * np.exp(GRAD_P * (z - zs)) if z <= Z_THRESHOLD else
                            prcp * np.exp(GRAD_P * (Z_THRESHOLD - zs)) if zs <= Z_THRESHOLD else prcp.copy())
            mat = np.column_stack(cols)
            with np.errstate(invalid="ignore", divide="ignore"):
                mat = mat / mat.mean(axis=1)[:, None] * prcp[:, None]
            mat[np.isnan(mat)] = 0.0
            p = np.ascontiguousarray(mat.T)
            t = np.stack([tmean + (zs - z) * np.abs(grad) / 100.0 for z in self.z])
        frac = 1.0 - (t - (-1.0)) / (3.0 - (-1.0))
        frac[t > 3.0] = 0.0
        frac[t < -1.0] = 1.0
        return p, t, frac


def check_dates(dates, n: int) -> np.ndarray:
    """``dates`` as ``datetime64[D]``, checked to be the ``n`` consecutive days of a forcing.

    The layers' temperature takes the lapse rate of each day of the year: dates that are not
    daily and increasing, or not one per day of forcing, would take another day's. Raises
    ``ValueError`` naming the first two dates that do not follow each other by one day.
    """
    d = np.asarray(dates)
    if not np.issubdtype(d.dtype, np.datetime64):
        try:
            d = d.astype("datetime64[ns]")
        except (TypeError, ValueError) as err:
            raise ValueError(f"dates must be dates (datetime64); got {d.dtype}") from err
    d = d.astype("datetime64[D]")
    if d.shape != (n,):
        raise ValueError(f"dates must have one date per day of forcing ({n}); got {d.shape}")
    if np.isnat(d).any():
        raise ValueError(f"dates must not be missing (NaT); the first is at index {int(np.argmax(np.isnat(d)))}")
    step = np.diff(d).astype(np.int64)
    if np.any(step != 1):
        k = int(np.argmax(step != 1))
        raise ValueError(f"dates must be daily and increasing: {d[k]} is followed by {d[k + 1]}")
    return d


def mean_annual_solid_precip(p, frac) -> float:
    """Mean annual solid precipitation (mm/yr) over the layers of the whole forcing (airGR's ``MeanAnSolidPrecip``)."""
    n = p.shape[0]
    total = frac[0] * p[0] / n
    for i in range(1, n):
        total = total + frac[i] * p[i] / n
    return float(np.mean(total)) * 365.25


def check_state(model: str, name: str, value) -> None:
    """Raise ``ValueError`` if a given CemaNeige state is outside its range (levels >= 0 are checked by ``Model``)."""
    if name == "cn_thermal" and np.any(value > 0):
        raise ValueError(f"{model}: initial state 'cn_thermal' must be <= 0 (degC, the pack's thermal state); "
                         f"got {value}")
    if name == "cn_ratio" and np.any(value > 1):
        raise ValueError(f"{model}: initial state 'cn_ratio' must lie in [0, 1] (the pack's melt ratio); got {value}")


@njit(cache=True)
def cemaneige_kernel(p, frac, temp, masp, theta, i0, hyst, sens, x0):
    """Rain plus melt averaged over the layers, and its derivatives with respect to the CemaNeige parameters.

    Parameters
    ----------
    p, frac, temp : ndarray (n_layers, T)
        Layer precipitation (mm/d), solid fraction, mean temperature (degC).
    masp : float
        Mean annual solid precipitation, mm/yr.
    theta : ndarray (d,)
        Parameters; ``ctg, kf`` (``thacc, rsp`` with ``hyst``) from index ``i0``.
    hyst : bool
        Linear hysteresis (Riboust et al. 2019).
    sens : bool
        Carry the derivatives.
    x0 : ndarray (5, n_layers)
        Initial pack, thermal state, melt threshold, local maximum and melt ratio of each layer
        (the last two used with ``hyst`` only); NaN: the default start (empty pack, thermal
        state 0, threshold from ``masp``, local maximum at the threshold, ratio 0). Given values
        are constants: their derivatives are zero.

    Returns
    -------
    w : ndarray (T,)
        Liquid water reaching the runoff model, mm/d.
    dw : ndarray (n_cn, T) or (0, T)
        d w / d (ctg, kf[, thacc, rsp]).
    x_end : ndarray (5, n_layers)
        The states after the last day, laid out as ``x0``.
    """
    if sens:
        if hyst:
            return _cemaneige(p, frac, temp, masp, theta, i0, True, True, x0)
        return _cemaneige(p, frac, temp, masp, theta, i0, False, True, x0)
    if hyst:
        return _cemaneige(p, frac, temp, masp, theta, i0, True, False, x0)
    return _cemaneige(p, frac, temp, masp, theta, i0, False, False, x0)


@njit(cache=True, inline="always")
def _cemaneige(p, frac, temp, masp, theta, i0, hyst, sens, x0):
    """:func:`cemaneige_kernel` for constant ``hyst`` and ``sens``, inlined: the tangent loops have a known length."""
    nl, n = p.shape
    nc = 4 if hyst else 2
    ns = nc if sens else 0
    ctg = theta[i0]
    kf = theta[i0 + 1]
    w = np.zeros(n)
    dw = np.zeros((ns, n))
    x_end = np.full((5, nl), np.nan)
    dg = np.zeros(ns)
    de = np.zeros(ns)
    dr = np.zeros(ns)
    dgl = np.zeros(ns)
    dgt = np.zeros(ns)
    dpot = np.zeros(ns)
    dmelt = np.zeros(ns)
    for lay in range(nl):
        g = 0.0 if np.isnan(x0[0, lay]) else x0[0, lay]
        etg = 0.0 if np.isnan(x0[1, lay]) else x0[1, lay]
        gratio = 0.0 if np.isnan(x0[4, lay]) or not hyst else x0[4, lay]
        dg[:] = 0.0
        de[:] = 0.0
        dr[:] = 0.0
        dgt[:] = 0.0
        if hyst:
            gacc = theta[i0 + 2]
            gthr = theta[i0 + 3] * masp
            if sens:
                dgt[3] = masp
        else:
            gacc = 0.0
            gthr = G_THRESHOLD * masp
        if not np.isnan(x0[2, lay]):
            gthr = x0[2, lay]
            dgt[:] = 0.0
        dgl[:] = dgt
        glm = gthr if hyst else 0.0
        if hyst and not np.isnan(x0[3, lay]):
            glm = x0[3, lay]
            dgl[:] = 0.0
        for k in range(n):
            t = temp[lay, k]
            pliq = (1.0 - frac[lay, k]) * p[lay, k]
            psol = frac[lay, k] * p[lay, k]
            ginit = g
            g = g + psol
            etg_old = etg
            etg = ctg * etg + (1.0 - ctg) * t
            if etg > 0.0:
                etg = 0.0
                de[:] = 0.0
            else:
                for j in range(ns):
                    de[j] = ctg * de[j] + (etg_old - t if j == 0 else 0.0)
            if etg == 0.0 and t > 0.0:
                pot = kf * t
                if pot > g:
                    pot = g
                    dpot[:] = dg
                else:
                    for j in range(ns):
                        dpot[j] = t if j == 1 else 0.0
            else:
                pot = 0.0
                dpot[:] = 0.0
            if hyst:
                if pot > 0.0:
                    if g < glm and gratio == 1.0:
                        glm = g
                        dgl[:] = dg
                    # pot > 0: g > 0; glm is 0 only for a threshold of 0 (no snowfall in the forcing that set it)
                    v = g / glm if glm > 0.0 else 1.0
                    if v < 1.0:
                        gratio = v
                        for j in range(ns):
                            dr[j] = (dg[j] - v * dgl[j]) / glm
                    else:
                        gratio = 1.0
                        dr[:] = 0.0
            elif g < gthr:
                gratio = g / gthr
                for j in range(ns):
                    dr[j] = dg[j] / gthr
            else:
                gratio = 1.0
                dr[:] = 0.0
            fac = (1.0 - MIN_SPEED) * gratio + MIN_SPEED
            melt = fac * pot
            for j in range(ns):
                dmelt[j] = (1.0 - MIN_SPEED) * dr[j] * pot + fac * dpot[j]
                dg[j] -= dmelt[j]
            g = g - melt
            if hyst:
                if g - ginit > 0.0:
                    v = gratio + (psol - melt) / gacc
                    if v < 1.0:
                        gratio = v
                        for j in range(ns):
                            dr[j] += -dmelt[j] / gacc - ((psol - melt) / (gacc * gacc) if j == 2 else 0.0)
                    else:
                        gratio = 1.0
                        dr[:] = 0.0
                    if gratio == 1.0:
                        glm = gthr
                        dgl[:] = dgt
                else:
                    # glm is 0 only with no solid precipitation in the forcing (masp = 0), where the pack stays
                    # empty: its ratio is then 1, as without hysteresis (airGR and GRsuite divide 0 by 0)
                    v = g / glm if glm > 0.0 else 1.0
                    if v < 1.0:
                        gratio = v
                        for j in range(ns):
                            dr[j] = (dg[j] - v * dgl[j]) / glm
                    else:
                        gratio = 1.0
                        dr[:] = 0.0
            w[k] = w[k] + (pliq + melt) / nl
            for j in range(ns):
                dw[j, k] += dmelt[j] / nl
        x_end[0, lay] = g
        x_end[1, lay] = etg
        x_end[2, lay] = gthr
        x_end[3, lay] = glm
        x_end[4, lay] = gratio
    return w, dw, x_end


def layer_inputs(ds, snow) -> list:
    """Per-basin layer inputs of a Dataset: ``[hypsometry(basin, quantile), station_elevation(basin)]`` in m, or ``[]``.

    ``[]`` unless ``snow`` (a model's snow option) is CemaNeige. The station elevation is
    ``station_elevation``, else ``elev_mean``, else the median of the hypsometry. Without a
    ``hypsometry`` variable (e.g. the sample, CAMELS, Caravan: elevation statistics only) CemaNeige
    runs on one layer with the basin's forcing as it is.

    The elevations' units are read at this boundary (:func:`basinsx.units.to_canonical`): another
    length (``ft``, ``km``, ...) is converted to m, with a ``units_note`` in the attrs of the input
    returned; no ``units`` attribute means m; anything else raises a
    :class:`~basinsx.units.UnitsError` naming the variable. Dask-backed data stay lazy.
    """
    from ..units import to_canonical

    if snow not in PARAMS or "hypsometry" not in ds:
        return []
    h = ds["hypsometry"]
    if "quantile" not in h.dims or h.sizes["quantile"] != 101:
        raise ValueError(f"hypsometry must have a 'quantile' dim of 101 elevation quantiles; got {dict(h.sizes)}")
    h = to_canonical(h, "hypsometry", expected="m")[0]
    name = next((v for v in ("station_elevation", "elev_mean") if v in ds), None)
    if name is None:  # the median of the hypsometry, in m already (its conversion is said once, on the hypsometry)
        z = h.isel(quantile=50).assign_attrs({k: v for k, v in h.attrs.items() if k != "units_note"})
    else:
        z = to_canonical(ds[name], name, expected="m")[0]
    return [h.reset_coords(drop=True), z.reset_coords(drop=True)]


def layer_setup(forcing, layers: Layers, dates) -> tuple:
    """What CemaNeige's runs on one forcing share: ``(p, frac, temp, masp)``, layer inputs and mean solid precipitation.

    ``forcing`` rows are ``prcp, pet, tmean``; the result does not depend on the parameters (a
    calibration builds it once per basin).
    """
    p, t, frac = layers.forcing(forcing[0], forcing[2], dates)
    return p, frac, t, mean_annual_solid_precip(p, frac)


def water_input(forcing, theta, i0: int, hyst: bool, layers: Layers, dates, sens: bool, setup=None,
                x0=None) -> tuple[np.ndarray, np.ndarray]:
    """Forcing rows ``[w, pet, dw/dtheta_cn...]`` for a runoff kernel behind CemaNeige (snow code 2), final states.

    ``forcing`` rows are ``prcp, pet, tmean`` (validated, PET >= 0); ``setup`` is its
    :func:`layer_setup` where already built (then ``layers`` and ``dates`` are not read). ``x0``
    is the flat vector of the option's :data:`STATES`, one entry per layer each, NaN for the
    default start; the final states come back laid out as ``x0``.
    """
    p, frac, t, masp = layer_setup(forcing, layers, dates) if setup is None else setup
    k = len(STATES["cemaneige_hyst" if hyst else "cemaneige"])
    start = np.full((5, p.shape[0]), np.nan)
    if x0 is not None:
        start[:k] = np.reshape(x0, (k, p.shape[0]))
    w, dw, x_end = cemaneige_kernel(p, frac, t, masp, theta, i0, hyst, sens, start)
    return np.vstack((w[None], forcing[1:2], dw)), x_end[:k].ravel()


@njit(cache=True)
def cemaneige_many(p, frac, temp, masp, thetas, i0, hyst):
    """The water input ``w (m, T)`` of each parameter set ``thetas (m, d)`` (plain runs, a calibration's screening)."""
    w = np.empty((thetas.shape[0], p.shape[1]))
    start = np.full((5, p.shape[0]), np.nan)
    for b in range(thetas.shape[0]):
        w[b] = cemaneige_kernel(p, frac, temp, masp, thetas[b], i0, hyst, False, start)[0]
    return w
