"""Given starting parameter sets (e.g. of similar basins) screened first by ``calibrate_basin(..., start=...)``."""

import numpy as np
import pytest
from test_calibration import MODEL, TRUE, LinearReservoir, rain

from basinsx.calibration.optimize import calibrate_basin


class Recording(LinearReservoir):
    """The linear reservoir, recording each run's parameters and whether it computed sensitivities."""

    def __init__(self):
        self.calls = []

    def run(self, theta, forcing, warmup=0, sensitivities=True):
        self.calls.append((np.array(theta, dtype=float), bool(sensitivities)))
        return super().run(theta, forcing, warmup, sensitivities)


def data():
    forcing = rain(300)
    return forcing, MODEL.run(TRUE, forcing, warmup=30)[0]


def test_start_points_are_screened_first_and_count_in_the_screening():
    model = Recording()
    forcing, obs = data()
    points = np.array([[0.5, 0.05], [1.2, 0.6]])
    res = calibrate_basin(model, forcing, obs, loss="nse", warmup=30, n_screen=6, start=points)
    assert [s for _, s in model.calls[:6]] == [False] * 6 and model.calls[6][1]
    np.testing.assert_allclose([t for t, _ in model.calls[:2]], points)
    assert res["n_plain"] == 6
    np.testing.assert_allclose(res["params"], TRUE, rtol=1e-3)


def test_a_single_start_at_the_optimum_needs_only_the_runs_to_confirm_it():
    model = Recording()
    forcing, obs = data()
    res = calibrate_basin(model, forcing, obs, loss="nse", warmup=30, n_screen=1, n_starts=1, start=TRUE)
    np.testing.assert_allclose(model.calls[0][0], TRUE)  # the one screened point is the start given
    np.testing.assert_allclose(model.calls[1][0], TRUE)  # and the gradient phase begins there
    np.testing.assert_allclose(res["params"], TRUE, rtol=1e-6)
    assert res["n_plain"] == 1 and res["n_evals"] < 10


@pytest.mark.parametrize(("start", "message"), [
    ([0.8], r"start must have shape \(2,\) or \(k, 2\)"),
    ([[0.8, 0.3, 1.0]], r"start must have shape \(2,\) or \(k, 2\)"),
    ([0.8, np.nan], r"start must be finite and within the bounds"),
    ([2.0, 0.3], r"start must be finite and within the bounds"),
])
def test_a_start_of_the_wrong_shape_or_outside_the_bounds_is_an_error(start, message):
    forcing, obs = data()
    with pytest.raises(ValueError, match=message):
        calibrate_basin(MODEL, forcing, obs, loss="nse", warmup=30, start=start)


def test_a_start_needs_the_screening():
    forcing, obs = data()
    with pytest.raises(ValueError, match="start needs n_screen >= 1"):
        calibrate_basin(MODEL, forcing, obs, loss="nse", warmup=30, n_screen=0, start=TRUE)


class Switched(LinearReservoir):
    """The linear reservoir with a switch parameter ``c``: the flow comes 3 days late where ``c < 0.6``; ``dq/dc = 0``.

    Like CemaNeige's ``cn_ctg``, which acts on the flow only through the day a threshold is reached.
    """

    params = ("b", "k", "c")
    bounds = {"b": (0.2, 1.5), "k": (0.01, 0.9), "c": (0.0, 1.0)}
    units = {"b": "1", "k": "d-1", "c": "1"}

    def run(self, theta, forcing, warmup=0, sensitivities=True):
        q, J = super().run(theta[:2], forcing, 0, True)
        lag = 0 if theta[2] >= 0.6 else 3
        q, J = np.roll(q, lag)[warmup:], np.roll(J, lag, axis=0)[warmup:]
        return q, (np.hstack([J, np.zeros((len(q), 1))]) if sensitivities else None)


def test_a_parameter_without_gradient_is_scanned_by_plain_runs_after_the_starts():
    model = Switched()
    forcing, obs = data()
    res = calibrate_basin(model, forcing, obs, loss="nse", warmup=30, n_screen=1, n_starts=1, start=[0.5, 0.05, 0.2])
    assert res["params"][2] >= 0.6  # the gradient never moves c: only the scan finds the other side of the switch
    np.testing.assert_allclose(res["params"][:2], TRUE, rtol=1e-3)
    assert res["n_plain"] == 1 + 11  # the one screened point, then 11 values of c


def test_no_scan_where_every_parameter_has_a_gradient():
    model = Recording()
    forcing, obs = data()
    calibrate_basin(model, forcing, obs, loss="nse", warmup=30, n_screen=4, start=[0.5, 0.05])
    assert [s for _, s in model.calls[4:]] == [True] * (len(model.calls) - 4)
