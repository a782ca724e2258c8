"""basinsx.embedding.kgssl: KGSSL (Ghosh et al. 2022) and embed/evaluate on small synthetic basins."""

import subprocess
import sys

import dask
import numpy as np
import pytest
import xarray as xr
from embedding_cases import SMALL, synthetic

torch = pytest.importorskip("torch")

# imported after the importorskip: basinsx.embedding needs torch
from basinsx.embedding import KGSSL, data, embed, evaluate  # noqa: E402
from basinsx.embedding.model import masked_mse  # noqa: E402
from basinsx.embedding.readout import fit_ridge  # noqa: E402

from conftest import raise_if_dask_computes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ds():
    return synthetic()


@pytest.fixture(scope="module")
def fitted(ds):
    """Supervised on k and c with both attributes unknown (NaN) for four basins."""
    train = ds.copy()
    hidden = ["b01", "b06", "b09", "b14"]
    for a in ("k", "c"):
        train[a] = train[a].where(~train.basin.isin(hidden))
    model = KGSSL(epochs=25, patience=25, lr=3e-3, **SMALL).fit(train, attributes=["k", "c"])
    return model, hidden


def test_import_basinsx_does_not_import_torch():
    code = "import sys, basinsx, basinsx.embedding; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_recovers_the_attribute_that_drives_the_response(ds, fitted):
    model, hidden = fitted
    out = model.transform(ds)
    scores = evaluate(out, ds)
    # k controls the whole hydrograph shape: recovered over all basins, including those
    # whose attributes were hidden in training.
    assert float(scores.r.sel(attribute="k")) > 0.9
    pred = out.attributes_pred.sel(attribute="k", basin=hidden).values
    truth = ds.k.sel(basin=hidden).values
    assert np.corrcoef(pred, truth)[0, 1] > 0.8
    assert model.history[-1]["train_loss"] < model.history[0]["train_loss"]


def test_transform_shapes_labels_and_metadata(ds, fitted):
    model, _ = fitted
    out = model.transform(ds, period=("2001-01-01", "2002-12-31"))
    assert out.embedding.dims == ("basin", "embedding_dim")
    assert out.embedding.shape == (ds.sizes["basin"], 8)
    assert list(out.attribute.values) == ["k", "c"]
    assert out.attributes_pred.dims == ("basin", "attribute")
    assert (out.basin.values == ds.basin.values).all()
    assert out.attrs["period"] == "2001-01-01 .. 2002-12-31"
    assert out.embedding.attrs["units"] == "1"
    assert np.isfinite(out.embedding.values).all()
    # attributes come back in their own units
    assert abs(float(out.attributes_pred.sel(attribute="k").mean()) - float(ds.k.mean())) < 0.1


def test_self_supervised_has_no_attribute_output(ds):
    out = embed(ds, epochs=1, **{k: v for k, v in SMALL.items() if k != "dim"}, dim=4)
    assert set(out.data_vars) == {"embedding", "missing_forcing_days"}
    assert out.embedding.shape == (ds.sizes["basin"], 4)
    via_accessor = ds.hydro.embed(epochs=1, **{k: v for k, v in SMALL.items() if k != "dim"}, dim=4)
    xr.testing.assert_allclose(out, via_accessor)


def test_deterministic_with_a_seed(ds):
    sub = ds.isel(basin=slice(0, 6))
    cfg = {**SMALL, "epochs": 2}
    a = KGSSL(seed=3, **cfg).fit(sub, attributes=["k"]).transform(sub)
    b = KGSSL(seed=3, **cfg).fit(sub, attributes=["k"]).transform(sub)
    c = KGSSL(seed=4, **cfg).fit(sub, attributes=["k"]).transform(sub)
    xr.testing.assert_equal(a, b)
    assert not np.allclose(a.embedding.values, c.embedding.values)


def test_seed_ensemble_averages_predictions_and_stacks_embeddings(ds):
    sub = ds.isel(basin=slice(0, 6))
    cfg = {**{k: v for k, v in SMALL.items() if k != "dim"}, "dim": 4, "epochs": 2, "attributes": ["k", "c"]}
    single = {s: embed(sub, seed=s, **cfg) for s in (3, 4)}
    pair = embed(sub, seed=(3, 4), **cfg)
    assert pair.embedding.dims == ("seed", "basin", "embedding_dim")
    assert pair.embedding.shape == (2, 6, 4)
    assert list(pair.seed.values) == [3, 4]
    assert pair.attributes_pred.dims == ("basin", "attribute")
    assert list(pair.attribute.values) == ["k", "c"]
    assert (pair.basin.values == sub.basin.values).all()
    xr.testing.assert_allclose(pair.embedding.sel(seed=4, drop=True), single[4].embedding)
    mean = (single[3].attributes_pred + single[4].attributes_pred) / 2
    np.testing.assert_allclose(pair.attributes_pred.values, mean.values, rtol=1e-6)
    same = embed(sub, seed=[3, 3], **cfg)  # an ensemble of one seed twice is that seed's fit
    np.testing.assert_allclose(same.attributes_pred.values, single[3].attributes_pred.values, rtol=1e-6)
    with pytest.raises(ValueError, match="non-empty"):
        embed(sub, seed=[], **cfg)


def test_transform_stride_option(ds, fitted):
    model, _ = fitted
    default = model.transform(ds)
    xr.testing.assert_identical(model.transform(ds, stride=model.config["stride"]), default)
    fine = model.transform(ds, stride=15)
    assert fine.attrs["stride"] == 15 and model.config["stride"] == 45
    assert not np.allclose(fine.embedding.values, default.embedding.values)


def test_save_load_round_trip(ds, fitted, tmp_path):
    model, _ = fitted
    path = tmp_path / "kgssl.pt"
    model.save(path)
    loaded = KGSSL.load(path)
    assert loaded.config == model.config
    assert loaded.attributes == ("k", "c")
    np.testing.assert_array_equal(loaded.stats["mean"], model.stats["mean"])
    xr.testing.assert_equal(model.transform(ds), loaded.transform(ds))
    with pytest.raises(ValueError, match="not a basinsx KGSSL"):
        torch.save({"x": 1}, tmp_path / "other.pt")
        KGSSL.load(tmp_path / "other.pt")


def test_checkpoint_resume_equals_uninterrupted_run(ds, tmp_path):
    sub = ds.isel(basin=slice(0, 6))
    cfg = {**SMALL, "patience": 10}
    straight = KGSSL(epochs=4, **cfg).fit(sub)
    ckpt = tmp_path / "run.pt"
    KGSSL(epochs=2, **cfg).fit(sub, checkpoint=ckpt)
    # a checkpoint written with epochs=2 has another config: resuming with epochs=4 must refuse
    with pytest.raises(ValueError, match="another configuration or attributes: epochs 2, now 4"):  # before: unnamed
        KGSSL(epochs=4, **cfg).fit(sub, checkpoint=ckpt, resume=True)
    # how a run is shown is no reason to refuse it (before: "another configuration")
    KGSSL(epochs=2, **{**cfg, "progress": not cfg.get("progress", True)}).fit(sub, checkpoint=ckpt, resume=True)
    ckpt4 = tmp_path / "run4.pt"
    first = KGSSL(epochs=4, **cfg)
    first.config["epochs"] = 2  # simulate an interrupted run: stop after two epochs
    first.fit(sub, checkpoint=ckpt4)
    saved = torch.load(ckpt4, weights_only=False)
    saved["config"]["epochs"] = 4
    torch.save(saved, ckpt4)
    resumed = KGSSL(epochs=4, **cfg).fit(sub, checkpoint=ckpt4, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.history == straight.history
    for key, value in straight.net.state_dict().items():
        torch.testing.assert_close(resumed.net.state_dict()[key], value, rtol=0, atol=0)


def test_a_checkpoint_resumes_only_the_data_it_was_trained_on(ds, tmp_path):
    cfg = {**SMALL, "patience": 10, "epochs": 2}
    ckpt = tmp_path / "run.pt"
    KGSSL(**cfg).fit(ds.isel(basin=slice(0, 6)), checkpoint=ckpt)
    # before: the first run's weights came back for other basins, untrained on them
    with pytest.raises(ValueError, match=f"checkpoint {ckpt} was written for other training data: basins"):
        KGSSL(**cfg).fit(ds.isel(basin=slice(2, 8)), checkpoint=ckpt, resume=True)
    other = ds.isel(basin=slice(0, 6)).copy(deep=True)
    other["streamflow"][0, 5] = other["streamflow"][0, 5] + 1.0
    with pytest.raises(ValueError, match="other training data: values"):
        KGSSL(**cfg).fit(other, checkpoint=ckpt, resume=True)
    KGSSL(**cfg).fit(ds.isel(basin=slice(0, 6)), checkpoint=ckpt, resume=True)  # the same data resumes
    with pytest.raises(ValueError, match="resume=True needs the checkpoint"):
        KGSSL(**cfg).fit(ds.isel(basin=slice(0, 6)), resume=True)  # before: trained afresh, silently


def test_a_time_axis_with_a_gap_or_out_of_order_is_refused(ds, fitted):
    model, _ = fitted
    gap = ds.sel(time=ds.time.dt.year != 2001)
    shuffled = ds.isel(time=np.random.default_rng(0).permutation(ds.sizes["time"]))
    # before: windows ran across the missing year, or over days in random order
    with pytest.raises(ValueError, match="KGSSL.fit: time axis is not daily: 2000-12-31 is followed by 2002-01-01"):
        KGSSL(**SMALL).fit(gap)
    with pytest.raises(ValueError, match="KGSSL.fit: time axis is not daily"):
        KGSSL(**SMALL).fit(shuffled)
    with raise_if_dask_computes(), pytest.raises(ValueError, match="KGSSL.transform: time axis is not daily"):
        model.transform(gap.chunk({"basin": 4}))


def test_a_checkpoint_overwrites_only_a_checkpoint_of_its_kind(ds, tmp_path):
    from basinsx.embedding import ForwardLSTM

    sub, cfg = ds.isel(basin=slice(0, 6)), {**SMALL, "epochs": 1}
    mine = tmp_path / "results.csv"
    mine.write_text("precious,data\n1,2\n")
    # before: a user's file at the checkpoint path was overwritten by the first epoch
    with pytest.raises(ValueError, match=f"checkpoint {mine} exists and is not a KGSSL checkpoint"):
        KGSSL(**cfg).fit(sub, checkpoint=mine)
    assert mine.read_text() == "precious,data\n1,2\n"
    forward = tmp_path / "forward.pt"
    ForwardLSTM(hidden=8, seq_length=60, warmup=20, epochs=1, steps_per_epoch=2, progress=False).fit(
        sub, checkpoint=forward)
    with pytest.raises(ValueError, match="exists and is not a KGSSL checkpoint"):
        KGSSL(**cfg).fit(sub, checkpoint=forward)
    assert ForwardLSTM.load(forward).net is not None
    with pytest.raises(ValueError, match="exists and is not a KGSSL checkpoint"):
        KGSSL(**cfg).fit(sub, checkpoint=tmp_path)  # a folder
    run = tmp_path / "run.pt"
    KGSSL(**cfg).fit(sub, checkpoint=run)
    KGSSL(**{**cfg, "dim": 4}).fit(sub, checkpoint=run)  # a checkpoint of its kind is a run to replace
    assert KGSSL.load(run).config["dim"] == 4


def test_missing_flow_is_masked(ds):
    channels, observed = data.encoder_channels(
        np.array([[[1.0, np.nan, 3.0], [np.nan, 2.0, 1.0]]], dtype=np.float32),
        np.zeros(2, np.float32), np.ones(2, np.float32), 1, np.array([1, 2, 3]))
    assert np.isfinite(channels).all()
    np.testing.assert_array_equal(observed, [[False, True, True]])
    np.testing.assert_array_equal(channels[0, 2], [0.0, 1.0, 1.0])  # observed flag channel
    # the reconstruction loss ignores masked entries whatever their value
    pred = torch.tensor([[1.0, 2.0, 3.0]])
    mask = torch.tensor([[True, False, True]])
    assert float(masked_mse(pred, torch.tensor([[1.0, 100.0, 3.0]]), mask)) == 0.0
    # a basin with a gap, and one without any flow: training works, the latter embeds to NaN
    gappy = ds.isel(basin=slice(0, 5)).copy(deep=True)
    q = gappy.streamflow.values
    q[0, 100:400] = np.nan
    q[4, :] = np.nan
    gappy["streamflow"] = (("basin", "time"), q)
    model = KGSSL(epochs=2, **SMALL).fit(gappy, attributes=["k"])
    assert all(np.isfinite(h["train_loss"]) for h in model.history)
    out = model.transform(gappy)
    assert np.isfinite(out.embedding.values[:4]).all()
    assert np.isnan(out.embedding.values[4]).all()
    assert np.isnan(out.attributes_pred.values[4]).all()


def test_inference_is_lazy_on_dask_input(ds, fitted):
    model, _ = fitted
    lazy = ds.chunk({"basin": 4})
    calls = []

    def counting_scheduler(dsk, keys, **kwargs):
        calls.append(len(keys))
        return dask.get(dsk, keys, **kwargs)

    with dask.config.set(scheduler=counting_scheduler):
        out = model.transform(lazy)
        assert calls == []
        assert out.embedding.chunks == ((4, 4, 4, 4), (8,))
        computed = out.compute()
    assert len(calls) == 1
    xr.testing.assert_allclose(computed, model.transform(ds), rtol=1e-5)


def test_triplet_and_mlp_head_options_train(ds):
    sub = ds.isel(basin=slice(0, 6))
    model = KGSSL(epochs=2, contrastive="triplet", head_hidden=8, **SMALL).fit(sub, attributes=["k"])
    assert isinstance(model.net.head, torch.nn.Sequential)
    out = model.transform(sub)
    assert np.isfinite(out.embedding.values).all() and np.isfinite(out.attributes_pred.values).all()


def test_ridge_readout_option(ds, tmp_path):
    sub = ds.isel(basin=slice(0, 8))
    ridge = KGSSL(epochs=2, readout="ridge", **SMALL).fit(sub, attributes=["k", "c"])
    head = KGSSL(epochs=2, readout="head", **SMALL).fit(sub, attributes=["k", "c"])
    a, b = ridge.transform(sub), head.transform(sub)
    np.testing.assert_array_equal(a.embedding.values, b.embedding.values)  # same training, other readout
    assert not np.allclose(a.attributes_pred.values, b.attributes_pred.values)
    ridge.save(tmp_path / "ridge.pt")
    np.testing.assert_array_equal(KGSSL.load(tmp_path / "ridge.pt").transform(sub).attributes_pred.values,
                                  a.attributes_pred.values)
    with pytest.raises(ValueError, match="readout"):
        KGSSL(readout="forest")


def _basin_criterion(model, ds, readout):
    """The held-out-basin criterion recomputed from the fitted model's embeddings."""
    emb = model.transform(ds).embedding.values
    y = (np.stack([ds[a].values for a in model.attributes], 1) - model.stats["attr_mean"]) / model.stats["attr_std"]
    held = ds.basin.isin(model.stats["val_basins"]).values
    if readout == "ridge":
        fit = fit_ridge(emb[~held], y[~held])
        pred = emb[held] @ fit["coef"] + fit["intercept"]
    else:
        with torch.no_grad():
            pred = model.net.predict_attributes(torch.as_tensor(emb[held])).numpy()
    return float(np.mean((pred - y[held]) ** 2))


@pytest.mark.parametrize("readout", ["ridge", "head"])
def test_val_basins_split_and_criterion(ds, readout):
    cfg = {**SMALL, "epochs": 4, "patience": 4, "readout": readout}
    a = KGSSL(val_basins=0.25, seed=0, **cfg).fit(ds, attributes=["k", "c"])
    held = a.stats["val_basins"]
    assert len(held) == 4 and set(held) <= set(ds.basin.values)
    assert KGSSL(val_basins=0.25, seed=0, **cfg).fit(ds, attributes=["k", "c"]).stats["val_basins"] == held
    assert KGSSL(val_basins=0.25, seed=1, **cfg).fit(ds, attributes=["k", "c"]).stats["val_basins"] != held
    # the kept weights are those of the epoch with the lowest held-out-basin error, which is that error
    best = min(h["val_loss"] for h in a.history)
    np.testing.assert_allclose(_basin_criterion(a, ds, readout), best, rtol=1e-4)


def test_val_basins_take_no_gradient_step(ds):
    cfg = {**SMALL, "epochs": 3, "val_basins": ["b03", "b10"]}
    a = KGSSL(**cfg).fit(ds, attributes=["k", "c"])
    poisoned = ds.copy()
    for v in ("prcp", "streamflow"):
        poisoned[v] = ds[v].where(~ds.basin.isin(["b03", "b10"]), ds[v] * 3)
    b = KGSSL(**cfg).fit(poisoned, attributes=["k", "c"])
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert [h["val_loss"] for h in a.history] != [h["val_loss"] for h in b.history]
    assert a.stats["val_basins"] == ["b03", "b10"]
    # the final ridge readout uses every basin: the held-out basins' data change it
    assert not np.allclose(a.stats["ridge"]["coef"], b.stats["ridge"]["coef"])


def test_val_basins_errors_and_fallback(ds):
    with pytest.raises(ValueError, match="at least 2 must be held out"):
        KGSSL(val_basins=0.05, **SMALL).fit(ds, attributes=["k"])
    with pytest.raises(ValueError, match="at least 2 must be held out"):
        KGSSL(val_basins=ds.basin.values[:14].tolist(), **SMALL).fit(ds, attributes=["k"])
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        KGSSL(val_basins=1.5, **SMALL).fit(ds, attributes=["k"])
    with pytest.raises(KeyError, match="not basins"):
        KGSSL(val_basins=["nope", "b01"], **SMALL).fit(ds, attributes=["k"])
    unknown = ds.copy()
    unknown["k"] = ds.k.where(ds.basin != "b02")
    with pytest.raises(ValueError, match="no known attribute"):
        KGSSL(val_basins=["b02", "b05"], **SMALL).fit(unknown, attributes=["k"])
    # without attributes the held-out period is the validation, as without val_basins
    plain = KGSSL(epochs=2, **SMALL).fit(ds)
    held = KGSSL(epochs=2, val_basins=0.25, **SMALL).fit(ds)
    assert held.stats["val_basins"] == [] and held.history == plain.history


def test_evaluate_values():
    basin = [f"b{i}" for i in range(5)]
    truth = xr.Dataset({"a": ("basin", [1.0, 2.0, 3.0, 4.0, 5.0]), "b": ("basin", [2.0, 0.0, 1.0, 3.0, 4.0])},
                       coords={"basin": basin})
    pred = xr.DataArray(np.stack([truth.a.values, truth.b.values + 1.0], axis=1), dims=("basin", "attribute"),
                        coords={"basin": basin, "attribute": ["a", "b"]})
    res = evaluate(pred, truth)
    np.testing.assert_allclose(res.r.values, [1.0, 1.0])
    np.testing.assert_allclose(res.rmse.values, [0.0, 1.0 / truth.b.std().item()])
    pred[0, 0] = np.nan
    assert int(evaluate(pred, truth).n.sel(attribute="a")) == 4


def test_bad_input_errors(ds):
    with pytest.raises(TypeError, match="unknown KGSSL options"):
        KGSSL(window_length=3)
    with pytest.raises(ValueError, match="must be one of the inputs"):
        KGSSL(inputs=("prcp",))
    with pytest.raises(KeyError, match="not in the dataset"):
        KGSSL(inputs=("prcp", "swe", "streamflow"), **SMALL).fit(ds)
    with pytest.raises(ValueError, match="a window needs"):
        KGSSL(**SMALL).fit(ds, period=("2000-01-01", "2000-02-15"))
    with pytest.raises(KeyError, match="not in the dataset"):
        KGSSL(**SMALL).fit(ds, attributes=["porosity"])
    with pytest.raises(RuntimeError, match="not fitted"):
        KGSSL().transform(ds)


def test_missing_forcing_is_counted_per_basin_and_warned_once(ds):
    sub = ds.isel(basin=slice(0, 4)).copy(deep=True)
    model = KGSSL(epochs=1, **SMALL).fit(sub)
    clean = model.transform(sub)
    assert clean["missing_forcing_days"].values.tolist() == [0, 0, 0, 0]
    p = sub.prcp.values
    p[1, 200:230] = np.nan  # before: read as the training mean, an ordinary-looking embedding and no word
    sub["prcp"] = (("basin", "time"), p)
    with pytest.warns(UserWarning, match=rf"missing forcing read as the training mean \(days\) in 1 of 4 basins: "
                                         rf"{sub.basin.values[1]} \(30\)"):
        out = model.transform(sub)
    assert out["missing_forcing_days"].values.tolist() == [0, 30, 0, 0]
    lazy = model.transform(sub.chunk({"basin": 2}))
    assert lazy["missing_forcing_days"].chunks is not None
    assert lazy["missing_forcing_days"].compute().values.tolist() == [0, 30, 0, 0]
