"""What ``Model.run`` and ``run_batch`` take: theta by name or by position, whole warm-up days, CemaNeige's dates."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import basinsx.models as bm

THETA = {"x1": 350.0, "x2": 0.5, "x3": 90.0, "x4": 1.7}
REVERSED = ["x4", "x3", "x2", "x1"]


def _forcing(n=400, seed=0):
    rng = np.random.default_rng(seed)
    day = np.arange(n)
    p = rng.gamma(0.5, 8.0, n) * (rng.random(n) < 0.5)
    e = np.clip(2.5 + 2.0 * np.sin(2 * np.pi * (day - 100) / 365.25), 0, None)
    t = 5.0 + 12.0 * np.sin(2 * np.pi * (day - 100) / 365.25) + rng.normal(0, 3.0, n)
    return np.vstack([p, e, t])


@pytest.fixture(scope="module")
def gr4j():
    m = bm.get("gr4j")
    f = _forcing()[:2]
    q, jac = m.run(np.array(list(THETA.values())), f)
    return m, f, q, jac


@pytest.mark.parametrize("theta", [
    pd.Series(THETA)[REVERSED],
    xr.DataArray([THETA[p] for p in REVERSED], dims="param", coords={"param": REVERSED}),
    dict(reversed(list(THETA.items()))),
    {k: np.asarray(v) for k, v in THETA.items()},
], ids=["Series", "DataArray", "dict", "dict-of-arrays"])
def test_labelled_theta_is_taken_by_name(gr4j, theta):
    # before: a Series or DataArray in another order was read by position (mean flow 180 instead of 0.1 mm/d)
    # and a dict raised "float() argument must be ... not 'dict'"
    m, f, q, jac = gr4j
    q2, jac2 = m.run(theta, f)
    np.testing.assert_array_equal(q2, q)
    np.testing.assert_array_equal(jac2, jac)  # columns stay in the order of m.params


@pytest.mark.parametrize("theta", [list(THETA.values()), tuple(THETA.values()), np.array(list(THETA.values())),
                                   pd.Series(list(THETA.values())), xr.DataArray(list(THETA.values()), dims="param")],
                         ids=["list", "tuple", "ndarray", "Series-without-names", "DataArray-without-names"])
def test_unlabelled_theta_is_taken_in_the_order_of_params(gr4j, theta):
    m, f, q, _ = gr4j
    np.testing.assert_array_equal(m.run(theta, f, sensitivities=False)[0], q)


@pytest.mark.parametrize(("theta", "match"), [
    ({"x1": 350.0, "x2": 0.5, "x3": 90.0}, r"theta lacks \['x4'\]"),
    ({**THETA, "x5": 0.3}, r"unexpected \['x5'\]"),
    (pd.Series([350.0, 0.5, 90.0, 1.7], index=["x1", "x2", "x3", "X4"]), r"lacks \['x4'\], unexpected \['X4'\]"),
    (pd.Series([350.0, 0.5, 90.0, 1.7, 2.0], index=["x1", "x2", "x3", "x4", "x1"]), r"names \['x1'\] more than once"),
    (xr.DataArray([1.0, 2.0, 3.0, 4.0], dims="p", coords={"param": ("p", ["x1", "x2", "x3", "y"])}),
     r"lacks \['x4'\], unexpected \['y'\]"),
])
def test_labelled_theta_with_missing_unknown_or_repeated_names_is_refused(gr4j, theta, match):
    m, f, _, _ = gr4j
    with pytest.raises(ValueError, match=f"gr4j parameters are \\('x1', 'x2', 'x3', 'x4'\\).*{match}"):
        m.run(theta, f)


@pytest.mark.parametrize(("theta", "match"), [
    (np.array([[350.0, 0.5], [90.0, 1.7]]), r"theta must be one-dimensional \(4 parameters .*\); got shape \(2, 2\)"),
    (np.array([[350.0, 0.5, 90.0, 1.7]]), r"got shape \(1, 4\)"),
    (350.0, r"got shape \(\)"),
    ([350.0, 0.5, 90.0], r"needs 4 parameters"),
])
def test_theta_that_is_not_one_vector_of_the_parameters_is_refused(gr4j, theta, match):
    # before: a (2, 2) theta was flattened and run
    m, f, _, _ = gr4j
    with pytest.raises(ValueError, match=match):
        m.run(theta, f)


def test_warmup_must_be_whole_days(gr4j):
    # before: warmup=10.7 was cut to 10 days silently (simulate refuses it)
    m, f, q, _ = gr4j
    theta = list(THETA.values())
    for warmup in (10.7, "10", True, 1e-3):
        with pytest.raises(ValueError, match=f"warmup must be a whole number of days; got {warmup!r}"):
            m.run(theta, f, warmup=warmup)
        with pytest.raises(ValueError, match="warmup must be a whole number of days"):
            m.run_batch(np.array([theta]), f[None], warmup=warmup)
    for warmup in (10, 10.0, np.int64(10), np.float64(10.0)):
        np.testing.assert_array_equal(m.run(theta, f, warmup=warmup, sensitivities=False)[0], q[10:])


def test_run_batch_takes_labelled_theta_by_name(gr4j):
    m, f, q, _ = gr4j
    forcing = np.stack([f, f])
    rows = [list(THETA.values()), [500.0, -1.0, 60.0, 2.5]]
    ref, jref = m.run_batch(np.array(rows), forcing)
    np.testing.assert_array_equal(ref[0], q)
    frame = pd.DataFrame(rows, columns=list(THETA))[REVERSED]
    da = xr.DataArray(np.array(rows)[:, ::-1], dims=("basin", "param"), coords={"param": REVERSED})
    for theta in (frame, da, da.T):
        q2, j2 = m.run_batch(theta, forcing)
        np.testing.assert_array_equal(q2, ref)
        np.testing.assert_array_equal(j2, jref)
    with pytest.raises(ValueError, match=r"lacks \['x1'\]"):
        m.run_batch(frame.drop(columns="x1"), forcing)


def _cn_model(**kw):
    return bm.get("gr4j", snow="cemaneige", hypsometry=np.linspace(200.0, 1500.0, 101), **kw)


DATES = np.arange("2001-01-01", 400, dtype="datetime64[D]")


@pytest.mark.parametrize(("dates", "match"), [
    (DATES[::-1], "dates must be daily and increasing: 2002-02-04 is followed by 2002-02-03"),
    (np.concatenate([DATES[:100], DATES[101:], DATES[-1:] + 1]), "2001-04-10 is followed by 2001-04-12"),
    (np.repeat(DATES[:200], 2), "2001-01-01 is followed by 2001-01-01"),
    (DATES[:399], r"dates must have one date per day of forcing \(400\); got \(399,\)"),
    (pd.date_range("2001-01-01", periods=400, freq="h").values, "2001-01-01 is followed by 2001-01-01"),
])
def test_cemaneige_dates_must_be_the_forcings_days(dates, match):
    # before: reversed or shifted dates were taken (the lapse rates of other days)
    m = _cn_model()
    f = _forcing()
    theta = list(THETA.values()) + [0.5, 3.0]
    q = m.run(theta, f, dates=DATES, sensitivities=False)[0]
    assert np.isfinite(q).all()
    with pytest.raises(ValueError, match=match):
        m.run(theta, f, dates=dates, sensitivities=False)
    with pytest.raises(ValueError, match=match):  # given to the layers, as a calibration does
        m.with_layers(m.layers.hypsometry, dates=dates).run(theta, f, sensitivities=False)
    # pandas dates and dates at noon are the same days
    for same in (pd.DatetimeIndex(DATES), DATES.astype("datetime64[s]") + np.timedelta64(12, "h")):
        np.testing.assert_array_equal(m.run(theta, f, dates=same, sensitivities=False)[0], q)


def test_layers_without_a_hypsometry_warn_when_more_than_one_is_asked_for():
    from basinsx.models.cemaneige import Layers

    with pytest.warns(UserWarning, match="no hypsometry: one layer instead of n_layers=3"):
        layers = Layers(None, 3)  # before: only with a station elevation
    assert layers.n_layers == 1
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Layers(None, 1).n_layers == 1


def test_get_with_n_layers_but_no_hypsometry_warns():
    # before: bm.get("gr4j", snow="cemaneige", n_layers=3) ran one layer without a word
    with pytest.warns(UserWarning, match="no hypsometry: one layer instead of n_layers=3"):
        m = bm.get("gr4j", snow="cemaneige", n_layers=3)
    assert m.layers.n_layers == 1
    with pytest.raises(ValueError, match="n_layers and station_elevation are CemaNeige's"):
        bm.get("gr4j", n_layers=3)
    with pytest.raises(ValueError, match="n_layers and station_elevation are CemaNeige's"):
        bm.get("gr4j", snow=True, station_elevation=300.0)
