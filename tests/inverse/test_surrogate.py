"""basinsx.inverse.surrogate: kernel and network surrogates, their labels and devices."""

import pickle

import numpy as np
import pytest
import xarray as xr
from inverse_cases import BOUNDS, decay_sets, kernel_fit

from basinsx.inverse import Surrogate

torch = pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    return decay_sets()


@pytest.fixture(scope="module")
def kernel_surrogate(data):
    train, _ = data
    return kernel_fit(train)


@pytest.mark.parametrize(
    "kind, kwargs, tol",
    [
        ("kernel", {}, 0.005),
        ("mlp", {"epochs": 150, "hidden_layers": 2, "width": 64}, 0.04),
        ("lenet", {"epochs": 40}, 0.06),
        ("resnet", {"epochs": 12}, 0.12),
    ],
)
def test_surrogate_learns_smooth_map(data, kind, kwargs, tol):
    train, test = data
    s = Surrogate(kind, **kwargs).fit(train.params, train.output)
    score = s.score(test.params, test.output)
    assert float(score.rmse) < tol
    pred = s.predict(test.params)
    assert pred.dims == ("sample", "obs") and pred.shape == test.output.shape


def test_surrogate_image_input():
    rng = np.random.default_rng(0)
    fields = xr.DataArray(rng.random((120, 8, 8)), dims=("sample", "y", "x"))
    y = fields.mean(("y", "x")).expand_dims(obs=2, axis=1) * xr.DataArray([1.0, 2.0], dims="obs")
    s = Surrogate("lenet", epochs=30).fit(fields, y)
    assert s.predict(fields[:5]).shape == (5, 2)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(s)).predict(fields[:5]), s.predict(fields[:5]))
    with pytest.raises(ValueError, match="feature shape"):
        s.predict(fields[:5, :4])


def test_surrogate_device(data):
    # device= places the network, its training tensors and torch_module(); numpy in and out
    train, test = data
    s = Surrogate("mlp", epochs=5, hidden_layers=1, width=16, device=torch.device("cpu"))
    s.fit(train.params, train.output)
    mod = s.torch_module()
    assert {t.device.type for t in [*mod.parameters(), *mod.buffers()]} == {"cpu"}
    x = torch.as_tensor(test.params.values[:4], dtype=torch.float32)
    np.testing.assert_allclose(mod(x).numpy(), s.predict_scaled(test.params.values[:4]), rtol=1e-6)
    fine = s.fine_tune(test.params, test.output, epochs=2)
    assert fine.predict(test.params).shape == test.output.shape


def test_surrogate_errors(data):
    train, _ = data
    with pytest.raises(ValueError, match="kind"):
        Surrogate("forest")
    with pytest.raises(ValueError, match=r"y 'sample' labels do not match x's: missing \[10, 11"):
        Surrogate("kernel").fit(train.params, train.output[:10])
    with pytest.raises(ValueError, match="x has 200 samples, y has 10"):
        Surrogate("kernel").fit(train.params, train.output[:10].drop_vars("sample"))
    with pytest.raises(RuntimeError, match="not fitted"):
        Surrogate("mlp").predict(train.params)


def test_surrogate_predict_aligns_params_by_label(data, kernel_surrogate):
    _, test = data
    x = test.params
    ref = kernel_surrogate.predict(x)
    # reordered params, a transposed array and an unlabeled array (taken in the surrogate's order) agree
    xr.testing.assert_identical(kernel_surrogate.predict(x.isel(param=[2, 0, 1])), ref)
    xr.testing.assert_identical(kernel_surrogate.predict(x.transpose("param", "sample")), ref)
    xr.testing.assert_identical(kernel_surrogate.predict(x.drop_vars("param")), ref)
    np.testing.assert_array_equal(kernel_surrogate.score(x.isel(param=[1, 2, 0]), test.output).rmse,
                                  kernel_surrogate.score(x, test.output).rmse)
    with pytest.raises(ValueError, match=r"x 'param'.*missing \['c'\].*unknown \['d'\]"):
        kernel_surrogate.predict(x.assign_coords(param=["a", "b", "d"]))
    with pytest.raises(ValueError, match=r"x has dims \['scenario'\]"):
        kernel_surrogate.predict(x.expand_dims(scenario=2))


def test_surrogate_image_inputs_align_by_y_x_labels():
    # a raster stored north-up (y descending) or as (x, y) is the same field
    rng = np.random.default_rng(0)
    coords = {"y": np.arange(6.0), "x": np.arange(5.0) * 2}
    fields = xr.DataArray(rng.random((40, 6, 5)), dims=("sample", "y", "x"), coords=coords)
    y = xr.concat([fields.isel(y=slice(0, 3)).mean(("y", "x")), fields.isel(x=0).mean("y")], "obs")
    s = Surrogate("kernel", alpha=1e-4, gamma=0.05).fit(fields, y.transpose("sample", "obs"))
    ref = s.predict(fields[:5])
    xr.testing.assert_identical(s.predict(fields[:5].isel(y=slice(None, None, -1))), ref)
    xr.testing.assert_identical(s.predict(fields[:5].transpose("sample", "x", "y")), ref)
    flipped = fields[:5].copy(data=fields[:5].values[:, ::-1])  # the same labels on other data
    assert not np.allclose(s.predict(flipped), ref)
    with pytest.raises(ValueError, match=r"x 'y'.*missing \[5.0\].*unknown \[7.0\]"):
        s.predict(fields[:5].assign_coords(y=[0.0, 1, 2, 3, 4, 7]))


def test_outputs_are_paired_with_inputs_by_sample_label(data, kernel_surrogate):
    train, test = data
    shuffled = train.output.isel(sample=np.random.default_rng(0).permutation(train.sizes["sample"]))
    refit = kernel_fit(train.assign(output=shuffled))  # before: trained on mismatched pairs (R2 -0.5)
    xr.testing.assert_allclose(refit.predict(test.params), kernel_surrogate.predict(test.params))
    ref = kernel_surrogate.score(test.params, test.output)
    xr.testing.assert_identical(kernel_surrogate.score(test.params, test.output.isel(sample=slice(None, None, -1))),
                                ref)  # before: R2 -1.3
    pytest.importorskip("torch")
    from basinsx.inverse import TNNA

    pretrain = TNNA(kernel_surrogate, BOUNDS, pretrain=(train.params, shuffled)).pretrain  # before: by position
    np.testing.assert_array_equal(pretrain[0], kernel_surrogate.scale_y(train.output.values))
    with pytest.raises(ValueError, match=r"y 'sample' labels do not match x's: missing \[0, 1, 2"):
        Surrogate("kernel").fit(train.params, train.output.assign_coords(sample=train.sample.values + 1000))


def test_outputs_in_other_units_are_scaled_by_their_own_range():
    from basinsx.inverse import latin_hypercube, training_set

    def heads_and_conc(theta):  # a head in Pa beside a concentration in kg/L
        a, b = theta
        return np.array([1e4 * (1 + a), 1e-3 * (1 + b), 0.5])

    train = training_set(heads_and_conc, latin_hypercube({"a": (0, 1), "b": (0, 1)}, 40, seed=0), progress=False)
    y = train.output.assign_coords(obs=["head", "conc", "fixed"])
    with pytest.warns(UserWarning, match=r"outputs at obs='conc' vary .* need output_scale="):
        default = Surrogate("kernel").fit(train.params, y)  # before: silently flattened to 1e-3 of [0, 1]
    assert default.y_span[1] == 1.0
    scale = xr.DataArray([1.0, 1e4, 1e-3], dims="obs", coords={"obs": ["fixed", "head", "conc"]})
    scaled = Surrogate("kernel", output_scale=scale).fit(train.params, y)
    np.testing.assert_allclose(scaled.scale_y(y).max(0), [1.0, 1.0, 0.0])
    np.testing.assert_allclose(scaled.y_span, [*np.ptp(y.values[:, :2], 0), 1.0])
    with pytest.raises(ValueError, match="output_scale must be positive"):
        Surrogate("kernel", output_scale=0.0).fit(train.params, y)
