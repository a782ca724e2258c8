"""Plots where people look rather than read (``ds.hydro.plot.*``); matplotlib is an optional extra."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .inputs import on_basins
from .metrics import common_units
from .units import canonical_units, to_canonical


def _axes(ax, figsize=(8, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _one_basin(da: xr.DataArray, basin) -> xr.DataArray:
    if "basin" not in da.dims:
        return da
    if basin is None:
        if da.sizes["basin"] != 1:
            raise ValueError(f"{da.name or 'data'} covers {da.sizes['basin']} basins: choose one with basin=")
        return da.isel(basin=0)
    return da.sel(basin=str(basin))


def _by_label(da: xr.DataArray | None, obs: xr.DataArray, what: str) -> xr.DataArray | None:
    """``da`` on the basins of ``obs`` by label; a basin it lacks is an error naming its basins and the missing ones."""
    if da is None:
        return None
    has = np.atleast_1d(da["basin"].values).tolist() if "basin" in da.coords else []
    return on_basins(da, obs, f"{what} (over basins {has[:10]})")


def _in_common_units(obs: xr.DataArray, **flows: xr.DataArray | None) -> tuple[list, str]:
    """``obs`` and the other ``flows`` in one unit, and which, as :func:`basinsx.metrics.metrics` pairs them: the
    observed flow's, or mm d-1 where one has no ``units`` (a discharge is converted with the basin ``area``)."""
    given = {"obs": obs, **{k: v for k, v in flows.items() if v is not None}}
    units = common_units(*given.values()) or canonical_units("streamflow")
    area = next((da.coords["area"] for da in given.values() if "area" in da.coords), None)
    converted = {k: to_canonical(da, k, expected=units, area=area)[0] for k, da in given.items()}
    return [converted.get(k) for k in ("obs", *flows)], units


def _on_days(sim: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """``sim`` on the days of ``obs`` by label; days it lacks are an error naming them."""
    if "time" not in sim.indexes or "time" not in obs.indexes:
        return sim
    missing = obs.indexes["time"].difference(sim.indexes["time"])
    if missing.size:
        first, last = np.datetime_as_string(missing.values[[0, -1]], unit="D")
        raise ValueError(f"sim has no values on {missing.size} of the observed days ({first} to {last}): select "
                         "the days both cover")
    return sim.sel(time=obs["time"])


def hydrograph(obs: xr.DataArray, sim: xr.DataArray | None = None, *, basin=None, time=None, prcp=None, ax=None,
               label: str = "simulated", band: xr.DataArray | None = None):
    """Observed (and simulated, as ``label``) flow of one basin over ``time`` (a slice), precipitation from the top.

    ``band``: flow quantiles with a ``quantile`` dim (e.g. ``predictive(...)["q_pred"]``), the
    outermost two shaded. ``sim`` and ``band`` are taken by ``obs``'s basin label and drawn in its units (see
    :func:`basinsx.metrics.metrics`), ``prcp`` in mm d-1; units that cannot be converted raise
    :class:`basinsx.units.UnitsError`. Returns the matplotlib Axes.
    """
    ax = _axes(ax, (10, 4))
    obs = _one_basin(obs, basin)
    sim, band = (None if da is None else _one_basin(_by_label(da, obs, what), basin)
                 for da, what in ((sim, "sim"), (band, "band")))
    (obs, sim, band), units = _in_common_units(obs, sim=sim, band=band)
    if band is not None:
        band = band.sel(time=time) if time is not None else band
        lo, hi = band.isel(quantile=0), band.isel(quantile=-1)
        q = band["quantile"].values
        ax.fill_between(band["time"].values, np.asarray(lo), np.asarray(hi), color="tab:blue", alpha=0.25, lw=0,
                        label=f"{100 * (q[-1] - q[0]):g} % band")
    series = [("observed", obs, {"color": "k", "lw": 1.0})]
    if sim is not None:
        series.append((label, sim, {"color": "tab:blue", "lw": 1.0}))
    for label, da, style in series:
        da = da.sel(time=time) if time is not None else da
        ax.plot(da["time"].values, np.asarray(da), label=label, **style)
    ax.set_ylabel(f"streamflow ({units})")
    if prcp is not None:
        p, _ = to_canonical(_one_basin(_by_label(prcp, obs, "prcp"), basin), "prcp")
        p = p.sel(time=time) if time is not None else p
        top = ax.twinx()
        top.bar(p["time"].values, np.asarray(p), width=1.0, color="tab:cyan", alpha=0.6)
        top.set_ylim(top=float(np.nanmax(np.asarray(p))) * 3 if p.size else 1)
        top.invert_yaxis()
        top.set_ylabel("precipitation (mm d-1)")
        ax.set_zorder(top.get_zorder() + 1)  # flow lines and legend above the bars
        ax.patch.set_visible(False)
    # .values, not .item(): a Dataset chunked by the user holds its coordinates as dask arrays
    title = str(obs.coords["gauge_name"].values) if "gauge_name" in obs.coords and obs.coords["gauge_name"].ndim == 0 \
        else ""
    ax.set_title(f"{obs['basin'].values if 'basin' in obs.coords else ''} {title}".strip())
    ax.legend(loc="upper left")
    return ax


def _period(da: xr.DataArray) -> str:
    """First and last day of ``da``'s time coordinate, e.g. ``'1996-01-01 to 2014-12-31'``."""
    if "time" not in da.coords or da.sizes.get("time", 0) == 0:
        return ""
    days = np.datetime_as_string(da["time"].values[[0, -1]], unit="D")
    return f"{days[0]} to {days[1]}"


def _exceedance(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Positive flows in falling order at their exceedance probabilities (%) among all valid days, and the
    percentage of valid days with zero flow (a log axis cannot show those)."""
    q = np.sort(q[np.isfinite(q)])[::-1]
    rank = 100 * np.arange(1, q.size + 1) / (q.size + 1)
    positive = q > 0
    return rank[positive], q[positive], 100 * (1 - positive.mean()) if q.size else 0.0


def flow_duration_curve(flow: xr.DataArray, sim: xr.DataArray | None = None, *, basin=None, ax=None, label=None,
                        sim_label: str = "simulated"):
    """Flow-duration curves (flow on a log axis against exceedance probability) of one or all basins.

    Parameters
    ----------
    flow : xarray.DataArray
        Observed flow, ``(basin, time)`` or ``(time,)``.
    sim : xarray.DataArray, optional
        Simulated flow: drawn dashed, in its basin's colour, on ``flow``'s basins and days (by label; a basin
        or day it lacks is an error naming them) and in its units (converted as :func:`basinsx.metrics.metrics`
        does, or :class:`basinsx.units.UnitsError`). Days without observed flow are left out of the
        simulated curve too (but for a basin without any), so that both curves cover the same days.
    basin : str or list of str, optional
        Basins to draw (default all).
    ax : matplotlib.axes.Axes, optional
    label : str, optional
        Legend entry of a ``flow`` without a ``basin`` dim (default its name).
    sim_label : str
        What ``sim`` is, for the legend.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    Exceedance probabilities are Weibull plotting positions among all valid days. A log axis
    cannot show zero flow, so each curve runs through the positive flows and ends where flow
    falls to zero; the legend gives the share of zero-flow days of each basin, and marks a
    series without a valid day "no ... data". The flow axis
    starts a decade below the lowest positive observed flow: simulated recessions that only
    tend to zero (1e-18 mm/d) leave the axes at the bottom instead of squeezing every curve.
    The title names the period (first and last day of ``flow``).
    """
    from matplotlib.lines import Line2D

    ax = _axes(ax, (6, 4))
    if basin is not None:
        basins = [str(basin)] if np.ndim(basin) == 0 else [str(b) for b in basin]
        flow = flow.sel(basin=basins)
    if sim is not None:
        sim = _by_label(sim, flow, "sim")
        sim = _on_days(sim if "basin" in flow.dims else _one_basin(sim, None), flow)
        # both curves over the same days: a gap in the record would otherwise shift only the observed one
        sim = sim.where(flow.notnull() | flow.isnull().all("time"))
    (flow, sim), units = _in_common_units(flow, sim=sim)
    names = [str(b) for b in flow["basin"].values] if "basin" in flow.dims else [label or str(flow.name)]
    series = [("observed", flow, "-")] + ([] if sim is None else [(sim_label, sim, "--")])
    handles, lowest = [], np.inf
    for k, name in enumerate(names):
        colour, zeros, empty = f"C{k % 10}", [], []
        for what, da, style in series:
            q = np.asarray(da.isel(basin=k) if "basin" in da.dims else da, dtype=float)
            x, y, zero = _exceedance(q)
            if not np.isfinite(q).any():  # its empty curve would pass unnoticed
                empty.append(what)
            ax.plot(x, y, style, color=colour, lw=1.1, label=f"{name} {what}")
            if da is flow and y.size:
                lowest = min(lowest, y[-1])
            if zero > 0:
                zeros.append(f"{what} {zero:.0f} %")
        text = f"{name}, days with zero flow: {', '.join(zeros)}" if zeros else name
        text += f" (no {' or '.join(empty)} data)" if empty else ""
        handles.append(Line2D([], [], color=colour, label=text))
    if sim is not None:
        handles += [Line2D([], [], color="k", ls=style, label=what) for what, _, style in series]
    ax.set_yscale("log")
    if np.isfinite(lowest):
        ax.set_ylim(bottom=lowest / 10)
    period = _period(flow)
    ax.set(xlabel="exceedance probability (%)", ylabel=f"flow ({units})", xlim=(0, 100),
           title=f"flow-duration curve{'s' if len(names) > 1 else ''}" + (f", {period}" if period else ""))
    if len(names) <= 12:
        ax.legend(handles=handles, fontsize=7)
    return ax


def basin_map(values: xr.DataArray, *, lon=None, lat=None, ax=None, cmap="viridis", label=None):
    """Values over ``basin`` at the gauge locations (``gauge_lon``/``gauge_lat`` coordinates, or ``lon``/``lat``
    taken by basin label); basins without a value are hollow markers, "no data" in the legend."""
    ax = _axes(ax, (7, 4.5))
    x, y = (np.asarray(values[f"gauge_{n}"] if v is None else _by_label(v, values, n) if isinstance(v, xr.DataArray)
                       else v, dtype=float) for n, v in (("lon", lon), ("lat", lat)))
    c = np.asarray(values, dtype=float)
    missing = ~np.isfinite(c)
    points = ax.scatter(x[~missing], y[~missing], c=c[~missing], cmap=cmap, s=40, edgecolor="k", lw=0.3)
    if missing.any():  # a NaN colour is transparent: the basin would vanish
        ax.scatter(x[missing], y[missing], s=40, facecolors="none", edgecolors="k", lw=1, label="no data")
        ax.legend()
    ax.figure.colorbar(points, ax=ax, label=label or f"{values.name or ''} ({values.attrs.get('units', '')})")
    ax.set(xlabel="longitude (deg E)", ylabel="latitude (deg N)", aspect="equal")
    return ax


def sensitivity_heatmap(jacobian: xr.DataArray, *, basin=None, time=None, normalise=True, ax=None):
    """Heat map of d q_t / d theta (param x time) for one basin; rows scaled to [-1, 1] with ``normalise``.

    The colour bar says what the colours are (scaled rows, or the Jacobian's ``units``), the
    rows carry the ``param_units`` coordinate where there is one, and the title names the basin.
    """
    ax = _axes(ax, (10, 3.5))
    jac = _one_basin(jacobian, basin)
    jac = jac.sel(time=time) if time is not None else jac
    values = np.asarray(jac.transpose("param", "time"), dtype=float)
    if normalise:
        scale = np.nanmax(np.abs(values), axis=1, keepdims=True)
        values = values / np.where(scale > 0, scale, 1)
    vmax = float(np.nanmax(np.abs(values))) or 1.0
    mesh = ax.pcolormesh(jac["time"].values, np.arange(values.shape[0]), values, shading="nearest",
                         cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    units = jac["param_units"].values if "param_units" in jac.coords else [None] * values.shape[0]
    ax.set_yticks(np.arange(values.shape[0]),
                  [f"{p} ({u})" if u else str(p) for p, u in zip(jac["param"].values, units)])
    label = ("∂q/∂θ, each row divided by its largest |value|" if normalise
             else f"∂q/∂θ ({jac.attrs.get('units', 'flow units per parameter unit')})")
    ax.figure.colorbar(mesh, ax=ax, label=label)
    where = f", basin {jac['basin'].item()}" if "basin" in jac.coords and jac["basin"].ndim == 0 else ""
    ax.set_title(f"sensitivity of daily flow to each parameter{where}")
    return ax


def embedding_projection(embedding: xr.DataArray, color: xr.DataArray | None = None, *, dim="embedding_dim", ax=None):
    """Basins in the plane of the first two principal components of their embeddings.

    Other dims besides ``basin`` and ``dim`` (e.g. ``seed`` of a seed ensemble, whose
    members' embeddings are not aligned) are concatenated into the features.
    """
    ax = _axes(ax, (6, 5))
    if dim not in embedding.dims or "basin" not in embedding.dims:
        raise ValueError(f"embedding needs dims 'basin' and {dim!r}, got {embedding.dims}")
    features = [d for d in embedding.dims if d != "basin"]
    x = np.asarray(embedding.stack(_feature=features).transpose("basin", "_feature"), dtype=float)
    x = x - x.mean(0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    c = None if color is None else np.asarray(color.sel(basin=embedding["basin"]))
    points = ax.scatter(xy[:, 0], xy[:, 1], c=c, cmap=None if c is None else "viridis", s=30, edgecolor="k", lw=0.3)
    if color is not None:
        ax.figure.colorbar(points, ax=ax, label=str(color.name))
    share = s[:2] ** 2 / (s**2).sum()
    ax.set(xlabel=f"PC1 ({100 * share[0]:.0f} %)", ylabel=f"PC2 ({100 * share[1]:.0f} %)", title="basin embeddings")
    return ax


def _paired(predicted, truth):
    """Two DataArrays on the same labels (in ``predicted``'s dim order); labels of a shared dim that only one has are
    an error naming them. Anything else is paired by position."""
    if not (isinstance(predicted, xr.DataArray) and isinstance(truth, xr.DataArray)):
        return predicted, truth
    for d in set(predicted.indexes) & set(truth.indexes):
        p, t = predicted.indexes[d], truth.indexes[d]
        only = [f"only in {who} {list(a.difference(b)[:10])}" for who, a, b in (("predicted", p, t), ("truth", t, p))
                if a.difference(b).size]
        if only:
            raise ValueError(f"predicted and truth have different {d!r} labels: {', '.join(only)}")
    predicted, truth = xr.broadcast(*xr.align(predicted, truth, join="inner"))
    return predicted, truth.transpose(*predicted.dims)


def parity(predicted, truth, *, ax=None, log=False, label=None):
    """Predicted against true values with the 1:1 line, R^2 in the title; DataArrays are paired by label."""
    ax = _axes(ax, (4.5, 4.5))
    predicted, truth = _paired(predicted, truth)
    p, t = np.ravel(np.asarray(predicted, dtype=float)), np.ravel(np.asarray(truth, dtype=float))
    ok = np.isfinite(p) & np.isfinite(t)
    p, t = p[ok], t[ok]
    ax.scatter(t, p, s=12, alpha=0.7)
    lo, hi = min(t.min(), p.min()), max(t.max(), p.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    if log:
        ax.set(xscale="log", yscale="log")
    r2 = 1 - ((p - t) ** 2).sum() / ((t - t.mean()) ** 2).sum()
    ax.set(xlabel=f"true {label or ''}".strip(), ylabel=f"predicted {label or ''}".strip(), title=f"R² = {r2:.3f}")
    return ax


def pareto_front(front: xr.Dataset, *, basin=None, ax=None):
    """The front of :func:`basinsx.calibration.pareto` for one basin: loss against loss, dominated points hollow."""
    ax = _axes(ax, (5, 4.5))
    front = front.sel(basin=str(basin)) if basin is not None and "basin" in front.dims else front
    if "basin" in front.dims:
        if front.sizes["basin"] != 1:
            raise ValueError(f"the front covers {front.sizes['basin']} basins: choose one with basin=")
        front = front.isel(basin=0)
    x, y = (np.asarray(front["loss"].isel(objective=k)) for k in (0, 1))
    dominated = np.asarray(front["dominated"])
    ax.plot(x, y, color="tab:blue", lw=1.0)
    ax.scatter(x[~dominated], y[~dominated], color="tab:blue", zorder=3, label="non-dominated")
    if dominated.any():
        ax.scatter(x[dominated], y[dominated], facecolors="none", edgecolors="tab:blue", zorder=3, label="dominated")
    names = [str(n) for n in front["objective"].values]
    ax.set_xlabel(f"{names[0]} loss")
    ax.set_ylabel(f"{names[1]} loss")
    ax.set_title(f"{front['basin'].item() if 'basin' in front.coords else ''} Pareto front".strip())
    ax.legend()
    return ax


class HydroPlot:
    """``ds.hydro.plot``: the plotting functions with the Dataset's variables as defaults."""

    def __init__(self, obj):
        self._obj = obj

    def _flow(self, name):
        return self._obj[name] if isinstance(self._obj, xr.Dataset) else self._obj

    def hydrograph(self, sim=None, obs="streamflow", **kwargs):
        if isinstance(self._obj, xr.Dataset) and "prcp" in self._obj and "prcp" not in kwargs:
            kwargs["prcp"] = self._obj["prcp"]
        return hydrograph(self._flow(obs), sim, **kwargs)

    def fdc(self, sim=None, flow="streamflow", **kwargs):
        return flow_duration_curve(self._flow(flow), sim, **kwargs)

    def map(self, var, **kwargs):
        return basin_map(self._obj[var] if isinstance(var, str) else var, **kwargs)

    def sensitivity(self, **kwargs):
        return sensitivity_heatmap(self._obj, **kwargs)

    def embedding(self, color=None, **kwargs):
        emb = self._obj["embedding"] if isinstance(self._obj, xr.Dataset) else self._obj
        if isinstance(color, str):
            color = self._obj[color]
        return embedding_projection(emb, color, **kwargs)

    def parity(self, predicted, truth, **kwargs):
        return parity(predicted, truth, **kwargs)

    def pareto(self, **kwargs):
        return pareto_front(self._obj, **kwargs)
