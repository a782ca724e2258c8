"""basinsx.inverse.tnna: the tandem network (TNNA), its objective and local refinement."""

import warnings

import numpy as np
import pytest
import xarray as xr
from inverse_cases import BOUNDS, OBS, REVERSED, TRUTH, T, decay, decay_sets, kernel_fit, y_labeled

from basinsx.inverse import TNNA, Surrogate, as_bounds, local_refine, minimize, objective
from basinsx.inverse.tnna import _prepare
from basinsx.units import UnitsError

TNNA_KW = {"hidden": (32,), "epochs": 60, "lr": 3e-3}

torch = pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    return decay_sets()


@pytest.fixture(scope="module")
def kernel_surrogate(data):
    train, _ = data
    return kernel_fit(train)


@pytest.fixture(scope="module")
def labeled_surrogate(data):
    """A kernel surrogate whose outputs are labeled obs = t0 ... t11."""
    train, _ = data
    return kernel_fit(train, obs=OBS)


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
    with pytest.raises(ValueError, match="pretrain outputs 'sample' labels do not match the params'"):
        TNNA(kernel_surrogate, BOUNDS, pretrain=(train.params, train.output[:10]))
    outside = train.params.copy()
    outside[3, 0] = 2.5  # a > 2.0: before, clipped to the bound silently
    with pytest.raises(ValueError, match=r"pretrain params lie outside the bounds at \(sample=3, param='a'\)"):
        TNNA(kernel_surrogate, BOUNDS, pretrain=(outside, train.output))
    with pytest.raises(ValueError, match="pretrain params have 200 samples, outputs 10"):
        TNNA(kernel_surrogate, BOUNDS, pretrain=(train.params, train.output[:10].drop_vars("sample")))
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


def test_bounds_beyond_the_training_design_are_warned(kernel_surrogate):
    wide = {**BOUNDS, "a": (-2.0, 3.0)}  # trained on a in [0.5, 2.0]; before: extrapolated without a word
    line = r"beyond the surrogate's training design: a \[-2, 3\] \(trained on \[0.50\d*, 1.99\d*\]\)"
    with pytest.warns(UserWarning, match=line):
        TNNA(kernel_surrogate, wide)
    with pytest.warns(UserWarning, match=line):
        minimize(objective(kernel_surrogate, xr.DataArray(decay(TRUTH), dims="obs")), wide, "de", pop=8, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TNNA(kernel_surrogate, BOUNDS)  # the design's own bounds


def test_observations_are_taken_in_the_units_of_the_training_outputs(data):
    train, _ = data
    metres = Surrogate("kernel", alpha=1e-5, gamma=0.1).fit(train.params, train.output.assign_attrs(units="m"))
    y = xr.DataArray(decay(TRUTH), dims="obs", attrs={"units": "m"})
    M = np.array([TRUTH, [0.6, 0.6, -0.9]])
    ref = objective(metres, y)(M)
    # before: centimetres were taken as metres, the estimate went to a corner of the bounds
    np.testing.assert_allclose(objective(metres, (y * 100).assign_attrs(units="cm"))(M), ref, rtol=1e-12)
    np.testing.assert_allclose(metres.score(train.params, (train.output * 100).assign_attrs(units="cm"))["r2"],
                               metres.score(train.params, train.output)["r2"])
    with pytest.raises(UnitsError, match="'y_obs' is in 'degC', which cannot be converted to m"):
        objective(metres, y.assign_attrs(units="degC"))


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
    # and by scenario (before: by position, the weights moved to the other scenario)
    scenarios = ys.assign_coords(scenario=["s1", "s2"])
    sigmas = xr.DataArray(np.stack([sigma.values, sigma.values[::-1]]), dims=("scenario", "obs"),
                          coords={"scenario": ["s1", "s2"], "obs": OBS})
    by_label = _prepare(labeled_surrogate, scenarios, sigmas.isel(scenario=[1, 0]))[2]
    np.testing.assert_array_equal(by_label, _prepare(labeled_surrogate, scenarios, sigmas)[2])
    with pytest.raises(ValueError, match=r"sigma 'scenario' labels do not match y_obs's: missing \['s1', 's2'\]"):
        _prepare(labeled_surrogate, scenarios, sigmas.assign_coords(scenario=["a", "b"]))
    with pytest.raises(ValueError, match=r"y_obs 'obs'.*missing \['t11'\].*unknown \['t12'\]"):
        TNNA(labeled_surrogate, BOUNDS, **TNNA_KW).fit(y.assign_coords(obs=[*OBS[:-1], "t12"]))
    with pytest.raises(ValueError, match=r"y_obs 'obs'.*missing \['t11'\]"):
        objective(labeled_surrogate, y[:-1])


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
