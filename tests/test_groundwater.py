"""basinsx.groundwater against analytic solutions and mass balance."""

import numpy as np
import pytest

from basinsx.groundwater import ADVECTION, Aquifer, conductivity, ogata_banks


def column(nx, max_dt, length=40.0, advection="upwind"):
    """1-D column, v = 1 m/d, D = 0.5 m2/d: grid Peclet number v dx / D = 2 dx."""
    return Aquifer((1, nx), (1.0, length), porosity=0.25, dispersivity=(0.5, 0.05),
                   heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": 1.0}, max_dt=max_dt, advection=advection)


def column_error(nx, courant, advection, t=20.0):
    """Largest deviation from Ogata-Banks at ``t`` (of c0) and the run; ``courant=None``: the default step."""
    aq = column(nx, None if courant is None else courant * 40.0 / nx, advection=advection)
    ds = aq.simulate(np.full((1, nx), 10.0), [t])
    return np.abs(ogata_banks(ds.x.values, t, 1.0, 0.5) - ds.conc.values[0, 0]).max(), ds


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


def test_upwind_ogata_banks_first_order_convergence():
    v, D = 10.0 * (1.0 / 40.0) / 0.25, 0.5 * 10.0 * (1.0 / 40.0) / 0.25
    errs = []
    for nx, dt in ((100, 0.2), (200, 0.1), (400, 0.05)):
        aq = column(nx, dt)
        ds = aq.simulate(np.full((1, nx), 10.0), [20.0])
        c = ds.conc.values[0, 0]
        errs.append(np.abs(ogata_banks(ds.x.values, 20.0, v, D) - c).max())
        # upwind + backward Euler add v dx / 2 + v^2 dt / 2 of numerical dispersion; at 400 cells (grid
        # Peclet 0.2) the dispersion number limits the step to 0.04 d
        assert ds.attrs["max_dt"] == pytest.approx(min(dt, 6.0 / (3 * D / aq.dx**2)))
        d_num = D + v * aq.dx / 2 + v * v * ds.attrs["max_dt"] / 2
        assert np.abs(ogata_banks(ds.x.values, 20.0, v, d_num) - c).max() < 0.02 * 100 / nx
    assert errs[1] < 0.65 * errs[0] and errs[2] < 0.65 * errs[1]


@pytest.mark.parametrize("advection, clip_share", [("upwind", 1e-12), ("mc", 1e-5)])
def test_mass_balance_and_non_negative_heterogeneous(advection, clip_share):
    # aT < aL: the centred cross-dispersion terms make small negative values on sharp fronts, which are
    # clipped; upwind smears the fronts (clipped 2e-15 of the mass), TVD keeps them (7e-6)
    rng = np.random.default_rng(0)
    K = np.exp(rng.normal(0.0, 1.0, (20, 40)))
    aq = Aquifer((20, 40), (10.0, 20.0), porosity=0.3, dispersivity=(0.2, 0.02), diffusion=1e-4,
                 heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": 2.0}, advection=advection)
    ds = aq.simulate(K, np.arange(1.0, 11.0))
    assert float(ds.conc.min()) >= 0.0
    assert float(ds.conc.max()) <= 2.0 + 1e-9
    assert ds.attrs["overshoot"] <= 1e-6 * 2.0
    # clipping adds mass over time: mass - net inflow grows from 0 to the clipped total
    gain = ds.mass.values - ds.net_inflow.values
    tol = 1e-9 * ds.mass.values.max()
    assert gain.min() >= -tol and np.all(np.diff(gain) >= -tol)
    assert abs(gain[-1] - ds.attrs["clipped_mass"]) <= tol
    assert ds.attrs["clipped_mass"] < clip_share * ds.mass.values[-1]


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
    # the source's solute is in the balance (before: mass - net_inflow was all of it)
    assert np.abs(ds.mass - ds.net_inflow - ds.attrs["clipped_mass"]).max() <= 1e-12 * float(ds.mass.max())
    np.testing.assert_allclose(ds.source_inflow, ds.net_inflow, rtol=1e-12)  # no inflow_conc: clean water enters
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
        ({"advection": "quickest"}, "advection='quickest'"),
        ({"heads": {"left": np.inf, "right": 0.0}}, "heads must be finite"),  # before: all-NaN heads
        ({"heads": {"left": np.nan, "right": 0.0}}, "heads must be finite"),
        ({"inflow_conc": {"left": np.nan}}, "inflow_conc must be finite"),
        ({"porosity": np.nan}, "porosity"),
        ({"max_dt": np.nan}, "max_dt"),
        ({"dispersivity": 1.0}, r"dispersivity must be \(longitudinal, transverse\)"),
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


# ---- flux-limited (TVD) advection ---------------------------------------------------------------
@pytest.mark.parametrize("nx", [40, 80, 160])  # grid Peclet 2, 1, 0.5
@pytest.mark.parametrize("courant", [None, 0.5, 0.25, 0.1])
def test_tvd_default_matches_ogata_banks(nx, courant):
    err, ds = column_error(nx, courant, "mc")
    if courant is None:  # the default step is Courant 1 in 1-D (exact translation by the advective step)
        assert ds.attrs["max_dt"] == pytest.approx(40.0 / nx)
    assert ds.attrs["advection"] == "mc" and err < 0.01
    assert ds.attrs["undershoot"] == 0.0 and ds.attrs["overshoot"] <= 1e-6 and ds.attrs["clipped_mass"] == 0.0


def test_tvd_second_order_where_upwind_is_first():
    # Courant 0.25, grid Peclet 2 -> 1: TVD error 0.0050 -> 0.0015 (order 1.7); upwind 0.100 -> 0.063 (order 0.7)
    order = {}
    for adv in ("mc", "upwind"):
        e1, _ = column_error(40, 0.25, adv)
        e2, _ = column_error(80, 0.25, adv)
        order[adv] = np.log2(e1 / e2)
    assert order["mc"] > 1.5 and order["upwind"] < 1.0
    # the upwind column of the issue (grid Peclet 0.5, Courant 1) misses by 0.05 of c0; TVD by 0.0012
    assert column_error(160, 1.0, "upwind")[0] > 0.05 > 40 * column_error(160, None, "mc")[0]


@pytest.mark.parametrize("advection", [a for a in ADVECTION if a != "upwind"])
def test_tvd_bounded_and_conservative_heterogeneous(advection):
    # aL = aT: no cross-dispersion, so any value outside [0, max c_in] would come from the advection
    rng = np.random.default_rng(1)
    K = np.exp(rng.normal(0.0, 1.5, (12, 24)))
    aq = Aquifer((12, 24), (6.0, 12.0), porosity=np.clip(rng.normal(0.3, 0.05, (12, 24)), 0.1, 0.5),
                 dispersivity=(0.05, 0.05), heads={"left": 1.0, "top": 1.0, "right": 0.0},
                 inflow_conc={"left": 2.0, "top": 0.5}, advection=advection)
    ds = aq.simulate(K, np.arange(0.5, 6.0, 0.5))
    assert ds.attrs["undershoot"] <= 1e-6 * 2.0 and ds.attrs["overshoot"] <= 1e-6 * 2.0
    assert ds.attrs["clipped_mass"] == 0.0
    assert np.abs(ds.mass.values - ds.net_inflow.values).max() <= 1e-12 * ds.mass.values.max()
    assert np.all(np.diff(ds.mass.values) > 0)  # solute keeps entering


def test_tvd_direction_symmetry_and_step_bound():
    # the same column along x (left to right) and along y (top to bottom) gives the same profile
    kw = {"porosity": 0.25, "dispersivity": (0.2, 0.02)}
    ax = Aquifer((1, 30), (1.0, 30.0), heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": 1.0}, **kw)
    ay = Aquifer((30, 1), (30.0, 1.0), heads={"top": 1.0, "bottom": 0.0}, inflow_conc={"top": 1.0}, **kw)
    cx = ax.simulate(np.full((1, 30), 5.0), [4.0, 9.0]).conc.values[:, 0, :]
    cy = ay.simulate(np.full((30, 1), 5.0), [4.0, 9.0]).conc.values[:, ::-1, 0]
    np.testing.assert_allclose(cx, cy, atol=1e-13)
    # an explicit step larger than the stable one is reduced to it: Courant 1 here (v = 2/3 m/d)
    big = Aquifer((1, 30), (1.0, 30.0), heads={"left": 1.0, "right": 0.0}, max_dt=10.0, **kw)
    assert big.simulate(np.full((1, 30), 5.0), [9.0]).attrs["max_dt"] == pytest.approx(1.5)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 1), (2, 3)])
def test_tvd_tiny_grids(shape):
    aq = Aquifer(shape, (1.0, 1.0), dispersivity=(0.0, 0.0), heads={"left": 1.0, "right": 0.0},
                 inflow_conc={"left": 1.0})
    ds = aq.simulate(np.ones(shape), [0.5, 5.0])
    assert ds.attrs["undershoot"] == 0.0 and ds.attrs["overshoot"] <= 1e-12
    np.testing.assert_allclose(ds.conc.values[-1], 1.0, atol=1e-9)  # flushed with the inflow water
    np.testing.assert_allclose(ds.mass.values, ds.net_inflow.values, rtol=1e-12)


def test_tvd_step_bound_is_needed_where_flow_leaves_through_two_faces():
    # diagonal uniform flow; the centre cell holds a little solute between clean upstream and full
    # downstream neighbours, so both outflow faces are limited at phi = 2 r (MC): one step of max_dt
    # (Courant 1 - 1/sqrt(2) per face) stays >= 0, one of Courant 1/2 per face (1 / throughput) does not
    from basinsx.groundwater import _Advection

    q, theta = 0.3, 0.25
    qx, qy = np.full((3, 4), q), np.full((4, 3), q)
    c = np.array([[0.0, 0.0, 0.0], [0.0, 1e-3, 1.0], [0.0, 1.0, 1.0]]).ravel()
    adv = _Advection(qx, qy, np.full((3, 3), theta), 1.0, 1.0, {}, "mc")
    dt = adv.max_dt()
    assert q * dt / theta == pytest.approx(1.0 - 1.0 / np.sqrt(2.0))
    low = min(adv.step(c, dt)[0].min(), adv.step(c, 0.5 * dt)[0].min())
    assert low >= -1e-15
    assert adv.step(c, 0.5 * theta / q)[0][4] < -1e-4


def test_fields_are_taken_by_their_labels():
    import xarray as xr

    aq = Aquifer((20, 20), (10.0, 10.0), heads={"left": 1.0, "right": 0.0})
    K = xr.DataArray(np.where(np.arange(20) < 10, 100.0, 1.0) * np.ones((20, 1)), dims=("y", "x"))
    ref = aq.simulate(K, [1.0])
    xr.testing.assert_identical(aq.simulate(K.T, [1.0]), ref)  # before: the field used transposed
    np.testing.assert_array_equal(aq.flow(K.T)[0], aq.flow(K)[0])
    # a north-up raster (y descending) is the same field; other coordinates are another grid
    labeled = (K * np.linspace(1.0, 3.0, 20)[:, None]).assign_coords(y=aq.y, x=aq.x)
    xr.testing.assert_identical(aq.simulate(labeled.isel(y=slice(None, None, -1)), [1.0]),
                                aq.simulate(labeled, [1.0]))  # before: the field used upside down
    with pytest.raises(ValueError, match=r"K's y coordinates .* are not the grid's cell centres"):
        aq.simulate(labeled.assign_coords(y=aq.y + 100.0), [1.0])
    wells = {"w0": (5.0, 2.0), "w1": (5.0, 8.0)}
    porosity = xr.DataArray(np.where(np.arange(20) < 10, 0.1, 0.4)[:, None] * np.ones((1, 20)), dims=("y", "x"),
                            coords={"y": aq.y, "x": aq.x})
    run = {"heads": {"left": 1.0, "right": 0.0}, "inflow_conc": {"left": 1.0}, "wells": wells}
    up = Aquifer((20, 20), (10.0, 10.0), porosity=porosity, **run).simulate(K, [2.0])
    down = Aquifer((20, 20), (10.0, 10.0), porosity=porosity[::-1], **run).simulate(K, [2.0])
    xr.testing.assert_identical(down, up)  # before: the porosity used upside down (well_conc swapped)
    k = xr.DataArray(np.full((3, 4), 1e-12), dims=("y", "x")).chunk()
    out = conductivity(k)
    assert out.chunks is not None and out.dims == ("y", "x")  # before: computed, labels dropped
    np.testing.assert_allclose(out.values, conductivity(1e-12))
    with pytest.raises(ValueError, match="permeability must be positive"):
        conductivity(-1e-12)


# ---- units, time units, sources' mass, the dispersion step limit, messages ---------------------------
def _labelled(aq, values, units):
    import xarray as xr

    return xr.DataArray(np.broadcast_to(values, aq.shape).copy(), dims=("y", "x"), coords={"y": aq.y, "x": aq.x},
                        attrs={"units": units})


def test_K_units_are_read_and_converted():
    from basinsx.units import UnitsError

    aq = Aquifer((1, 20), (1.0, 10.0), heads={"left": 1.0, "right": 0.0})
    ref = aq.flow(np.ones((1, 20)))[1]  # 1 m/d: a Darcy flux of 0.1 m/d
    for value, units in [(1.0, "m d-1"), (1.0, "m/day"), (1 / 86400, "m s-1"), (100 / 86400, "cm s-1")]:
        np.testing.assert_allclose(aq.flow(_labelled(aq, value, units))[1], ref, rtol=1e-12)  # before: 1.2e-6 m/d
    np.testing.assert_allclose(aq.flow(_labelled(aq, 1.0, ""))[1], ref)  # no units: m/d, as documented
    for units in ("m2", "mD", "darcy"):  # a permeability given as K (before: used as 1e-12 m/d)
        with pytest.raises(UnitsError, match=rf"K is in '{units}'.*permeability.*conductivity\(\)"):
            aq.flow(_labelled(aq, 1e-12, units))
    for units in ("m", "m3 s-1", "kg"):
        with pytest.raises(UnitsError, match="'K'.*m d-1"):
            aq.simulate(_labelled(aq, 1.0, units), [1.0])


def test_conductivity_reads_the_permeability_units():
    import xarray as xr

    from basinsx.units import UnitsError, parse

    assert parse("mD") == (9.869233e-16, {"L": 2}) and parse("darcy") == (9.869233e-13, {"L": 2})

    def k(value, units):
        return xr.DataArray(np.full((2, 3), value), dims=("y", "x"), attrs={"units": units})

    ref = conductivity(9.869233e-14)  # 100 mD, about 0.0837 m/d
    for value, units in [(100.0, "mD"), (0.1, "darcy"), (100.0, "millidarcy"), (9.869233e-14, "m2"),
                         (9.869233e-10, "cm2"), (9.869233e-14, "")]:
        out = conductivity(k(value, units))  # before: 100 mD gave 8.5e13 m/d
        np.testing.assert_allclose(out.values, ref, rtol=1e-12)
        assert out.attrs["units"] == "m d-1"
    with pytest.raises(UnitsError, match=r"permeability.*'m d-1'.*an area"):
        conductivity(conductivity(k(1e-12, "m2")))  # before: its own output accepted (7e11 m/d)
    with pytest.raises(UnitsError, match=r"permeability.*'D'.*an area"):
        conductivity(k(1.0, "D"))  # D is a day; a darcy is spelled 'darcy'


def test_times_in_other_units_are_converted_to_days():
    import xarray as xr

    from basinsx.units import UnitsError

    aq = Aquifer((1, 20), (1.0, 20.0), porosity=0.25, dispersivity=(0.5, 0.05),
                 heads={"left": 1.0, "right": 0.0}, inflow_conc={"left": 1.0})
    K = np.full((1, 20), 10.0)
    ref = aq.simulate(K, [1.0, 2.0])
    for times in (np.array([24, 48], "timedelta64[h]"), np.array([86400, 172800], "timedelta64[s]"),
                  [np.timedelta64(1, "D"), np.timedelta64(2, "D")],
                  xr.DataArray([86400.0, 172800.0], dims="time", attrs={"units": "s"}),
                  xr.DataArray([24.0, 48.0], dims="time", attrs={"units": "hours"}),
                  xr.DataArray([1.0, 2.0], dims="time", attrs={"units": "d"}),
                  xr.DataArray(np.array([1, 2], "timedelta64[D]"), dims="time")):
        xr.testing.assert_identical(aq.simulate(K, times), ref)  # before: 48 h run as 48 d
    assert ref.time.attrs["units"] == "d"
    with pytest.raises(UnitsError, match="'times'.*'m'.*d"):
        aq.simulate(K, xr.DataArray([1.0, 2.0], dims="time", attrs={"units": "m"}))
    with pytest.raises(ValueError, match="times.*dates"):
        aq.simulate(K, np.array(["2000-01-02"], "datetime64[D]"))


@pytest.mark.parametrize("advection", ["mc", "upwind"])
def test_mass_from_sources_is_in_the_balance(advection):
    # a fixed-concentration cell adds solute (and a clean one inside a plume removes it); the mass it adds
    # is in net_inflow (and, on its own, in source_inflow): before, mass - net_inflow was 0.57 .. 2.4
    aq = Aquifer((10, 20), (10.0, 20.0), porosity=0.3, dispersivity=(0.1, 0.01), heads={"left": 1.0, "right": 0.0},
                 inflow_conc={"left": 0.5}, sources={(5.0, 5.0): 1.0, (12.0, 2.0): 0.0, (0.2, 9.9): 2.0},
                 advection=advection)
    ds = aq.simulate(np.ones((10, 20)), [5.0, 10.0, 40.0])
    balance = ds.mass.values - ds.net_inflow.values - ds.attrs["clipped_mass"]
    assert np.abs(balance).max() <= 1e-12 * ds.mass.values.max()
    assert ds.source_inflow.values[-1] > 0.5 and ds.source_inflow.dims == ("time",)
    no_sources = Aquifer((10, 20), (10.0, 20.0), porosity=0.3, dispersivity=(0.1, 0.01),
                         heads={"left": 1.0, "right": 0.0}, advection=advection)
    assert "source_inflow" not in no_sources.simulate(np.ones((10, 20)), [5.0])


@pytest.mark.parametrize("advection", ["mc", "upwind"])
def test_step_is_limited_by_the_dispersion_number(advection):
    from scipy.special import erfc

    # diffusion from a c = 1 side without flow (one fixed-head side): erfc(x / 2 sqrt(Dm t))
    aq = Aquifer((1, 100), (1.0, 10.0), porosity=0.3, dispersivity=(0.5, 0.05), diffusion=0.01,
                 heads={"left": 1.0}, inflow_conc={"left": 1.0}, advection=advection)
    K = np.ones((1, 100))
    exact = erfc(aq.x / (2 * np.sqrt(0.01 * 100.0)))
    one = aq.simulate(K, [100.0])
    daily = aq.simulate(K, np.arange(1.0, 101.0))
    # dispersion number (Dm / dx^2 + 2 Dm / dx^2 at the inflow side) dt <= 6: dt <= 2 d
    # (before: one step of 100 d, error 0.123; upwind: max_dt 5.4e12 d from round-off velocities)
    assert one.attrs["max_dt"] == pytest.approx(2.0)
    assert np.abs(one.conc.values[-1, 0] - exact).max() < 0.004
    assert np.abs(one.conc.values[-1, 0] - daily.conc.values[-1, 0]).max() < 0.003
    # nothing disperses: nothing limits the step but the output times
    still = Aquifer((1, 10), (1.0, 10.0), dispersivity=(0.0, 0.0), heads={"left": 1.0}, advection=advection)
    assert still.simulate(np.ones((1, 10)), [3.0, 7.0]).attrs["max_dt"] == 7.0


@pytest.mark.parametrize("advection", [a for a in ADVECTION if a != "upwind"])
def test_tvd_bounded_with_variable_porosity_and_no_dispersion(advection):
    # the Lax-Wendroff correction's Courant number is the upwind cell's (before: of the two cells' mean
    # porosity, which overshot c_in by 6.6e-5 before clipping where the upwind cell is the smaller)
    rng = np.random.default_rng(0)
    K = np.exp(rng.normal(0, 1, (12, 24)))
    aq = Aquifer((12, 24), (6.0, 12.0), porosity=rng.uniform(0.2, 0.4, (12, 24)), dispersivity=(0.0, 0.0),
                 heads={"left": 0.0, "right": 1.0}, inflow_conc={"right": 1.0}, advection=advection)
    ds = aq.simulate(K, [1.0, 3.0, 7.0, 15.0])
    assert ds.attrs["overshoot"] <= 1e-12 and ds.attrs["undershoot"] <= 1e-12
    assert np.abs(ds.mass.values - ds.net_inflow.values).max() <= 1e-12 * ds.mass.values.max()


def test_porosity_units_are_read():
    from basinsx.units import UnitsError

    base = {"shape": (1, 10), "length": (1.0, 10.0), "heads": {"left": 1.0, "right": 0.0}}
    grid = Aquifer(**base)
    assert Aquifer(**base, porosity=_labelled(grid, 30.0, "%")).porosity.max() == pytest.approx(0.3)
    assert Aquifer(**base, porosity=_labelled(grid, 0.3, "%")).porosity.max() == pytest.approx(0.003)  # before: 0.3
    assert Aquifer(**base, porosity=_labelled(grid, 0.3, "1")).porosity.max() == 0.3
    with pytest.raises(ValueError, match=r"porosity must lie in \(0, 1\].*'%'"):
        Aquifer(**base, porosity=30.0)
    with pytest.raises(UnitsError, match="'porosity'.*'m'"):
        Aquifer(**base, porosity=_labelled(grid, 0.3, "m"))


def test_errors_say_what_is_wrong():
    aq = Aquifer((4, 10), (4.0, 10.0), heads={"left": 1.0, "right": 0.0})
    x = aq.x.copy()
    x[3] += 0.2
    K = _labelled(aq, 1.0, "m d-1").assign_coords(x=x)
    with pytest.raises(ValueError, match=r"K's x coordinates .*spacing .*not uniform.*x = 3\.7.*grid's is 3\.5"):
        aq.flow(K)
    with pytest.raises(ValueError, match=r"K's y coordinates \(.*3 cells.*grid's cell centres \(.*4 cells"):
        aq.flow(_labelled(aq, 1.0, "m d-1").isel(y=slice(0, 3)))
    for kw in ({"heads": {"left": np.linspace(1.0, 2.0, 4), "right": 0.0}},
               {"inflow_conc": {"left": [1.0, 1.0, 0.0, 0.0]}}):  # before: a bare TypeError
        name = next(iter(kw))
        with pytest.raises(ValueError, match=rf"{name}\['left'\] must be one number for the whole side"):
            Aquifer((4, 10), (4.0, 10.0), **{"heads": {"left": 1.0, "right": 0.0}, **kw})


def test_concentrations_given_must_be_finite_and_not_negative():
    # before: a NaN or negative source was taken (and clipped at every step); a negative inflow concentration too
    base = {"heads": {"left": 1.0, "right": 0.0}}
    for kw, match in [({"sources": {(5.0, 2.0): np.nan}}, r"sources at \(5.0, 2.0\) must be a finite"),
                      ({"sources": {(5.0, 2.0): -1.0}}, r"sources at \(5.0, 2.0\) must be a finite"),
                      ({"inflow_conc": {"left": -0.5}}, r"inflow_conc\['left'\] must be a finite")]:
        with pytest.raises(ValueError, match=match):
            Aquifer((4, 10), (4.0, 10.0), **base, **kw)
