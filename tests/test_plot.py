import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr

import basinsx


@pytest.fixture(scope="module")
def ds():
    return basinsx.open_dataset("sample", chunks=None).sel(time=slice("2000", "2001"))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def rendered(ax):
    ax.figure.canvas.draw()
    width, height = ax.figure.canvas.get_width_height()
    assert width > 100 and height > 100
    return ax


def test_hydrograph_and_fdc(ds):
    ax = rendered(ds.hydro.plot.hydrograph(ds.streamflow * 0.9, basin="01031500", time=slice("2000-03", "2000-06")))
    assert [line.get_label() for line in ax.get_lines()] == ["observed", "simulated"]
    assert ax.get_lines()[0].get_xdata().size == 122
    ax = rendered(ds.hydro.plot.hydrograph(basin="01031500", time=slice("2000-03", "2000-06")))
    bars = next(other for other in ax.figure.axes if other is not ax)
    assert bars.get_ylabel() == "precipitation (mm d-1)" and bars.yaxis_inverted()
    assert ax.get_zorder() > bars.get_zorder() and not ax.patch.get_visible()  # flow and legend above the bars
    ax = rendered(ds.hydro.plot.fdc())
    assert len(ax.get_lines()) == ds.sizes["basin"]
    y = ax.get_lines()[0].get_ydata()
    assert (np.diff(y) <= 0).all()
    with pytest.raises(ValueError, match="choose one with basin="):
        ds.hydro.plot.hydrograph()


def test_hydrograph_of_a_dataset_chunked_by_the_user(ds):
    # Dataset.chunk makes gauge_name a dask array: before, NotImplementedError ('item' is not a dask method)
    ax = rendered(ds.chunk({"basin": 2}).hydro.plot.hydrograph(basin="01031500"))
    assert ax.get_title() == f"01031500 {ds.gauge_name.sel(basin='01031500').item()}"


def test_fdc_observed_and_simulated_with_zero_flows(ds):
    dry, wet = "08086290", "12010000"  # Big Sandy Creek, TX runs dry most days; Naselle River, WA never
    obs = ds.streamflow
    sim = (obs * 0.8 + 0.01).assign_attrs(obs.attrs)
    # a simulated recession that only tends to zero must not set the flow axis
    sim.loc[{"basin": dry}] = sim.sel(basin=dry).where(obs.sel(basin=dry) > 0, 1e-18)
    ax = rendered(ds.hydro.plot.fdc(sim, basin=[dry, wet], sim_label="GR4J"))
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == [f"{dry} observed", f"{dry} GR4J", f"{wet} observed", f"{wet} GR4J"]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "flow (mm d-1)"
    assert ax.get_title() == "flow-duration curves, 2000-01-01 to 2001-12-31"
    q = obs.sel(basin=dry).values
    valid, positive = np.isfinite(q).sum(), (q > 0).sum()
    assert 0 < positive < valid / 2  # the test needs zero flows
    drawn = lines[f"{dry} observed"]
    assert drawn.get_xdata().size == positive and (drawn.get_ydata() > 0).all()  # zeros are left off the log axis
    assert np.isclose(drawn.get_xdata()[-1], 100 * positive / (valid + 1))  # the curve ends where flow stops
    assert (np.diff(drawn.get_ydata()) <= 0).all()
    assert np.isclose(ax.get_ylim()[0], np.nanmin(obs.where(obs > 0).sel(basin=[dry, wet]).values) / 10)
    assert lines[f"{dry} GR4J"].get_linestyle() == "--"
    assert lines[f"{dry} GR4J"].get_color() == drawn.get_color() != lines[f"{wet} observed"].get_color()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"{dry}, days with zero flow: observed {100 * (1 - positive / valid):.0f} %", wet,
                      "observed", "GR4J"]


def colorbar_label(ax):
    bar = ax.collections[0].colorbar
    return bar.ax.get_ylabel() or bar.ax.get_xlabel()


def test_sensitivity_heatmap_says_what_it_shows(ds):
    time = ds.time.sel(time="2000")
    jac = xr.DataArray(np.random.default_rng(2).normal(size=(1, time.size, 2)), dims=("basin", "time", "param"),
                       coords={"basin": ["01031500"], "time": time, "param": ["x1", "x4"],
                               "param_units": ("param", ["mm", "d"])},
                       attrs={"units": "mm d-1 per parameter unit"})
    ax = rendered(jac.hydro.plot.sensitivity())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x1 (mm)", "x4 (d)"]
    assert colorbar_label(ax) == "∂q/∂θ, each row divided by its largest |value|"
    assert ax.get_title() == "sensitivity of daily flow to each parameter, basin 01031500"
    ax = rendered(jac.hydro.plot.sensitivity(normalise=False))
    assert colorbar_label(ax) == "∂q/∂θ (mm d-1 per parameter unit)"
    assert np.isclose(ax.collections[0].get_clim()[1], np.abs(jac).max())


def embedding_projection_xy(emb):
    return basinsx.plot.embedding_projection(emb).collections[0].get_offsets()


def test_map_sensitivity_embedding_parity(ds):
    ax = rendered(ds.hydro.plot.map("aridity"))
    assert ax.collections[0].get_offsets().shape == (ds.sizes["basin"], 2)
    jac = xr.DataArray(np.random.default_rng(0).normal(size=(1, ds.sizes["time"], 4)), dims=("basin", "time", "param"),
                       coords={"basin": ["a"], "time": ds.time, "param": ["x1", "x2", "x3", "x4"]})
    ax = rendered(jac.hydro.plot.sensitivity())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x1", "x2", "x3", "x4"]
    emb = xr.DataArray(np.random.default_rng(1).normal(size=(ds.sizes["basin"], 8)), dims=("basin", "embedding_dim"),
                       coords={"basin": ds.basin})
    ax = rendered(xr.Dataset({"embedding": emb}).hydro.plot.embedding(color=ds.aridity))
    assert ax.collections[0].get_offsets().shape == (ds.sizes["basin"], 2)
    # a seed ensemble's embeddings (seed, basin, embedding_dim): the seeds' features side by side
    ensemble = xr.concat([emb, 0 * emb], "seed").transpose("seed", "basin", "embedding_dim")
    ax = rendered(ensemble.hydro.plot.embedding())
    single = np.asarray(embedding_projection_xy(emb))
    assert np.allclose(np.abs(ax.collections[0].get_offsets()), np.abs(single))  # constant features add nothing
    with pytest.raises(ValueError, match="needs dims 'basin'"):
        emb.rename(basin="site").hydro.plot.embedding()
    ax = rendered(ds.hydro.plot.parity(ds.p_mean * 1.1, ds.p_mean, label="p_mean"))
    assert ax.get_title().startswith("R²")


def drawn(ax):
    """The lines of ``ax`` by label: their y data."""
    return {line.get_label(): line.get_ydata() for line in ax.get_lines()}


def test_fdc_takes_sim_by_basin_label(ds):
    flow = ds.streamflow.isel(basin=[0, 1, 2])
    # the same flow as simulation, in another order and over more basins: every curve pair coincides
    ax = basinsx.plot.flow_duration_curve(flow, ds.streamflow.isel(basin=slice(None, None, -1)))
    lines = drawn(ax)
    for b in flow["basin"].values:
        assert np.array_equal(lines[f"{b} simulated"], lines[f"{b} observed"])
    with pytest.raises(ValueError, match="no values for basin.*01440000"):
        basinsx.plot.flow_duration_curve(flow, ds.streamflow.isel(basin=[0, 2]))


def test_parity_pairs_by_label(ds):
    truth = ds.p_mean
    ax = basinsx.plot.parity(truth.isel(basin=slice(None, None, -1)), truth)
    assert ax.get_title() == "R² = 1.000"
    xy = ax.collections[0].get_offsets()
    assert np.allclose(xy[:, 0], xy[:, 1])
    with pytest.raises(ValueError, match="'basin'.*'12010000'"):
        basinsx.plot.parity(truth.isel(basin=slice(0, 9)), truth)


def test_basin_map_takes_lon_lat_by_label(ds):
    values = ds.p_mean.isel(basin=slice(None, None, -1)).drop_vars(["gauge_lon", "gauge_lat"])
    points = basinsx.plot.basin_map(values, lon=ds.gauge_lon, lat=ds.gauge_lat).collections[0]
    truth = ds.p_mean.sel(basin=values["basin"])
    assert np.allclose(points.get_offsets(), np.c_[truth.gauge_lon, truth.gauge_lat])
    assert np.allclose(points.get_array(), truth)


def test_one_basin_sim_is_taken_by_the_observed_basin(ds):
    one = ds.isel(basin=[0])
    with pytest.raises(ValueError, match=r"sim \(over basins \['01440000'\]\) has no values for basin.*01031500"):
        one.hydro.plot.hydrograph(ds.streamflow.isel(basin=[1]))
    with pytest.raises(ValueError, match=r"sim \(over basins \['01440000'\]\) has no values for basin.*01031500"):
        one.hydro.plot.fdc(ds.streamflow.isel(basin=[1]))
    # a simulation over all basins: the observed basin's row, whatever its position
    ax = one.hydro.plot.hydrograph(ds.streamflow.isel(basin=slice(None, None, -1)))
    lines = drawn(ax)
    assert np.array_equal(lines["simulated"], lines["observed"])
    assert ax.get_title().startswith("01031500")


def test_hydrograph_and_fdc_convert_sim_and_prcp_units(ds):
    obs = ds.streamflow.sel(basin="01031500")
    cms = (obs * obs.area / 86.4).assign_attrs(units="m3 s-1")  # the same flow as a discharge
    lines = drawn(ds.hydro.plot.hydrograph(cms, basin="01031500"))
    assert np.allclose(lines["simulated"], lines["observed"], rtol=1e-5, equal_nan=True)
    ax = basinsx.plot.flow_duration_curve(obs, cms, label="01031500")
    lines = drawn(ax)
    assert np.allclose(lines["01031500 simulated"], lines["01031500 observed"], rtol=1e-5)
    assert ax.get_ylabel() == "flow (mm d-1)"
    inches = (ds.prcp / 25.4).assign_attrs(units="in d-1")
    ax = ds.hydro.plot.hydrograph(basin="01031500", prcp=inches, time=slice("2000-03", "2000-03"))
    bars = next(other for other in ax.figure.axes if other is not ax)
    heights = [bar.get_height() for bar in bars.patches]
    assert np.allclose(heights, ds.prcp.sel(basin="01031500", time="2000-03"), rtol=1e-5)
    assert bars.get_ylabel() == "precipitation (mm d-1)"
    with pytest.raises(basinsx.units.UnitsError, match="'sim'.*furlong"):
        ds.hydro.plot.hydrograph(obs.assign_attrs(units="furlong d-1"), basin="01031500")
    with pytest.raises(basinsx.units.UnitsError, match="'prcp'.*furlong"):
        ds.hydro.plot.hydrograph(basin="01031500", prcp=ds.prcp.assign_attrs(units="furlong d-1"))


def test_fdc_draws_sim_on_the_observed_days(ds):
    obs = ds.streamflow.sel(time="2001")
    ax = basinsx.plot.flow_duration_curve(obs, ds.streamflow)  # a perfect model, over 2000-2001
    lines = drawn(ax)
    for b in obs["basin"].values:
        assert np.array_equal(lines[f"{b} simulated"], lines[f"{b} observed"])
    assert ax.get_title().endswith("2001-01-01 to 2001-12-31")
    with pytest.raises(ValueError, match="sim has no values on 366 of the observed days.*2000-01-01 to 2000-12-31"):
        basinsx.plot.flow_duration_curve(ds.streamflow, ds.streamflow.sel(time="2001"))


def test_fdc_draws_sim_on_the_days_with_observed_flow(ds):
    obs = ds.streamflow.sel(time="2001").copy()
    obs[:, 150:250] = np.nan  # a gap in the record, over the summer's low flows
    full = ds.streamflow.sel(time="2001")  # a perfect model, which has those days too
    lines = drawn(basinsx.plot.flow_duration_curve(obs, full))
    for b in obs["basin"].values:  # before: the simulated curve took the gap's days as well
        assert np.array_equal(lines[f"{b} simulated"], lines[f"{b} observed"])
    none = obs.copy()
    none[1] = np.nan  # a basin without observations keeps its simulated curve
    lines = drawn(basinsx.plot.flow_duration_curve(none, full))
    assert lines[f"{obs.basin.values[1]} simulated"].size > 0


def test_basins_without_data_are_marked(ds):
    flow = ds.streamflow.isel(basin=[0, 1]).copy()
    flow[1] = np.nan
    ax = basinsx.plot.flow_duration_curve(flow)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["01031500", "01440000 (no observed data)"]
    values = ds.p_mean.copy()
    values[1] = np.nan
    ax = rendered(basinsx.plot.basin_map(values))
    hollow = ax.collections[1]
    assert np.allclose(hollow.get_offsets(), [[ds.gauge_lon[1], ds.gauge_lat[1]]])
    assert hollow.get_facecolors().size == 0 and np.allclose(hollow.get_edgecolors(), [[0, 0, 0, 1]])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["no data"]
