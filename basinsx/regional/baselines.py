"""Classical regionalisation baselines: donor basins and regression of calibrated parameters on attributes.

Both take the calibrated parameters of gauged basins (``params(basin, param)``, e.g. the
``params`` of :func:`basinsx.calibration.calibrate`) and the static attributes of gauged and
target basins, and return parameters ``(basin, param)`` for the targets. Attributes are
z-scored with the gauged basins' mean and standard deviation; a missing value is the mean.
Small in-memory arrays (one row per basin): these functions compute their inputs.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import models
from ..calibration.optimize import from_search, log_scaled, to_search
from ..models.base import snow_attr

__all__ = ["donor_params", "regression_params"]


def _zscored(gauged: xr.Dataset, target: xr.Dataset, attributes) -> tuple[np.ndarray, np.ndarray]:
    from ..embedding.data import attribute_units, static_features

    a = np.asarray(static_features(gauged, attributes).values)
    b = np.asarray(static_features(target, attributes, attribute_units(gauged, attributes)).values)
    mean, std = np.nanmean(a, axis=0), np.nanstd(a, axis=0)
    empty = [n for n, v in zip(attributes, mean) if not np.isfinite(v)]
    if empty:
        raise ValueError(f"attributes {empty} are NaN for every gauged basin")
    std = np.where(std > 0, std, 1.0)
    return (np.nan_to_num((a - mean) / std), np.nan_to_num((b - mean) / std))


def _calibrated(params, m: models.Model, gauged: xr.Dataset) -> tuple[models.Model, np.ndarray]:
    """``m`` and the ``(basin, param)`` values of calibrated parameters on the ``gauged`` basins, by label
    (a calibration result works); exactly the model's parameters."""
    from ..simulation import params_on_basins

    theta = params_on_basins(params, m, gauged)
    return m, np.asarray(theta.transpose("basin", "param").values, dtype=np.float64)


def _result(values, target: xr.Dataset, m: models.Model, snow, how: str) -> xr.DataArray:
    out = xr.DataArray(values, dims=("basin", "param"),
                       coords={"basin": target["basin"].values, "param": list(m.params),
                               "param_units": ("param", [m.units[p] for p in m.params])})
    out.attrs = {"long_name": f"{m.name} parameters by {how} (units: param_units)", "model": m.name,
                 "snow": snow_attr(snow)}
    return out.rename("params")


def _to_search(theta, m, log_scale=True):
    lo, hi = (np.array([m.bounds[p][i] for p in m.params]) for i in (0, 1))
    log = log_scaled(m, log_scale)
    return to_search(theta, log), log, lo, hi


def donor_params(gauged: xr.Dataset, params, target: xr.Dataset, attributes, k: int = 1, *, model="gr4j",
                 snow: bool = False) -> xr.DataArray:
    """Parameters of the ``k`` nearest gauged basins in standardised attribute space (their mean for k > 1).

    Parameters
    ----------
    gauged, target : xr.Dataset
        Static ``attributes (basin,)`` of the donor pool and of the basins to predict.
    params : xr.DataArray or xr.Dataset
        Calibrated ``params(basin, param)`` of the ``gauged`` basins; basins with NaN
        parameters (failed calibrations) are not donors.
    attributes : list of str
        Attributes of the Euclidean distance, each z-scored over the gauged basins.
    k : int
        Number of donors; their parameters are averaged (on a log scale for ``x1``, ``x3``).
    model, snow
        The model the parameters belong to.

    Returns
    -------
    xr.DataArray
        ``params(basin, param)`` of the target basins, attrs ``model`` and ``snow``.
    """
    m, theta = _calibrated(params, models.get(model, snow=snow), gauged)
    ok = np.all(np.isfinite(theta), axis=1)
    if int(k) < 1 or ok.sum() < int(k):
        raise ValueError(f"k must lie in [1, {int(ok.sum())}] (gauged basins with parameters); got {k}")
    a, b = _zscored(gauged.isel(basin=np.flatnonzero(ok)), target, list(attributes))
    search, log, _, _ = _to_search(theta[ok], m)
    dist = np.linalg.norm(b[:, None, :] - a[None, :, :], axis=-1)
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :int(k)]
    mean = search[nearest].mean(axis=1)
    return _result(from_search(mean, log), target, m, snow, f"donor basins (k = {int(k)})")


def regression_params(gauged: xr.Dataset, params, target: xr.Dataset, attributes, *, model="gr4j",
                      snow: bool = False) -> xr.DataArray:
    """Ridge regression of each calibrated parameter on the z-scored attributes, clipped to the bounds.

    Parameters are regressed in the calibration's search space (log scale for ``x1``, ``x3``);
    each has its own penalty, chosen by leave-one-out error
    (:func:`basinsx.embedding.readout.fit_ridge`). Arguments as :func:`donor_params`.
    """
    from ..embedding.readout import fit_ridge

    m, theta = _calibrated(params, models.get(model, snow=snow), gauged)
    a, b = _zscored(gauged, target, list(attributes))
    search, log, lo, hi = _to_search(theta, m)
    ridge = fit_ridge(a, search)
    pred = b @ ridge["coef"] + ridge["intercept"]
    pred = np.clip(from_search(pred, log), lo, hi)
    return _result(pred, target, m, snow, "regression on attributes")
