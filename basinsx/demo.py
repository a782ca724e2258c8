"""``basinsx demo``: calibrate a model on every basin of the bundled sample and show the result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .io.store import write_file

CALIBRATION = slice("1982", "1995")
VALIDATION = slice("1996", "2014")
SHOWN = slice("2004-10-01", "2006-09-30")  # two water years of the validation period


def summary(ds: xr.Dataset) -> pd.DataFrame:
    """Area, mean precipitation, PET, temperature and flow, and the runoff ratio, per basin; units in the headers."""
    mean = ds[["prcp", "pet", "tmean", "streamflow"]].mean("time").compute()
    return pd.DataFrame({
        "name": [str(n)[:34] for n in ds.gauge_name.values],
        f"area ({ds.area.attrs.get('units', 'km2')})": ds.area.values.round(0),
        **{f"{head} ({ds[var].attrs['units']})": mean[var].values.astype(float).round(digits)
           for head, var, digits in (("P", "prcp", 2), ("PET", "pet", 2), ("T", "tmean", 1), ("Q", "streamflow", 2))},
        "Q/P (-)": (mean.streamflow / mean.prcp).values.round(2),
    }, index=pd.Index(ds.basin.values, name="basin"))


def results_table(result: xr.Dataset) -> pd.DataFrame:
    """KGE over both periods and the calibrated parameters per basin; units in the headers, ``*`` on a bound."""
    values = result.params.to_pandas().round(3)
    marks = result.at_bound.to_pandas().replace({True: "*", False: ""})  # a parameter on a bound of its range
    table = values.astype(str) + marks
    table.columns = [f"{p} ({u})" for p, u in zip(result.param.values, result.param_units.values)]
    table.insert(0, f"KGE {VALIDATION.start}-{VALIDATION.stop} (-)", result.kge_validation.values.round(3))
    table.insert(0, f"KGE {CALIBRATION.start}-{CALIBRATION.stop} (-)", result.kge.values.round(3))
    return table


#: What the demo writes into its folder, and the mark each file carries (a netCDF attribute, PNG metadata).
OUTPUTS = ("calibration.nc", "demo.png")
MARK = "basinsx demo"


def _written_by_demo(path: Path) -> bool:
    try:
        if path.suffix == ".nc":
            with xr.open_dataset(path) as ds:
                return ds.attrs.get("created_by") == MARK
        from PIL import Image

        with Image.open(path) as image:
            return image.text.get("Software") == MARK
    except Exception:  # not a file the demo wrote (or not readable as one)
        return False


def check_outputs(out: Path) -> None:
    """Refuse a folder holding a file of :data:`OUTPUTS` that the demo did not write (never replaced)."""
    for name in OUTPUTS:
        path = out / name
        if path.exists() and not _written_by_demo(path):
            raise FileExistsError(f"{path} exists and was not written by basinsx demo; choose another --out "
                                  "(the demo replaces only its own outputs)")


def run(out: Path, model: str = "gr4j", n_starts: int = 4, snow: bool = True) -> xr.Dataset:
    """Calibrate ``model`` on KGE over 1982-1995 (1981 spin-up), validate on 1996-2014, write a figure.

    PET is Oudin's formula from the sample's temperature: the ERA5-Land PET that
    Caravan ships is several times observation-based PET in most basins. Without
    matplotlib (the ``plot`` extra) the demo prints its tables and writes the results
    but no figure. Files in ``out`` are replaced only where an earlier demo wrote them
    (:func:`check_outputs`), each atomically.
    """
    from .io import open_dataset
    from .progress import compute

    out.mkdir(parents=True, exist_ok=True)
    check_outputs(out)
    ds = open_dataset("sample")
    ds = ds.assign(pet=ds.hydro.pet("oudin"))
    print(f"basinsx sample: {ds.sizes['basin']} basins, {str(ds.time.values[0])[:10]} .. "
          f"{str(ds.time.values[-1])[:10]}  ({ds.attrs['license']})")
    print(summary(ds).to_string(), end="\n\n")

    label = f"{model}{' + snow' if snow else ''}"
    print(f"calibrating {label} on KGE, {CALIBRATION.start}-{CALIBRATION.stop}, {n_starts} starts per basin")
    (result,) = compute(ds.hydro.calibrate(model=model, loss="kge", period=CALIBRATION, warmup=365,
                                           n_starts=n_starts, seed=0, snow=snow), desc="calibrating")
    sim = ds.hydro.simulate(result.params, model=model, snow=snow).compute()
    obs = ds.streamflow.compute()
    validation = sim.hydro.metrics(sim.sel(time=VALIDATION), obs.sel(time=VALIDATION))
    result["kge_validation"] = validation.kge

    print(results_table(result).to_string())
    if result.at_bound.any():
        print("* the parameter ended on a bound of its range: the optimum may lie outside it")
    print(f"\nmedian KGE: calibration {np.nanmedian(result.kge):.3f}, validation {np.nanmedian(validation.kge):.3f}")
    write_file(out / "calibration.nc", result.assign_attrs(created_by=MARK).to_netcdf)
    try:
        figure = _figure(obs, sim, ds.prcp, result, label)
    except ModuleNotFoundError as err:
        if err.name != "matplotlib":
            raise
        print(f"wrote {out / 'calibration.nc'}; no figure without matplotlib: pip install 'basinsx[plot]' for it")
        return result
    write_file(out / "demo.png", lambda tmp: figure.savefig(tmp, format="png", dpi=110, metadata={"Software": MARK}))
    print(f"wrote {out / 'calibration.nc'} and {out / 'demo.png'}")
    return result


def typical_basin(kge: xr.DataArray) -> str:
    """The basin whose KGE is nearest the median over basins: the figure shows a typical basin, not the best."""
    values = np.asarray(kge, dtype=float)
    gap = np.abs(values - np.nanmedian(values))
    return str(kge["basin"].values[np.nanargmin(gap)])


def _figure(obs: xr.DataArray, sim: xr.DataArray, prcp: xr.DataArray, result: xr.Dataset, label: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot import flow_duration_curve, hydrograph

    shown = typical_basin(result.kge_validation)
    fig, axes = plt.subplot_mosaic([["hydrograph", "hydrograph"], ["fdc", "kge"]], figsize=(14, 8.5),
                                   width_ratios=[1.5, 1], layout="constrained")
    ax = hydrograph(obs, sim, label=label, basin=shown, time=SHOWN, prcp=prcp, ax=axes["hydrograph"])
    kge = float(result.kge_validation.sel(basin=shown))
    ax.set_title(f"{ax.get_title()}, water years 2005-2006\nshown because its validation KGE ({kge:.2f}) is the "
                 f"median of the {result.sizes['basin']} basins")
    ax = flow_duration_curve(obs.sel(time=VALIDATION), sim.sel(time=VALIDATION), sim_label=label, ax=axes["fdc"])
    ax.legend(handles=ax.get_legend().legend_handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax = axes["kge"]
    x = np.arange(result.sizes["basin"])
    ax.bar(x - 0.2, result.kge, 0.4, label=f"calibration {CALIBRATION.start}-{CALIBRATION.stop}")
    ax.bar(x + 0.2, result.kge_validation, 0.4, label=f"validation {VALIDATION.start}-{VALIDATION.stop}")
    ax.set_xticks(x, result.basin.values, rotation=70, fontsize=7)
    ax.get_xticklabels()[list(result.basin.values).index(shown)].set_fontweight("bold")
    ax.set_ylabel("KGE (-)")
    ax.set_title(f"{label}: KGE per basin (the hydrograph's in bold)", pad=24)  # the legend sits in the pad
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, frameon=False)
    return fig
