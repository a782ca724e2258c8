"""The per-basin functions give identical results on a LocalCluster of 2 processes and on threads."""

import dask
import distributed
import numpy as np
import pytest
import xarray as xr

import basinsx


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def ds():
    ds = basinsx.open_dataset("sample", basins=["01031500", "03346000", "12010000"]).sel(time=slice("1990", "1995"))
    return ds.assign(pet=ds.hydro.pet("oudin"))


def both(lazy):
    with dask.config.set(scheduler="threads"):
        threaded = lazy.compute()
    return threaded, lazy.compute()


def test_simulate_sensitivity_metrics_signatures(client, ds):
    params = {"x1": 300.0, "x2": -0.5, "x3": 80.0, "x4": 1.7}
    sim = ds.hydro.simulate(params, model="gr4j")
    jac = ds.hydro.sensitivity(params, model="gr4j")
    for lazy in (sim, jac, ds.hydro.metrics(sim), ds.hydro.signatures()):
        threaded, distributed_ = both(lazy)
        xr.testing.assert_identical(threaded, distributed_)
    assert jac.dims == ("basin", "time", "param") and np.isfinite(jac.sel(time="1995").values).all()


def test_embedding_inference(client, ds):
    from basinsx.embedding import KGSSL

    with dask.config.set(scheduler="threads"):
        model = KGSSL(dim=4, hidden=8, epochs=1, window=120, stride=60, progress=False).fit(
            ds.compute(), attributes=["p_mean"])
    threaded, distributed_ = both(model.transform(ds))
    xr.testing.assert_identical(threaded, distributed_)


def test_surrogate_training_set(client):
    from basinsx.inverse import latin_hypercube, training_set

    design = latin_hypercube({"a": (0.0, 1.0), "b": (1.0, 2.0), "c": (-1.0, 0.0)}, 24, seed=0)
    with dask.config.set(scheduler="threads"):
        threaded = training_set(np.cumsum, design, batch_size=5, progress=False)
    on_cluster = training_set(np.cumsum, design, batch_size=5, progress=False)
    xr.testing.assert_identical(threaded, on_cluster)
    np.testing.assert_allclose(on_cluster.output.values, np.cumsum(design.values, axis=1))


def test_progress_compute_on_a_client_and_locally(client, ds, capsys):
    from basinsx.progress import compute

    signatures = ds.hydro.signatures().chunk({"basin": 2})
    (on_client,) = compute(signatures, desc="signatures")
    err = capsys.readouterr().err
    assert "signatures" in err and "3/3" in err and "basin" in err  # basins, counted as the client's blocks finish
    with dask.config.set(scheduler="threads"):
        expected = signatures.compute()
    xr.testing.assert_identical(on_client, expected)



class DiesOnMarker:
    """GR4J, except that a run on the basin whose rain holds 77 mm kills its worker process."""

    def __init__(self):
        self.model = basinsx.models.get("gr4j")
        for name in ("name", "params", "bounds", "units", "forcings"):
            setattr(self, name, getattr(self.model, name))

    def run(self, theta, forcing, *args, **kwargs):
        if np.any(np.asarray(forcing) == 77.0):
            import os

            os._exit(3)
        return self.model.run(theta, forcing, *args, **kwargs)


def test_a_block_that_keeps_killing_workers_is_named_and_the_others_written(tmp_path, ds):
    import sys

    import cloudpickle

    from basinsx import open_dataset
    from basinsx.io.store import DONE, to_zarr_regions
    from basinsx.progress import IncompleteError

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    short = ds.sel(time=slice("1990", "1991"))
    prcp = short.prcp.load()
    prcp[1, 0] = 77.0
    lazy = short.assign(prcp=prcp).chunk({"basin": 1}).hydro.calibrate(model=DiesOnMarker(), period="1991",
                                                                        n_starts=1, maxiter=20)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):  # retried once, then given up
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, distributed.Client(cluster):
            with pytest.raises(IncompleteError, match="KilledWorker") as info:
                to_zarr_regions(lazy, tmp_path / "r.zarr", basin_chunk=1)
    assert info.value.pending == ["1-2 (03346000..03346000)"]
    assert sorted(p.name for p in (tmp_path / "r.zarr" / DONE).iterdir()) == ["0-1", "2-3"]
    written = open_dataset(tmp_path / "r.zarr", allow_incomplete=True).isel(basin=[0, 2])
    assert np.isfinite(written.params).all()
