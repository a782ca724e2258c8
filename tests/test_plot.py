import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr

import basinsx


@pytest.fixture(scope="module")
def ds():
    return basinsx.open_dataset("sample", chunks=None).sel(time=slice("2000", "2001"))


def rendered(ax):
    ax.figure.canvas.draw()
    width, height = ax.figure.canvas.get_width_height()
    assert width > 100 and height > 100
    return ax


def test_hydrograph_and_fdc(ds):
    ax = rendered(ds.hydro.plot.hydrograph(ds.streamflow * 0.9, basin="01031500", time=slice("2000-03", "2000-06")))
    assert [line.get_label() for line in ax.get_lines()] == ["observed", "simulated"]
    assert ax.get_lines()[0].get_xdata().size == 122
    ax = rendered(ds.hydro.plot.fdc())
    assert len(ax.get_lines()) == ds.sizes["basin"]
    y = ax.get_lines()[0].get_ydata()
    assert (np.diff(y) <= 0).all()
    with pytest.raises(ValueError, match="choose one with basin="):
        ds.hydro.plot.hydrograph()


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
