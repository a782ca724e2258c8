"""Tests of basinsx.regional: the exact-sensitivity autograd Function, the parameter learner, the baselines.

Real basins of the bundled sample, short periods, tiny networks and few epochs.
"""

import copy

import numpy as np
import pytest
import xarray as xr

torch = pytest.importorskip("torch")

import basinsx  # noqa: E402
import basinsx.models as bm  # noqa: E402
from basinsx.embedding import KGSSL  # noqa: E402
from basinsx.regional import (  # noqa: E402
    ParameterLearner,
    donor_params,
    regression_params,
    run_exact,
    to_physical,
)
from basinsx.regional.learner import window_loss  # noqa: E402
from basinsx.regional.torch_gr4j import gr4j_snow  # noqa: E402

from conftest import raise_if_dask_computes  # noqa: E402

ATTRS = ["p_mean", "aridity", "frac_snow", "elev_mean"]
FIT = {"period": ("2000", "2001"), "pet": "oudin", "warmup": 120, "window": 120, "batch_basins": 4}
TINY = {"hidden": 8, "epochs": 3, "seed": 0}
EMB = {"dim": 4, "hidden": 8, "window": 90, "stride": 90, "epochs": 1, "basins_per_batch": 4, "windows_per_basin": 2,
       "val_fraction": 0.0}
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sample():
    ds = basinsx.open_dataset("sample", chunks=None).isel(basin=slice(0, 5)).sel(time=slice("1999-07", "2001"))
    return ds.load()


@pytest.fixture(scope="module")
def forcing(sample):
    pet = sample.hydro.pet("oudin")
    f = np.stack([sample.prcp.values, pet.values, sample.tmean.values], axis=1).astype(np.float64)
    return f[:3, :, :200]


@pytest.fixture(scope="module")
def learner(sample):
    return ParameterLearner("gr4j", snow=True, attributes=ATTRS, **TINY).fit(sample, **FIT)


def test_exact_run_gradient_equals_finite_differences_of_the_network_weights(forcing):
    """gradcheck in float64: the loss's gradient through J^T delta against central differences of the weights."""
    m = bm.get("gr4j", snow=True)
    torch.manual_seed(0)
    x = torch.randn(3, 2, dtype=torch.float64)
    w1 = (0.5 * torch.randn(2, 3, dtype=torch.float64)).requires_grad_()
    w2 = (0.5 * torch.randn(3, 6, dtype=torch.float64)).requires_grad_()
    obs = torch.as_tensor(forcing[:, 0, 60:] * 0.3 + 0.5)
    scale = obs.var(1)

    def loss(a, b):
        theta = to_physical(torch.sigmoid(torch.tanh(x @ a) @ b), m)
        return window_loss(run_exact(theta, m, forcing, 60), obs, scale)

    assert torch.autograd.gradcheck(loss, (w1, w2), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_exact_run_matches_autograd_through_the_batched_torch_model(forcing):
    """Same flow as the torch GR4J + snow (dMG-style, batched) and the same gradient as autograd through it."""
    m = bm.get("gr4j", snow=True)
    theta0 = torch.tensor([[350.0, 0.3, 90.0, 1.7, 0.5, 3.0], [800.0, -1.2, 40.0, 2.6, -1.0, 1.5],
                           [120.0, 1.0, 300.0, 0.9, 1.5, 6.0]], dtype=torch.float64)
    obs = torch.as_tensor(forcing[:, 0, 30:] * 0.4 + 0.2)
    grads = []
    for fn in (lambda th: run_exact(th, m, forcing, 30), lambda th: gr4j_snow(th, torch.as_tensor(forcing), 30)):
        theta = theta0.clone().requires_grad_()
        q = fn(theta)
        ((q - obs) ** 2).sum().backward()
        grads.append((q.detach(), theta.grad))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-8, atol=1e-8)
    # the numba model itself, for the record: the Function adds nothing to the flow
    np.testing.assert_allclose(grads[0][0][1], m.run(theta0[1].numpy(), forcing[1], warmup=30)[0], rtol=0, atol=0)


def test_to_physical_maps_the_unit_cube_onto_the_bounds_log_scale_for_x1_x3():
    m = bm.get("gr4j", snow=True)
    u = torch.tensor([[0.0] * 6, [1.0] * 6, [0.5] * 6], dtype=torch.float64)
    theta = to_physical(u, m).numpy()
    lo, hi = (np.array([m.bounds[p][i] for p in m.params]) for i in (0, 1))
    np.testing.assert_allclose(theta[0], lo)
    np.testing.assert_allclose(theta[1], hi)
    log = [0, 2, 5]  # x1, x3, f_dd: two decades or more
    np.testing.assert_allclose(theta[2, log], np.sqrt(lo[log] * hi[log]))  # the geometric middle
    np.testing.assert_allclose(theta[2, [1, 3, 4]], (lo + hi)[[1, 3, 4]] / 2)


@pytest.mark.parametrize("name", bm.available())
def test_to_physical_has_a_finite_gradient_over_the_whole_unit_cube(name):
    # hbv's fc reaches 1000 on a linear scale: exp(1000) of the unused log branch overflowed to inf,
    # and its zero weight times inf made the gradient NaN, which then poisoned the network's weights
    m = bm.get(name)
    u = torch.tensor([[0.0] * len(m.params), [0.95] * len(m.params), [1.0] * len(m.params)], dtype=torch.float64,
                     requires_grad=True)
    theta = to_physical(u, m)
    theta.sum().backward()
    lo, hi = (np.array([m.bounds[p][i] for p in m.params]) for i in (0, 1))
    np.testing.assert_allclose(theta.detach().numpy()[[0, 2]], np.stack([lo, hi]), rtol=1e-12)
    assert torch.isfinite(u.grad).all(), dict(zip(m.params, u.grad[1].tolist()))


@pytest.mark.parametrize("name, snow", [(n, False) for n in bm.available()] + [("gr5j", "cemaneige_hyst")])
def test_the_learner_trains_every_model(sample, name, snow):
    """One epoch through each model's exact Jacobian: finite losses, parameters in the bounds, a flow for each."""
    learner = ParameterLearner(name, snow=snow, attributes=ATTRS, hidden=8, epochs=1, seed=0)
    learner.fit(sample, **{**FIT, "warmup": 60, "window": 60})
    p = learner.params(sample)
    m = learner.model
    lo, hi = (np.array([m.bounds[q][i] for q in m.params]) for i in (0, 1))
    assert np.isfinite(learner.history).all()
    assert ((p.values >= lo) & (p.values <= hi)).all()
    q = sample.hydro.simulate(p, pet="oudin", warmup=60)
    assert np.isfinite(q.values).all()


def test_learner_params_in_bounds_and_simulate_reads_model_and_snow_from_attrs(sample, learner):
    p = learner.params(sample)
    assert p.dims == ("basin", "param") and p.attrs["model"] == "gr4j" and p.attrs["snow"] == 1
    m = learner.model
    for name in m.params:
        lo, hi = m.bounds[name]
        assert ((p.sel(param=name) >= lo) & (p.sel(param=name) <= hi)).all()
    q = sample.hydro.simulate(p, pet="oudin", warmup=100)
    np.testing.assert_array_equal(q, sample.hydro.simulate(p, model="gr4j", snow=True, pet="oudin", warmup=100))
    with pytest.raises(ValueError, match="made for snow=1"):
        sample.hydro.simulate(p, snow=False, pet="oudin")
    with pytest.raises(ValueError, match="made for model='gr4j'"):
        sample.hydro.simulate(p, model="hymod", pet="oudin")


def test_learner_training_lowers_the_loss(sample):
    """Ten epochs on five basins: the trained network fits far better than its initial weights."""
    learner = ParameterLearner("gr4j", snow=True, attributes=ATTRS, hidden=8, epochs=10, seed=1).fit(sample, **FIT)
    assert np.mean(learner.history[-3:]) < 0.8 * learner.history[0]
    again = ParameterLearner("gr4j", snow=True, attributes=ATTRS, hidden=8, epochs=10, seed=1).fit(sample, **FIT)
    np.testing.assert_array_equal(learner.params(sample), again.params(sample))  # seeded


def test_kgssl_flow_free_encoder_ignores_streamflow(sample):
    cfg = {"dim": 4, "hidden": 8, "window": 90, "stride": 90, "epochs": 1, "basins_per_batch": 4,
           "windows_per_basin": 2, "progress": False, "val_fraction": 0.0}
    ds = sample.sel(time=slice("2000", "2001"))
    free = KGSSL(encoder_flow=False, **cfg).fit(ds)
    emb = free.transform(ds).embedding
    scrambled = ds.assign(streamflow=ds.streamflow.copy(data=ds.streamflow.values[::-1] * 3 + 1))
    np.testing.assert_array_equal(emb, free.transform(scrambled).embedding)
    np.testing.assert_array_equal(emb, free.transform(ds.drop_vars("streamflow")).embedding)
    assert np.isfinite(emb).all()
    seeing = KGSSL(**cfg).fit(ds)  # the default encoder reads the flow: the same change moves its embedding
    assert not np.allclose(seeing.transform(ds).embedding, seeing.transform(scrambled).embedding)


def test_ungauged_basins_get_parameters_from_attributes_and_flow_free_embeddings(sample):
    ds = sample.copy()
    ds["streamflow"] = ds.streamflow.where(ds.basin != ds.basin[0])  # basin 0 ungauged
    emb = {"dim": 4, "hidden": 8, "window": 90, "stride": 90, "epochs": 1, "basins_per_batch": 4,
           "windows_per_basin": 2, "val_fraction": 0.0}
    learner = ParameterLearner("gr4j", snow=True, attributes=ATTRS[:2], embedding=emb, **TINY).fit(ds, **FIT)
    assert str(ds.basin.values[0]) not in learner.stats["basins"] and len(learner.stats["basins"]) == 4
    assert learner.kgssl.config["encoder_flow"] is False
    p = learner.params(ds.drop_vars("streamflow"), pet="oudin")
    assert p.sizes == {"basin": 5, "param": 6} and np.isfinite(p).all()
    assert len(learner.stats["mean"]) == 2 + 4  # two attributes and four embedding dimensions


def test_params_is_lazy_for_dask_input(sample, learner):
    lazy = sample.chunk({"basin": 2})
    with raise_if_dask_computes():
        p = learner.params(lazy)
    assert p.chunks is not None
    # each chunk is what the learner gives its basins eagerly, bit for bit
    eager = [learner.params(sample.isel(basin=slice(i, i + 2))) for i in range(0, sample.sizes["basin"], 2)]
    np.testing.assert_array_equal(p.compute(), np.concatenate([e.values for e in eager]))
    # float32 network: a chunk's matrix product may round its last bit differently from the whole batch's
    np.testing.assert_allclose(p.compute(), learner.params(sample), rtol=1e-6)


@pytest.fixture(scope="module")
def embedded(sample):
    """A learner on attributes and a flow-free embedding, trained with pet="oudin"."""
    return ParameterLearner("gr4j", snow=True, attributes=ATTRS[:2], embedding=EMB, **TINY).fit(sample, **FIT)


def test_params_embed_the_pet_the_learner_was_trained_with(sample, embedded, tmp_path):
    assert embedded.stats["pet"] == "oudin (computed by basinsx.pet)"
    oudin = embedded.params(sample, pet="oudin")
    # before: pet=None embedded the data set's own pet (x1 239 mm off on the sample)
    xr.testing.assert_equal(embedded.params(sample), oudin)
    xr.testing.assert_equal(sample.hydro.regionalize(embedded), oudin)
    embedded.save(tmp_path / "learner.pt")
    xr.testing.assert_equal(ParameterLearner.load(tmp_path / "learner.pt").params(sample), oudin)
    other = r"trained with PET oudin \(computed by basinsx.pet\); the PET given is pet \(the data set's variable\)"
    with pytest.raises(ValueError, match=other):
        embedded.params(sample, pet="pet")
    with pytest.raises(ValueError, match=other):
        sample.hydro.regionalize(embedded, pet="pet")
    given = copy.copy(embedded)  # trained on a DataArray: the learner cannot compute it again
    given.stats = {**embedded.stats, "pet": "a DataArray (my PET)"}
    with pytest.raises(ValueError, match=r"trained with PET a DataArray \(my PET\); pass that PET as pet="):
        given.params(sample)
    assert np.isfinite(given.params(sample, pet=sample.pet)).all()


def test_params_refuse_a_time_axis_with_a_gap(sample):
    learner = ParameterLearner("gr4j", attributes=ATTRS[:2], embedding=EMB, **{**TINY, "epochs": 1}).fit(
        sample, **{**FIT, "pet": "pet"})
    gap = sample.sel(time=~((sample.time.dt.year == 2001) & (sample.time.dt.month < 7)))
    # before: the embedding's windows ran across the missing half year
    where = "ParameterLearner.params: time axis is not daily: 2000-12-31 is followed by 2001-07-01"
    with raise_if_dask_computes(), pytest.raises(ValueError, match=where):
        learner.params(gap.chunk({"basin": 2}))


def test_missing_attribute_is_the_training_mean(sample, learner):
    ds = sample.copy()
    ds["aridity"] = ds.aridity.where(ds.basin != ds.basin[2])
    mean = learner.stats["mean"][ATTRS.index("aridity")]
    filled = sample.copy()
    filled["aridity"] = filled.aridity.where(filled.basin != filled.basin[2], mean)
    np.testing.assert_allclose(learner.params(ds), learner.params(filled))


def test_attributes_are_taken_in_the_units_the_learner_was_trained_on(sample, learner, tmp_path):
    km = sample.assign(elev_mean=(sample.elev_mean / 1000).assign_attrs(units="km"))
    np.testing.assert_allclose(learner.params(km), learner.params(sample), rtol=1e-6)  # before: km taken as m
    learner.save(tmp_path / "learner.pt")
    np.testing.assert_allclose(ParameterLearner.load(tmp_path / "learner.pt").params(km), learner.params(sample),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="'elev_mean' is in 'degC', which cannot be converted to m"):
        learner.params(sample.assign(elev_mean=sample.elev_mean.assign_attrs(units="degC")))
    cal = xr.DataArray(np.linspace(100.0, 900.0, 5)[:, None] * [1.0, 0.0, 0.2, 0.004], dims=("basin", "param"),
                       coords={"basin": sample.basin.values, "param": ["x1", "x2", "x3", "x4"]})
    for method in (donor_params, regression_params):
        np.testing.assert_allclose(method(sample, cal, km, ATTRS, model="gr4j"),
                                   method(sample, cal, sample, ATTRS, model="gr4j"), rtol=1e-6)


def test_save_load_round_trip_and_refuses_other_files(sample, learner, tmp_path):
    path = tmp_path / "learner.pt"
    learner.save(path)
    back = ParameterLearner.load(path)
    np.testing.assert_array_equal(back.params(sample), learner.params(sample))
    assert back.config == learner.config
    from basinsx import _serialization

    _serialization.save(tmp_path / "other.pt", "basinsx.KGSSL/2", {"config": {}})
    with pytest.raises(ValueError, match="expected basinsx.ParameterLearner/1"):
        ParameterLearner.load(tmp_path / "other.pt")


def test_regionalize_accessor_fits_then_predicts(sample, learner):
    options = {"model": "gr4j", "snow": True, "attributes": ATTRS, **TINY}
    p = sample.hydro.regionalize(options, **FIT)
    np.testing.assert_array_equal(p, learner.params(sample))
    np.testing.assert_array_equal(sample.hydro.regionalize(learner), learner.params(sample))


def test_a_non_finite_loss_or_gradient_stops_training_naming_the_step_and_basins(sample, monkeypatch):
    """A NaN in one step's gradient would make every weight NaN from then on, and every parameter NaN."""
    import basinsx.regional.learner as learner_module

    calls = []
    exact = learner_module.run_exact

    def poisoned(theta, *args):
        calls.append(1)
        q = exact(theta, *args)
        return q * float("nan") if len(calls) == 16 else q  # 14 steps an epoch: the second of epoch 2

    monkeypatch.setattr(learner_module, "run_exact", poisoned)
    where = r"epoch 2, step 2 of 14 \(scored windows within 20\d\d-.*\), basins \['"
    with pytest.raises(FloatingPointError, match=where):
        ParameterLearner("gr4j", snow=True, attributes=ATTRS, **TINY).fit(sample, **FIT)


def test_input_errors(sample):
    with pytest.raises(ValueError, match="needs inputs"):
        ParameterLearner("gr4j")
    with pytest.raises(ValueError, match="loss must be"):
        ParameterLearner("gr4j", attributes=ATTRS, loss="rmse")
    with pytest.raises(ValueError, match="encoder reads streamflow"):
        seeing = KGSSL(dim=4, hidden=8, window=90, epochs=1, progress=False).fit(sample)
        ParameterLearner("gr4j", embedding=seeing)
    with pytest.raises(ValueError, match="numeric static"):
        ParameterLearner("gr4j", attributes=["huc_02"] if "huc_02" in sample else ["gauge_name"]).fit(sample, **FIT)
    bad = sample.copy()
    bad["prcp"] = bad.prcp.where(~((bad.basin == bad.basin[1]) & (bad.time == np.datetime64("2000-03-02"))))
    with pytest.raises(ValueError, match=r"'prcp' is NaN for basin 01440000 on 2000-03-02"):
        ParameterLearner("gr4j", attributes=ATTRS, epochs=1).fit(bad, **FIT)


# ------------------------------------------------------------------------------------- baselines


def synthetic_pool(n=12, seed=0):
    rng = np.random.default_rng(seed)
    basins = [f"b{i:02d}" for i in range(n)]
    a = rng.normal(size=(n, 2))
    ds = xr.Dataset({"a1": ("basin", a[:, 0]), "a2": ("basin", 10 * a[:, 1])}, coords={"basin": basins})
    x1 = np.exp(5.5 + 0.8 * a[:, 0])  # log x1 linear in a1
    x2 = -1.0 + 0.5 * a[:, 1]
    theta = np.column_stack([x1, x2, np.full(n, 90.0), np.full(n, 1.7)])
    params = xr.DataArray(theta, dims=("basin", "param"), coords={"basin": basins, "param": ["x1", "x2", "x3", "x4"]})
    return ds, params


def test_donor_k1_is_the_nearest_basin_and_k2_the_mean_in_search_space():
    ds, params = synthetic_pool()
    gauged, target = ds.isel(basin=slice(0, 10)), ds.isel(basin=slice(10, None))
    z = (ds[["a1", "a2"]].to_dataarray("a").T - gauged[["a1", "a2"]].to_dataarray("a").mean("basin"))
    z = (z / gauged[["a1", "a2"]].to_dataarray("a").std("basin")).values
    dist = np.linalg.norm(z[10:, None] - z[None, :10], axis=-1)
    order = np.argsort(dist, axis=1)
    one = donor_params(gauged, params, target, ["a1", "a2"], k=1)
    np.testing.assert_array_equal(one.values, params.values[order[:, 0]])
    two = donor_params(gauged, params, target, ["a1", "a2"], k=2)
    pair = params.values[order[:, :2]]
    np.testing.assert_allclose(two.sel(param="x1"), np.sqrt(pair[:, 0, 0] * pair[:, 1, 0]))  # log-scale mean
    np.testing.assert_allclose(two.sel(param="x2"), pair[:, :, 1].mean(1))
    assert one.attrs["model"] == "gr4j" and list(one.basin.values) == ["b10", "b11"]


def test_regression_recovers_a_linear_relation_in_search_space():
    ds, params = synthetic_pool(n=30)
    gauged, target = ds.isel(basin=slice(0, 25)), ds.isel(basin=slice(25, None))
    pred = regression_params(gauged, params, target, ["a1", "a2"])
    np.testing.assert_allclose(np.log(pred.sel(param="x1")), np.log(params.isel(basin=slice(25, None))
                                                                     .sel(param="x1")), atol=0.05)
    np.testing.assert_allclose(pred.sel(param="x2"), params.isel(basin=slice(25, None)).sel(param="x2"), atol=0.05)


def test_baselines_take_the_gauged_basins_parameters_by_label():
    ds, params = synthetic_pool()
    gauged, target = ds.isel(basin=slice(0, 10)), ds.isel(basin=slice(10, None))
    for method in (donor_params, regression_params):
        ref = method(gauged, params, target, ["a1", "a2"])
        xr.testing.assert_identical(method(gauged, params[::-1], target, ["a1", "a2"]), ref)
        with pytest.raises(ValueError, match=r"params has no values for basin\(s\) \['b09'\]"):
            method(gauged, params.isel(basin=slice(0, 9)), target, ["a1", "a2"])  # before: a bare KeyError
        snowy = xr.concat([params, params.isel(param=[0, 1]).assign_coords(param=["T_tr", "f_dd"])], dim="param")
        with pytest.raises(ValueError, match=r"unexpected \['T_tr', 'f_dd'\]"):
            method(gauged, snowy, target, ["a1", "a2"])  # before: the snow parameters dropped silently
