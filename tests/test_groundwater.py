"""basinsx.groundwater against analytic solutions and mass balance."""

import numpy as np
import pytest

from basinsx.groundwater import Aquifer, conductivity, ogata_banks


def column(nx, max_dt, length=40.0):
    return Aquifer((1, nx), (1.0, length), porosity=0.25, dispersivity=(0.5, 0.05),
                   heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": 1.0}, max_dt=max_dt)


def test_linear_head_between_fixed_heads():
    aq = Aquifer((6, 30), (3.0, 15.0), heads={"left": 2.0, "right": 0.5})
    ds = aq.simulate(np.full((6, 30), 3.0), [1.0])
    expected = 2.0 - 1.5 * ds.x.values / 15.0
    np.testing.assert_allclose(ds["head"].values, np.broadcast_to(expected, (6, 30)), atol=1e-12)


def test_series_layers_harmonic_mean():
    # two halves in series: the flow equals that of the harmonic-mean conductivity
    K = np.ones((2, 20))
    K[:, 10:] = 4.0
    aq = Aquifer((2, 20), (1.0, 10.0), heads={"left": 1.0, "right": 0.0})
    _, qx, _ = aq.flow(K)
    k_eff = 1.0 / (0.5 / 1.0 + 0.5 / 4.0)
    np.testing.assert_allclose(qx.sum(0), k_eff * 1.0 / 10.0 * 1.0, rtol=1e-12)


def test_ogata_banks_first_order_convergence():
    v, D = 10.0 * (1.0 / 40.0) / 0.25, 0.5 * 10.0 * (1.0 / 40.0) / 0.25
    errs = []
    for nx, dt in ((100, 0.2), (200, 0.1), (400, 0.05)):
        aq = column(nx, dt)
        ds = aq.simulate(np.full((1, nx), 10.0), [20.0])
        c = ds.conc.values[0, 0]
        errs.append(np.abs(ogata_banks(ds.x.values, 20.0, v, D) - c).max())
        # upwind + backward Euler add v dx / 2 + v^2 dt / 2 of numerical dispersion
        d_num = D + v * aq.dx / 2 + v * v * dt / 2
        assert np.abs(ogata_banks(ds.x.values, 20.0, v, d_num) - c).max() < 0.02 * 100 / nx
    assert errs[1] < 0.65 * errs[0] and errs[2] < 0.65 * errs[1]


def test_mass_balance_and_non_negative_heterogeneous():
    rng = np.random.default_rng(0)
    K = np.exp(rng.normal(0.0, 1.0, (20, 40)))
    aq = Aquifer((20, 40), (10.0, 20.0), porosity=0.3, dispersivity=(0.2, 0.02), diffusion=1e-4,
                 heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": 2.0})
    ds = aq.simulate(K, np.arange(1.0, 11.0))
    assert float(ds.conc.min()) >= 0.0
    assert float(ds.conc.max()) <= 2.0 + 1e-9
    balance = ds.mass.values - ds.net_inflow.values - ds.attrs["clipped_mass"]
    assert np.abs(balance).max() <= 1e-9 * ds.mass.values.max()
    assert ds.attrs["clipped_mass"] < 1e-6 * ds.mass.values[-1]


def test_uniform_flow_has_no_transverse_spreading_without_cross_terms():
    aq = Aquifer((5, 30), (5.0, 30.0), heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": 1.0})
    ds = aq.simulate(np.full((5, 30), 5.0), [5.0, 10.0])
    np.testing.assert_allclose(ds.conc.values, ds.conc.values[:, :1, :].repeat(5, 1), atol=1e-12)
    assert ds.attrs["clipped_mass"] == 0.0


def test_wells_and_sources():
    aq = Aquifer((10, 20), (10.0, 20.0), heads={"left": 1.0, "right": 0.0},
                 wells={"a": (5.0, 5.0), "b": (15.2, 2.0)}, sources={(2.0, 5.0): 1.0})
    ds = aq.simulate(np.ones((10, 20)), [2.0, 4.0])
    assert ds.well_conc.dims == ("time", "well") and list(ds.well.values) == ["a", "b"]
    assert ds.well_head.sel(well="a") == ds["head"].sel(x=5.5, y=5.5)
    assert ds.conc.sel(x=2.5, y=5.5).values.tolist() == [1.0, 1.0]  # fixed-concentration cell
    obs = aq.observe(np.ones((10, 20)), [2.0, 4.0])
    assert obs.shape == (2 + 2 * 2,)


def test_conductivity_units():
    # 1e-12 m2 of water at 20 degC is about 0.85 m/d
    assert conductivity(1e-12) == pytest.approx(0.8476, rel=1e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": (0, 5)}, "shape"),
        ({"length": (1.0, -1.0)}, "length"),
        ({"heads": {}}, "fixed-head"),
        ({"heads": {"west": 1.0}}, "unknown sides"),
        ({"inflow_conc": {"top": 1.0}}, "fixed-head sides"),
        ({"porosity": 1.5}, "porosity"),
        ({"wells": [(50.0, 1.0)]}, "outside"),
    ],
)
def test_bad_input_raises(kwargs, match):
    base = {"shape": (4, 5), "length": (4.0, 5.0), "heads": {"left": 1.0, "right": 0.0}}
    with pytest.raises(ValueError, match=match):
        Aquifer(**{**base, **kwargs})


def test_bad_field_and_times():
    aq = Aquifer((4, 5), (4.0, 5.0), heads={"left": 1.0, "right": 0.0})
    with pytest.raises(ValueError, match="shape"):
        aq.simulate(np.ones((5, 4)), [1.0])
    with pytest.raises(ValueError, match="positive"):
        aq.simulate(-np.ones((4, 5)), [1.0])
    with pytest.raises(ValueError, match="increasing"):
        aq.simulate(np.ones((4, 5)), [2.0, 1.0])
