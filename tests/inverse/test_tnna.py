"""basinsx.inverse: sampling, KLE, zones, channels, surrogates, TNNA and metaheuristics."""

import pickle

import numpy as np
import pytest
import xarray as xr

from basinsx.inverse import (
    KLE,
    TNNA,
    Surrogate,
    as_bounds,
    channel_fields,
    latin_hypercube,
    local_refine,
    minimize,
    objective,
    training_set,
    zone_map,
    zoned_field,
)

torch = pytest.importorskip("torch")

T = np.linspace(0.0, 1.0, 12)
BOUNDS = {"a": (0.5, 2.0), "b": (0.5, 3.0), "c": (-1.0, 1.0)}


@pytest.fixture(autouse=True)
def one_torch_thread():
    # the CI runners are shared: one intra-op thread is several times faster than two here
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def decay(theta):
    a, b, c = theta
    return a * np.exp(-b * T) + c * T


@pytest.fixture(scope="module")
def data():
    train = training_set(decay, latin_hypercube(BOUNDS, 200, seed=1), progress=False)
    test = training_set(decay, latin_hypercube(BOUNDS, 40, seed=2), progress=False)
    return train, test


# ------------------------------------------------------------------ sampling
def test_latin_hypercube_strata():
    X = latin_hypercube(BOUNDS, 50, seed=0)
    assert X.dims == ("sample", "param") and list(X.param.values) == ["a", "b", "c"]
    for name, (lo, hi) in BOUNDS.items():
        strata = np.floor((X.sel(param=name).values - lo) / (hi - lo) * 50).astype(int)
        assert sorted(strata) == list(range(50))  # one sample per stratum


def test_training_set_threads_and_processes_agree():
    X = latin_hypercube(BOUNDS, 10, seed=3)
    a = training_set(decay, X, batch_size=3, progress=False)
    b = training_set(decay, X, batch_size=4, scheduler="synchronous", progress=False)
    assert a.output.dims == ("sample", "obs") and a.params.dims == ("sample", "param")
    np.testing.assert_array_equal(a.output.values, b.output.values)
    np.testing.assert_allclose(a.output.values[4], decay(X.values[4]))


@pytest.mark.parametrize(
    "bounds, match",
    [({"a": (1.0, 0.0)}, "lower bound"), ([[0, 1, 2]], "pairs"), ({"a": (0.0, np.inf)}, "finite")],
)
def test_bad_bounds(bounds, match):
    with pytest.raises(ValueError, match=match):
        as_bounds(bounds)


# ------------------------------------------------------------------ parameterisations
def test_kle_separable_matches_dense_eigenproblem():
    sep = KLE((12, 10), (6.0, 5.0), (2.0, 1.5), variance=2.0, n_terms=30, kernel="separable")
    y, x = sep.y, sep.x
    Y, X = np.meshgrid(y, x, indexing="ij")
    dy, dx = (np.abs(v.ravel()[:, None] - v.ravel()[None]) for v in (Y, X))
    C = 2.0 * np.exp(-dy / 2.0 - dx / 1.5)
    lam = np.linalg.eigvalsh(C)[::-1]
    np.testing.assert_allclose(sep.eigenvalues, lam[:30], rtol=1e-10)
    assert sep.fraction == pytest.approx(lam[:30].sum() / np.trace(C))


def test_kle_isotropic_variance_fraction_and_reconstruction():
    full = KLE((16, 16), (10.0, 10.0), 4.0, n_terms=256, kernel="isotropic")
    assert full.fraction == pytest.approx(1.0)
    kle = KLE((16, 16), (10.0, 10.0), 4.0, n_terms=40, kernel="isotropic")
    assert 0.8 < kle.fraction < 1.0
    np.testing.assert_allclose(kle.eigenvalues, full.eigenvalues[:40], rtol=1e-8)
    fields, xi = kle.sample(5, seed=0)
    np.testing.assert_allclose(kle.project(fields), xi, atol=1e-9)
    # sample variance over many draws approaches the kept variance
    many, _ = kle.sample(4000, seed=1)
    assert many.var(0).mean() == pytest.approx(kle.fraction, rel=0.05)


def test_kle_labeled_and_errors():
    kle = KLE((8, 8), (1.0, 1.0), 0.5, n_terms=5)
    xi = xr.DataArray(np.zeros((3, 5)), dims=("sample", "mode"))
    assert kle.field(xi).dims == ("sample", "y", "x")
    with pytest.raises(ValueError, match="coefficients"):
        kle.field(np.zeros(4))
    with pytest.raises(ValueError, match="n_terms"):
        KLE((4, 4), (1.0, 1.0), 0.5, n_terms=17)
    with pytest.raises(ValueError, match="kernel"):
        KLE((4, 4), (1.0, 1.0), 0.5, n_terms=2, kernel="gaussian")


def test_zones():
    z = zone_map((40, 80))
    assert z.shape == (40, 80) and np.bincount(z.ravel()).tolist() == [400] * 8
    f = zoned_field(z, np.arange(16.0).reshape(2, 8))
    assert f.shape == (2, 40, 80) and f[1, 39, 79] == 15.0
    with pytest.raises(ValueError, match="zones"):
        zoned_field(z, np.ones(7))


def test_channel_fields():
    f = channel_fields(20, (40, 50), seed=0)
    assert f.dims == ("sample", "y", "x") and set(np.unique(f.values)) == {0.0, 1.0}
    assert 0.1 < float(f.mean()) < 0.6
    np.testing.assert_array_equal(f.values, channel_fields(20, (40, 50), seed=0).values)


def test_vae_reducer_learns_channels(tmp_path):
    from basinsx.inverse import VAEReducer

    f = channel_fields(200, (16, 16), seed=0)
    red = VAEReducer(8, epochs=15, batch_size=32, beta=0.5).fit(f)
    assert red.loss_history[-1] < 0.8 * red.loss_history[0]
    assert red.accuracy(channel_fields(30, (16, 16), seed=5)) > 0.75
    assert red.decode(np.zeros((2, 8))).dims == ("sample", "y", "x")
    # a fitted reducer saves and loads as one pickle (its network class is importable)
    (tmp_path / "vae.pkl").write_bytes(pickle.dumps(red))
    back = pickle.loads((tmp_path / "vae.pkl").read_bytes())
    z = np.random.default_rng(1).standard_normal((3, 8))
    np.testing.assert_array_equal(back.decode(z).values, red.decode(z).values)
    with pytest.raises(ValueError, match="binary"):
        VAEReducer(4).fit(f * 0.5)


# ------------------------------------------------------------------ surrogates
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
    with pytest.raises(ValueError, match="samples"):
        Surrogate("kernel").fit(train.params, train.output[:10])
    with pytest.raises(RuntimeError, match="not fitted"):
        Surrogate("mlp").predict(train.params)


# ------------------------------------------------------------------ inversion
@pytest.fixture(scope="module")
def kernel_surrogate(data):
    train, _ = data
    return Surrogate("kernel", alpha=1e-5, gamma=0.1).fit(train.params, train.output)


def test_tnna_recovers_parameters(kernel_surrogate):
    truth = np.array([[1.3, 1.7, 0.4], [0.8, 2.5, -0.5]])
    y = xr.DataArray(np.stack([decay(t) for t in truth]), dims=("scenario", "obs"))
    tn = TNNA(kernel_surrogate, BOUNDS, hidden=(64, 64), epochs=400, lr=3e-3)
    est = tn.fit(y)
    assert est.dims == ("scenario", "param") and tn.nfev == 400
    np.testing.assert_allclose(est.values, truth, atol=0.06)  # 2.5 % of the widest range
    lo, hi = as_bounds(BOUNDS).values.T
    assert np.all(est.values >= lo) and np.all(est.values <= hi)
    assert tn.misfit_history.shape == (400, 2) and tn.history[-1] < 1e-3 * tn.history[0]
    # param_history[k] is the estimate whose misfit the k-th surrogate call measured
    assert tn.param_history.shape == (400, 2, 3)
    fun = objective(kernel_surrogate, y.isel(scenario=1))
    np.testing.assert_allclose(fun(tn.param_history[[0, 50, 399], 1]), tn.misfit_history[[0, 50, 399], 1], rtol=1e-4)


def test_tnna_known_values_regularise(kernel_surrogate):
    # the constraint a + c = 1.7 is satisfied by the truth and pulls the estimate to it
    truth = np.array([1.3, 1.7, 0.4])
    y = xr.DataArray(decay(truth), dims="obs")
    tn = TNNA(kernel_surrogate, BOUNDS, hidden=(32,), epochs=300, lr=3e-3, known=([[1.0, 0.0, 1.0]], [1.7]))
    est = tn.fit(y)
    assert est.sel(param="a") + est.sel(param="c") == pytest.approx(1.7, abs=0.02)


def test_tnna_adaptive_update_reduces_error(data):
    train, _ = data
    coarse = Surrogate("mlp", epochs=60, hidden_layers=2, width=32).fit(train.params, train.output)
    truth = np.array([1.3, 1.7, 0.4])
    y = xr.DataArray(decay(truth), dims="obs")
    tn = TNNA(coarse, BOUNDS, hidden=(32, 32), epochs=300, lr=3e-3)
    first = tn.fit(y).values
    after = np.abs(tn.adapt(decay, y, rounds=2, n_local=30, radius=0.1, finetune_epochs=150).values - truth).max()
    assert tn.n_simulations == 60 and tn.local.sizes["sample"] == 60
    assert after < np.abs(first - truth).max()
    # each round starts with a solver run at its estimate; the history holds every estimate
    np.testing.assert_array_equal(tn.adapt_history[0], first)
    np.testing.assert_array_equal(tn.local.params.values[[0, 30]], tn.adapt_history[:2])
    np.testing.assert_allclose(tn.local.output.values[30], decay(tn.adapt_history[1]))
    assert tn.adapt_history.shape == (3, 3)


def test_local_refine_errors(kernel_surrogate):
    with pytest.raises(ValueError, match="centre needs 3"):
        local_refine(kernel_surrogate, decay, [1.0, 1.0], BOUNDS)
    with pytest.raises(ValueError, match="n_local"):
        local_refine(kernel_surrogate, decay, [1.0, 1.0, 0.0], BOUNDS, n_local=1)


def test_gaussian_prior(kernel_surrogate):
    # a tight prior on c overrides the data for c only; objective() adds the same term
    truth = np.array([1.3, 1.7, 0.4])
    y = xr.DataArray(decay(truth), dims="obs")
    prior = ([0.0, 0.0, -0.5], [1e3, 1e3, 1e-2])
    tn = TNNA(kernel_surrogate, BOUNDS, hidden=(32,), epochs=300, lr=3e-3, prior=prior, prior_weight=1.0)
    assert float(tn.fit(y).sel(param="c")) == pytest.approx(-0.5, abs=0.02)
    M = np.array([truth, [0.6, 0.6, -0.9]])
    plain = objective(kernel_surrogate, y)(M)
    with_prior = objective(kernel_surrogate, y, prior=prior, prior_weight=2.0)(M)
    np.testing.assert_allclose(with_prior - plain, 2.0 * (((M - prior[0]) / prior[1]) ** 2).sum(1), rtol=1e-4)
    with pytest.raises(ValueError, match="positive"):
        TNNA(kernel_surrogate, BOUNDS, prior=(0.0, 0.0))
    with pytest.raises(ValueError, match="3 values"):
        TNNA(kernel_surrogate, BOUNDS, prior=([0.0, 1.0], 1.0))


def test_tnna_pretraining_starts_near_the_answer(data, kernel_surrogate):
    # the supervised inverse fit on the training pairs costs no surrogate call and leaves few
    # tandem epochs to do: after 30 epochs it is far closer than the random initialisation
    train, _ = data
    truth = np.array([[1.3, 1.7, 0.4], [0.8, 2.5, -0.5], [1.9, 0.9, 0.1]])
    y = xr.DataArray(np.stack([decay(t) for t in truth]), dims=("scenario", "obs"))
    kw = {"hidden": (64, 64), "epochs": 30, "lr": 3e-3}
    cold = TNNA(kernel_surrogate, BOUNDS, **kw)
    warm = TNNA(kernel_surrogate, BOUNDS, pretrain=(train.params, train.output), pretrain_epochs=300, **kw)
    err_cold = np.abs(cold.fit(y).values - truth).max()
    err_warm = np.abs(warm.fit(y).values - truth).max()
    assert warm.nfev == cold.nfev == 30
    assert err_warm < 0.15 and err_cold > 0.3
    assert warm.misfit_history[0].mean() < 1e-2 * cold.misfit_history[0].mean()


def test_tnna_starts_leave_a_plateau(kernel_surrogate):
    # the parameters reach the surrogate through a map that is flat within 0.25 of the box
    # centre (as a generative decoder is flat around the centre of its latent): a network
    # starting there gets no gradient; uniform starts outside it find the answer
    box = as_bounds(BOUNDS).values
    lo, span = (torch.as_tensor(v, dtype=torch.float32) for v in (box[:, 0], box[:, 1] - box[:, 0]))
    unit = {f"u{k}": (0.0, 1.0) for k in range(3)}

    def dead_zone(u):
        d = u - 0.5
        r = d.norm(dim=1, keepdim=True)
        return lo + span * (0.5 + 1.2 * d * torch.relu(r - 0.25) / r).clamp(0.0, 1.0)

    truth = np.array([1.3, 1.7, 0.4])
    y = xr.DataArray(decay(truth), dims="obs")
    kw = {"transform": dead_zone, "hidden": (32,), "lr": 3e-3}
    stuck = TNNA(kernel_surrogate, unit, epochs=100, **kw)
    stuck.fit(y)
    assert stuck.misfit_history[-1, 0] == stuck.misfit_history[0, 0]  # not one step off the plateau
    tn = TNNA(kernel_surrogate, unit, epochs=300, starts=4, init="uniform", seed=1, **kw)
    est = tn.fit(y)
    assert tn.nfev == 1200 and tn.estimates.dims == ("start", "param") and tn.start_misfit.shape == (4, 1)
    np.testing.assert_array_equal(est, tn.estimates[np.argmin(tn.start_misfit[:, 0])])
    assert tn.misfit_history[-1, 0] == tn.start_misfit.min() < 1e-2 * stuck.misfit_history[0, 0]
    np.testing.assert_allclose(dead_zone(torch.as_tensor(est.values[None], dtype=torch.float32))[0], truth, atol=0.06)
    # every network starts near its draw (the output bias); the weights add a little
    first = np.stack([TNNA(kernel_surrogate, unit, epochs=1, init=u, **kw).fit(y) for u in tn.init])
    assert np.abs(first - tn.init).max() < 0.1
    assert np.abs(tn.estimates.values - tn.init).max() > 0.1  # and moves from there


def test_tnna_errors(kernel_surrogate, data):
    with pytest.raises(RuntimeError, match="not fitted"):
        TNNA(Surrogate("mlp"), BOUNDS)
    tn = TNNA(kernel_surrogate, BOUNDS, epochs=2)
    with pytest.raises(ValueError, match=r"y_obs lacks the surrogate's dims \[.obs.\]"):
        tn.fit(xr.DataArray(np.zeros(12), dims="time"))
    with pytest.raises(ValueError, match="known"):
        TNNA(kernel_surrogate, BOUNDS, known=(np.ones((1, 2)), [1.0]))
    train, _ = data
    with pytest.raises(ValueError, match=r"pretrain params 'param' labels .* missing \['c'\]"):
        TNNA(kernel_surrogate, BOUNDS, pretrain=(train.params[:, :2], train.output))
    with pytest.raises(ValueError, match="bounds have 3"):
        TNNA(kernel_surrogate, BOUNDS, pretrain=(train.params[:, :2].drop_vars("param"), train.output))
    with pytest.raises(ValueError, match="samples"):
        TNNA(kernel_surrogate, BOUNDS, pretrain=(train.params, train.output[:10]))
    with pytest.raises(TypeError, match="DataArrays"):
        TNNA(kernel_surrogate, BOUNDS, pretrain=(train.params.values, train.output))
    with pytest.raises(ValueError, match="starts must be"):
        TNNA(kernel_surrogate, BOUNDS, starts=0)
    with pytest.raises(ValueError, match=r"init needs shape \(3,\) or \(starts=2, 3\)"):
        TNNA(kernel_surrogate, BOUNDS, starts=2, init=np.ones((3, 3)))
    with pytest.raises(ValueError, match="inside the bounds"):
        TNNA(kernel_surrogate, BOUNDS, init=[1.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="'uniform'"):
        TNNA(kernel_surrogate, BOUNDS, init="normal")
    with pytest.raises(ValueError, match="pass one"):
        TNNA(kernel_surrogate, BOUNDS, init="uniform", pretrain=(train.params, train.output))


def test_objective_matches_surrogate(kernel_surrogate):
    truth = np.array([1.3, 1.7, 0.4])
    f = objective(kernel_surrogate, xr.DataArray(decay(truth), dims="obs"))
    vals = f(np.array([truth, [0.6, 0.6, -0.9]]))
    assert vals[0] < 1e-4 < vals[1]


def test_clip_observations_to_the_training_range(kernel_surrogate):
    # one observation far outside the training outputs (scaled value 100, e.g. an arrival no
    # training run produced): clipped, it counts as the top of the range, nothing more
    truth = np.array([1.3, 1.7, 0.4])
    y = decay(truth)
    lo, hi = kernel_surrogate.unscale_y(np.array([[0.0] * len(T), [1.0] * len(T)]))
    y_out, y_top = y.copy(), y.copy()
    y_out[3], y_top[3] = lo[3] + 100 * (hi[3] - lo[3]), hi[3]
    cand = np.array([truth, [0.6, 0.6, -0.9], [1.9, 2.9, 0.9]])
    clipped = objective(kernel_surrogate, xr.DataArray(y_out, dims="obs"), clip=True)(cand)
    np.testing.assert_allclose(clipped, objective(kernel_surrogate, xr.DataArray(y_top, dims="obs"))(cand), rtol=1e-6)
    assert objective(kernel_surrogate, xr.DataArray(y_out, dims="obs"))(cand)[0] > 1e3 * clipped[0]
    # TNNA minimises the same clipped misfit
    tn = TNNA(kernel_surrogate, BOUNDS, hidden=(32,), epochs=50, lr=3e-3, clip=True)
    tn.fit(xr.DataArray(y_out, dims="obs"))
    f = objective(kernel_surrogate, xr.DataArray(y_out, dims="obs"), clip=True)
    np.testing.assert_allclose(f(tn.param_history[[0, 49], 0]), tn.misfit_history[[0, 49], 0], rtol=1e-3)  # float32


# ------------------------------------------------------------------ metaheuristics
def sphere(X):
    return ((X - 0.3) ** 2).sum(1)


def rosenbrock(X):
    return ((1 - X[:, :-1]) ** 2 + 100 * (X[:, 1:] - X[:, :-1] ** 2) ** 2).sum(1)


def rastrigin(X):
    return 10 * X.shape[1] + (X**2 - 10 * np.cos(2 * np.pi * X)).sum(1)


@pytest.mark.parametrize("method", ["ga", "pso", "de", "sa"])
def test_metaheuristics_find_optimum(method):
    b4 = [(-2.0, 2.0)] * 4
    r = minimize(sphere, b4, method, pop=40, max_iter=150, seed=0)
    np.testing.assert_allclose(r.x, 0.3, atol=0.05)
    assert r.nfev == r.nfev_history[-1] and len(r.history) == 150
    assert np.all(np.diff(r.history) <= 0)  # best-so-far never worsens
    r = minimize(rastrigin, [(-5.12, 5.12)] * 2, method, pop=60, max_iter=200, seed=1)
    assert r.fun < 1.0  # the global basin (local minima are >= 1)
    if method in ("de", "pso"):
        r = minimize(rosenbrock, [(-2.0, 2.0)] * 2, method, pop=40, max_iter=300, seed=0)
        np.testing.assert_allclose(r.x, 1.0, atol=0.05)


def test_minimize_errors():
    with pytest.raises(ValueError, match="unknown method"):
        minimize(sphere, [(0, 1)], "cmaes")
    with pytest.raises(ValueError, match="returned"):
        minimize(lambda X: np.zeros(3), [(0, 1)], "de", pop=5, max_iter=2)


# ------------------------------------------------------------------ labels, not positions
REVERSED = dict(reversed(BOUNDS.items()))  # {"c": ..., "b": ..., "a": ...}
TRUTH = np.array([1.3, 1.7, 0.4])
OBS = [f"t{k}" for k in range(len(T))]
TNNA_KW = {"hidden": (32,), "epochs": 60, "lr": 3e-3}


@pytest.fixture(scope="module")
def labeled_surrogate(data):
    """A kernel surrogate whose outputs are labeled obs = t0 ... t11."""
    train, _ = data
    return Surrogate("kernel", alpha=1e-5, gamma=0.1).fit(train.params, train.output.assign_coords(obs=OBS))


def y_labeled(theta=TRUTH):
    return xr.DataArray(decay(theta), dims="obs", coords={"obs": OBS})


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


def test_tnna_aligns_bounds_by_label(kernel_surrogate, data):
    train, _ = data
    y = xr.DataArray(decay(TRUTH), dims="obs")
    ref = TNNA(kernel_surrogate, BOUNDS, **TNNA_KW).fit(y)
    assert list(ref.param.values) == ["a", "b", "c"]
    for bounds in (REVERSED, as_bounds(REVERSED), list(BOUNDS.values())):  # unlabeled: the surrogate's order
        xr.testing.assert_identical(TNNA(kernel_surrogate, bounds, **TNNA_KW).fit(y), ref)
    # pretraining pairs are matched by their param labels too
    pre = {"pretrain": (train.params, train.output), "pretrain_epochs": 5}
    warm = TNNA(kernel_surrogate, BOUNDS, **TNNA_KW, **pre).fit(y)
    pre["pretrain"] = (train.params.isel(param=[2, 1, 0]), train.output)
    xr.testing.assert_identical(TNNA(kernel_surrogate, REVERSED, **TNNA_KW, **pre).fit(y), warm)
    with pytest.raises(ValueError, match=r"bounds 'param'.*missing \['c'\].*unknown \['d'\]"):
        TNNA(kernel_surrogate, {"a": (0.5, 2.0), "b": (0.5, 3.0), "d": (-1.0, 1.0)})
    with pytest.raises(ValueError, match="bounds give 2 parameters, the surrogate takes 3"):
        TNNA(kernel_surrogate, {"a": (0.5, 2.0), "b": (0.5, 3.0)})
    with pytest.raises(ValueError, match=r"pretrain params 'param'.*missing \['c'\]"):
        TNNA(kernel_surrogate, BOUNDS, pretrain=(train.params.assign_coords(param=["a", "b", "x"]), train.output))


def test_positional_arguments_follow_the_surrogate_order(kernel_surrogate):
    # init, prior and known given as plain arrays are in the surrogate's order; with bounds
    # listed in another order they would be ambiguous, so that is an error, not a guess
    y = xr.DataArray(decay(TRUTH), dims="obs")
    init = xr.DataArray([1.0, 1.0, 0.0], dims="param", coords={"param": ["a", "b", "c"]})
    ref = TNNA(kernel_surrogate, BOUNDS, init=init, **TNNA_KW).fit(y)
    xr.testing.assert_identical(TNNA(kernel_surrogate, REVERSED, init=init.isel(param=[2, 0, 1]), **TNNA_KW).fit(y),
                                ref)
    xr.testing.assert_identical(TNNA(kernel_surrogate, BOUNDS, init=init.values, **TNNA_KW).fit(y), ref)
    for kw in ({"init": init.values}, {"prior": ([0.0, 0.0, -0.5], 1.0)}, {"known": ([[1.0, 0.0, 1.0]], [1.7])}):
        TNNA(kernel_surrogate, BOUNDS, **kw)
        name = next(iter(kw))
        with pytest.raises(ValueError, match=rf"{name} .*surrogate's order \['a', 'b', 'c'\].*\['c', 'b', 'a'\]"):
            TNNA(kernel_surrogate, REVERSED, **kw)
    TNNA(kernel_surrogate, REVERSED, prior=(0.0, 1.0))  # scalars have no order


def test_tnna_and_objective_align_observations_by_label(labeled_surrogate):
    y = y_labeled()
    ref = TNNA(labeled_surrogate, BOUNDS, **TNNA_KW).fit(y)
    xr.testing.assert_identical(TNNA(labeled_surrogate, BOUNDS, **TNNA_KW).fit(y[::-1]), ref)
    # two scenarios stored (obs, scenario) with reversed obs labels
    ys = xr.concat([y, y_labeled([0.8, 2.5, -0.5])], "scenario")
    both = TNNA(labeled_surrogate, BOUNDS, **TNNA_KW).fit(ys)
    xr.testing.assert_identical(TNNA(labeled_surrogate, BOUNDS, **TNNA_KW).fit(ys.T[::-1]), both)
    M = np.array([TRUTH, [0.6, 0.6, -0.9]])
    np.testing.assert_array_equal(objective(labeled_surrogate, y[::-1])(M), objective(labeled_surrogate, y)(M))
    # sigma as a DataArray is matched by label as well
    sigma = xr.DataArray(np.linspace(0.5, 2.0, len(T)), dims="obs", coords={"obs": OBS})
    np.testing.assert_array_equal(objective(labeled_surrogate, y, sigma=sigma[::-1])(M),
                                  objective(labeled_surrogate, y, sigma=sigma.values)(M))
    with pytest.raises(ValueError, match=r"y_obs 'obs'.*missing \['t11'\].*unknown \['t12'\]"):
        TNNA(labeled_surrogate, BOUNDS, **TNNA_KW).fit(y.assign_coords(obs=[*OBS[:-1], "t12"]))
    with pytest.raises(ValueError, match=r"y_obs 'obs'.*missing \['t11'\]"):
        objective(labeled_surrogate, y[:-1])


def test_minimize_aligns_bounds_with_the_objective(labeled_surrogate):
    fun = objective(labeled_surrogate, y_labeled())
    assert list(fun.param) == ["a", "b", "c"]
    ref = minimize(fun, BOUNDS, "de", pop=20, max_iter=40, seed=0)
    assert list(ref.param) == ["a", "b", "c"] and ref.fun < 1e-2
    for bounds in (REVERSED, as_bounds(REVERSED), np.array(list(BOUNDS.values()))):
        r = minimize(fun, bounds, "de", pop=20, max_iter=40, seed=0)
        np.testing.assert_array_equal(r.x, ref.x)
        assert list(r.param) == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"bounds 'param'.*missing \['c'\].*unknown \['d'\]"):
        minimize(fun, {"a": (0.5, 2.0), "b": (0.5, 3.0), "d": (-1.0, 1.0)}, pop=20, max_iter=2)
    with pytest.raises(ValueError, match="bounds give 2 parameters, the objective takes 3"):
        minimize(fun, [(0.5, 2.0), (0.5, 3.0)], pop=20, max_iter=2)
    # a plain function takes its bounds in their own order and labels
    r = minimize(sphere, {"u": (-1.0, 1.0), "v": (0.0, 1.0)}, pop=10, max_iter=5, seed=0)
    assert list(r.param) == ["u", "v"]


def test_nan_observations_are_an_error_or_masked(labeled_surrogate):
    y = y_labeled()
    gap = y.copy()
    gap[[3, 7]] = np.nan
    for call in (lambda v: objective(labeled_surrogate, v), lambda v: TNNA(labeled_surrogate, BOUNDS).fit(v)):
        with pytest.raises(ValueError, match=r"y_obs is NaN at obs='t3', obs='t7'.*mask_nan=True"):
            call(gap)
        with pytest.raises(ValueError, match=r"y_obs is inf at obs='t5'"):
            call(y.where(y.obs != "t5", np.inf))
    # masked: the misfit leaves the two observations out (checked against the surrogate's prediction)
    M = np.array([TRUTH, [0.6, 0.6, -0.9]])
    keep = np.isfinite(gap.values)
    expected = ((labeled_surrogate.scale_y(y.values) - labeled_surrogate.predict_scaled(M)) ** 2)[:, keep].sum(1)
    np.testing.assert_allclose(objective(labeled_surrogate, gap, mask_nan=True)(M), expected, rtol=2e-4, atol=1e-5)
    est = TNNA(labeled_surrogate, BOUNDS, hidden=(64, 64), epochs=400, lr=3e-3, mask_nan=True).fit(gap)
    np.testing.assert_allclose(est.values, TRUTH, atol=0.08)
    with pytest.raises(ValueError, match=r"y_obs is inf at obs='t5'"):
        objective(labeled_surrogate, y.where(y.obs != "t5", np.inf), mask_nan=True)
    with pytest.raises(ValueError, match="no finite observation.*scenario=1"):
        TNNA(labeled_surrogate, BOUNDS, mask_nan=True).fit(xr.concat([y, y * np.nan], "scenario"))


def test_local_refine_aligns_bounds_by_label(data):
    import copy

    train, _ = data
    base = Surrogate("kernel", alpha=1e-5, gamma=0.1).fit(train.params, train.output)
    a, b = copy.deepcopy(base), copy.deepcopy(base)
    centre = xr.DataArray([1.2, 1.5, 0.3], dims="param", coords={"param": ["a", "b", "c"]})
    ra = local_refine(a, decay, centre.values, BOUNDS, n_local=6, seed=0)
    rb = local_refine(b, decay, centre.isel(param=[2, 1, 0]), REVERSED, n_local=6, seed=0)
    xr.testing.assert_identical(ra, rb)
    np.testing.assert_array_equal(a.predict_scaled(train.params.values[:5]), b.predict_scaled(train.params.values[:5]))
    with pytest.raises(ValueError, match=r"centre .*surrogate's order"):
        local_refine(base, decay, centre.values, REVERSED)
