"""Pore networks: analytic cubic case, Statoil reading, OpenPNM equality and round trip, errors."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from basinsx import porenet
from basinsx.porenet import (
    check_health,
    cones_and_cylinders,
    cubic,
    from_openpnm,
    from_statoil,
    hagen_poiseuille,
    permeability,
    to_openpnm,
    trim_disconnected,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rocks"
needs_rocks = pytest.mark.skipif(not (DATA / "statoil").exists(), reason="../shared/data/rocks not present")


def random_cubic(shape=(6, 5, 4), a=1e-4, seed=0):
    rng = np.random.default_rng(seed)
    net = cubic(shape, a)
    npore, nthroat = net.sizes["pore"], net.sizes["throat"]
    dp = rng.uniform(0.4, 0.8, npore) * a
    dt = rng.uniform(0.2, 0.35, nthroat) * a
    return cubic(shape, a, pore_diameter=dp, throat_diameter=dt)


@pytest.mark.parametrize("axis", ["x", "y", "z"])
@pytest.mark.parametrize("method", ["direct", "amg", "cg"])
def test_uniform_cubic_is_analytic(axis, method):
    a, g, mu = 2e-5, 3e-13, 1.2e-3
    net = cubic((7, 5, 4), a)
    res = permeability(net, g=g, axis=axis, mu=mu, dp=2.5, method=method)
    shape = dict(zip("xyz", (7, 5, 4)))
    others = np.prod([shape[k] for k in "xyz" if k != axis])
    assert float(res["flow_rate"]) == pytest.approx(others * g * 2.5 / (shape[axis] - 1), rel=1e-10)
    assert float(res["permeability"]) == pytest.approx(g * mu / a, rel=1e-10)
    assert res["permeability"].attrs["millidarcy"] == pytest.approx(g * mu / a / 9.869233e-16, rel=1e-10)
    # linear pressure profile between the faces
    x = net["pore_coords"].sel(xyz=axis).values
    expect = 2.5 * (1 - (x - x.min()) / (x.max() - x.min()))
    np.testing.assert_allclose(res["pressure"].values, expect, rtol=1e-9, atol=1e-12)


def test_mass_conservation_and_flow_signs():
    net = random_cubic()
    res = permeability(net, "spheres_and_cylinders")
    q = res["throat_flow"].values
    conns = net["throat_conns"].values
    div = np.bincount(conns[:, 0], q, net.sizes["pore"]) - np.bincount(conns[:, 1], q, net.sizes["pore"])
    interior = ~(net["pore_xmin"].values | net["pore_xmax"].values)
    assert np.abs(div[interior]).max() < 1e-10 * float(res["flow_rate"])
    assert div[net["pore_xmin"].values].sum() == pytest.approx(float(res["flow_rate"]), rel=1e-10)
    assert div[net["pore_xmax"].values].sum() == pytest.approx(-float(res["flow_rate"]), rel=1e-10)


def test_cubic_layout_and_labels():
    net = cubic((3, 4, 5), 1e-4)
    assert net.sizes["pore"] == 60 and net.sizes["throat"] == 2 * 4 * 5 + 3 * 3 * 5 + 3 * 4 * 4
    assert int(net["pore_xmin"].sum()) == 20 and int(net["pore_zmax"].sum()) == 12
    assert net.attrs["domain_size"] == pytest.approx([3e-4, 4e-4, 5e-4])
    np.testing.assert_allclose(net["throat_spacing"], 1e-4)
    np.testing.assert_allclose(net["conduit_length"].sum("conduit"), 1e-4)


def test_no_path_is_a_clear_error():
    net = cubic((6, 3, 3), 1e-4)
    # remove every x-throat between planes 2 and 3
    xs = net["pore_coords"].values[net["throat_conns"].values][:, :, 0]
    cut = np.flatnonzero(np.isclose(xs.min(axis=1), 2.5e-4) & np.isclose(xs.max(axis=1), 3.5e-4))
    broken = porenet.trim(net, throats=cut)
    with pytest.raises(ValueError, match="no path"):
        permeability(broken, g=1e-12)
    with pytest.raises(ValueError, match="no path"):
        trim_disconnected(broken)
    # flow along y still works on the same network
    assert float(permeability(broken, g=1e-12, axis="y")["permeability"]) > 0


def test_trim_disconnected_reports_and_removes():
    net = cubic((4, 3, 3), 1e-4)
    lone = porenet.make_network(np.r_[net["pore_coords"].values, [[9e-4, 9e-4, 9e-4], [9.5e-4, 9e-4, 9e-4]]],
                                np.r_[net["throat_conns"].values, [[36, 37]]], 5e-5, 2.5e-5,
                                faces={f: np.r_[net[f].values, False, False] for f in porenet.network.FACES},
                                attrs={k: net.attrs[k] for k in ("lattice_shape", "spacing")})
    assert check_health(lone)["disconnected_pores"].tolist() == [36, 37]
    with pytest.warns(UserWarning, match="trimmed 2 of 38 pores"):
        trimmed = trim_disconnected(lone)
    assert trimmed.sizes["pore"] == 36 and trimmed.sizes["throat"] == net.sizes["throat"]
    # floating clusters do not disturb the solve: same K, NaN pressure there
    res = permeability(lone, g=1e-12)
    assert float(res["permeability"]) == pytest.approx(float(permeability(net, g=1e-12)["permeability"]))
    assert np.isnan(res["pressure"].values[36:]).all()


def test_bad_input_errors():
    net = cubic((3, 3, 3), 1e-4)
    with pytest.raises(ValueError, match="axis"):
        permeability(net, g=1e-12, axis="w")
    with pytest.raises(ValueError, match="one value per throat"):
        permeability(net, g=np.ones(5))
    with pytest.raises(ValueError, match="positive"):
        permeability(net, g=-1.0)
    with pytest.raises(ValueError, match="unknown conductance model"):
        permeability(net, g="darcy")
    with pytest.raises(ValueError, match="missing variables"):
        permeability(net.drop_vars("pore_xmin"), g=1e-12)


@needs_rocks
def test_statoil_berea():
    net = from_statoil(DATA / "statoil" / "Berea")
    # 12545 links in the file, 447 of them to the reservoirs
    assert net.sizes["pore"] == 6298 and net.sizes["throat"] + net.attrs["boundary_throats_removed"] == 12545
    assert net.attrs["domain_size"] == pytest.approx([2.138e-3] * 3)
    assert net["pore_xmin"].sum() > 0 and net["pore_xmax"].sum() > 0
    x = net["pore_coords"].sel(xyz="x").values
    assert x[net["pore_xmin"].values].mean() < 0.1 * 2.138e-3 < x[net["pore_xmax"].values].mean() - 0.8 * 2.138e-3
    assert (net["conduit_length"] > 0).all() and (net["throat_conns"].diff("end") > 0).all()
    assert "pore_shape_factor" in net and "throat_clay_volume" in net
    with pytest.raises(FileNotFoundError):
        from_statoil(DATA / "statoil" / "Nothing")


@needs_rocks
def test_statoil_matches_openpnm_reader():
    op = pytest.importorskip("openpnm")
    pn = op.io.network_from_statoil(path=str(DATA / "statoil"), prefix="F42A")
    net = from_statoil(DATA / "statoil" / "F42A")
    np.testing.assert_allclose(net["pore_coords"].values, pn["pore.coords"])
    np.testing.assert_array_equal(net["pore_xmin"].values, pn["pore.inlets"])
    np.testing.assert_array_equal(net["pore_xmax"].values, pn["pore.outlets"])
    key = lambda c: np.lexsort(c.T[::-1])  # noqa: E731
    np.testing.assert_array_equal(net["throat_conns"].values[key(net["throat_conns"].values)],
                                  pn["throat.conns"][key(pn["throat.conns"])])


def _openpnm_rate(net, g, axis="x"):
    op = pytest.importorskip("openpnm")
    pn = to_openpnm(net)
    phase = op.phase.Phase(network=pn)
    phase["throat.hydraulic_conductance"] = g
    sf = op.algorithms.StokesFlow(network=pn, phase=phase)
    sf.set_value_BC(pores=pn.pores(f"{axis}min"), values=1.0)
    sf.set_value_BC(pores=pn.pores(f"{axis}max"), values=0.0)
    sf.run()
    return float(sf.rate(pores=pn.pores(f"{axis}min"))[0])


@pytest.mark.parametrize("model", ["spheres_and_cylinders", "cones_and_cylinders"])
def test_conductance_models_equal_openpnm(model):
    op = pytest.importorskip("openpnm")
    net = random_cubic(seed=3)
    pn = to_openpnm(net)
    pn.add_model(propname="throat.hydraulic_size_factors",
                 model=getattr(op.models.geometry.hydraulic_size_factors, model))
    phase = op.phase.Phase(network=pn)
    phase["pore.viscosity"] = 1.3e-3
    phase.add_model(propname="throat.hydraulic_conductance", model=op.models.physics.hydraulic_conductance.
                    hagen_poiseuille)
    ours = getattr(porenet, model)(net, mu=1.3e-3).values
    np.testing.assert_allclose(ours, phase["throat.hydraulic_conductance"], rtol=1e-12)


def test_hagen_poiseuille_equals_openpnm_generic_hydraulic():
    op = pytest.importorskip("openpnm")
    net = random_cubic(seed=4)
    pn = to_openpnm(net)
    d = net["pore_diameter"].values[net["throat_conns"].values]
    diam = np.stack([d[:, 0], net["throat_diameter"].values, d[:, 1]], axis=1)
    pn["throat.hydraulic_size_factors"] = np.pi * diam**4 / (128 * pn["throat.conduit_lengths"])
    phase = op.phase.Phase(network=pn)
    phase["pore.viscosity"] = 1e-3
    phase.add_model(propname="throat.hydraulic_conductance",
                    model=op.models.physics.hydraulic_conductance.hagen_poiseuille)
    np.testing.assert_allclose(hagen_poiseuille(net).values, phase["throat.hydraulic_conductance"], rtol=1e-12)


@pytest.mark.parametrize("axis", ["x", "z"])
def test_flow_rate_equals_openpnm_cubic(axis):
    net = random_cubic(seed=1)
    g = cones_and_cylinders(net).values
    q = _openpnm_rate(net, g, axis)
    assert float(permeability(net, g, axis=axis)["flow_rate"]) == pytest.approx(q, rel=1e-8)


@needs_rocks
@pytest.mark.parametrize("name", ["Berea", "F42A"])
def test_flow_rate_equals_openpnm_statoil(name):
    with pytest.warns(UserWarning, match="trimmed"):
        net = trim_disconnected(from_statoil(DATA / "statoil" / name))
    g = hagen_poiseuille(net).values
    q = _openpnm_rate(net, g)
    for method in ("direct", "amg"):
        assert float(permeability(net, g, method=method)["flow_rate"]) == pytest.approx(q, rel=1e-8)


def test_openpnm_round_trip():
    pytest.importorskip("openpnm")
    net = random_cubic(seed=2)
    net["pore_seed"] = ("pore", np.linspace(0, 1, net.sizes["pore"]))
    back = from_openpnm(to_openpnm(net))
    for v in net.data_vars:
        xr.testing.assert_allclose(back[v], net[v])
    assert back.attrs["domain_size"] == pytest.approx(net.attrs["domain_size"])
    assert back.attrs["lattice_shape"] == net.attrs["lattice_shape"]
    assert float(permeability(back, g=1e-12)["permeability"]) == pytest.approx(1e-12 * 1e-3 / 1e-4)


def test_from_openpnm_cubic_labels():
    op = pytest.importorskip("openpnm")
    pn = op.network.Cubic([4, 3, 3], spacing=1e-4)
    pn["pore.diameter"] = 5e-5
    pn["throat.diameter"] = 2e-5
    net = from_openpnm(pn)
    assert int(net["pore_xmin"].sum()) == 9 and int(net["pore_ymax"].sum()) == 12
    assert net.sizes["throat"] == pn.Nt


def test_from_porespy_small_image():
    ps = pytest.importorskip("porespy")
    im = np.asarray(ps.generators.blobs(shape=[36, 36, 36], porosity=0.4, blobiness=1.5, seed=1), bool)
    net = porenet.from_porespy(im, 1e-6)
    assert net.attrs["domain_size"] == pytest.approx([36e-6] * 3)
    assert net["pore_xmin"].any() and net["pore_xmax"].any()
    assert (net["throat_diameter"].values < net["pore_diameter"].values[net["throat_conns"].values].min(1)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = trim_disconnected(net)
    g = cones_and_cylinders(net).values
    assert float(permeability(net, g)["flow_rate"]) == pytest.approx(_openpnm_rate(net, g), rel=1e-8)


@pytest.fixture
def statoil_copy(tmp_path):
    """A writable copy of the F42A network files to break on purpose."""
    if not (DATA / "statoil").exists():
        pytest.skip("../shared/data/rocks not present")
    for f in (DATA / "statoil").glob("F42A_*.dat"):
        (tmp_path / f.name).write_text(f.read_text())
    return tmp_path


def _edit(path, edit):
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")


def _cut_200(lines):
    del lines[-200:]


def test_statoil_link_rows_are_checked_against_the_link1_header(statoil_copy):
    from basinsx.io.readers import FileFormatError

    full = from_statoil(statoil_copy / "F42A")
    # cutting both link files keeps them equal in length; only the header count shows the loss
    _edit(statoil_copy / "F42A_link1.dat", _cut_200)
    _edit(statoil_copy / "F42A_link2.dat", _cut_200)
    cut = "F42A_link1.dat: 2656 rows, but the F42A_link1.dat header announces 2856 throats"
    with pytest.raises(FileFormatError, match=cut):
        from_statoil(statoil_copy / "F42A")
    _edit(statoil_copy / "F42A_link1.dat", lambda lines: lines.__setitem__(0, "2656"))  # header made to agree
    assert from_statoil(statoil_copy / "F42A").sizes["throat"] < full.sizes["throat"]
    _edit(statoil_copy / "F42A_link2.dat", lambda lines: lines.pop())
    with pytest.raises(ValueError, match="F42A_link2.dat: 2655 rows, but the F42A_link1.dat header announces 2656"):
        from_statoil(statoil_copy / "F42A")


def _short_row(lines, k):
    lines[k] = " ".join(lines[k].split()[:-1])


@pytest.mark.parametrize("file, edit, message", [
    ("link2", lambda lines: _short_row(lines, 9), "line 10 has 7 fields, expected 8"),
    ("link1", lambda lines: _short_row(lines, 9), "line 10 has 5 fields, expected 6"),
    ("node2", lambda lines: _short_row(lines, -1), "line 1246 has 4 fields, expected 5"),
    ("node1", lambda lines: _short_row(lines, 2), "line 3 has 8 fields, expected 9"),  # 7 + 2 x 1 neighbour
    ("node2", lambda lines: lines.__setitem__(4, lines[4].replace("e-0", "x-0", 1)), "could not convert"),
    ("link2", lambda lines: lines.insert(5, lines.pop(6)), "line 6 is numbered 7, expected 6"),
    ("link1", lambda lines: lines.__setitem__(1, "    1     1247        0    7.8e-006    2.1e-002    1.4e-005"),
     r"pore indices outside -1 .. 1246"),
    ("node1", lambda lines: lines.__setitem__(0, "1246 3.0e-003 3.0e-003"), "header line has 3 fields, expected 4"),
    ("link1", lambda lines: lines.__setitem__(0, "2856.5"), "cannot read as a Statoil link1 file"),
    ("link1", lambda lines: lines.clear(), "header line has 0 fields, expected 1"),
])
def test_statoil_parse_errors_name_the_file(statoil_copy, file, edit, message):
    _edit(statoil_copy / f"F42A_{file}.dat", edit)
    with pytest.raises(ValueError, match=f"F42A_{file}.dat: .*{message}"):
        from_statoil(statoil_copy / "F42A")


def test_a_plain_lattice_gets_the_lattice_sample_size():
    op = pytest.importorskip("openpnm")
    pn = op.network.Cubic([5, 4, 4], spacing=1e-4)
    pn["pore.diameter"], pn["throat.diameter"] = 5e-5, 2.5e-5
    net = from_openpnm(pn)  # no domain_size: before, the pores' extent, a cross-section 9/16 of the sample's
    assert net.attrs["lattice_shape"] == [5, 4, 4] and net.attrs["domain_size"] == pytest.approx([5e-4, 4e-4, 4e-4])
    k = float(permeability(net, g=1e-12)["permeability"])
    assert k == pytest.approx(float(permeability(cubic((5, 4, 4), 1e-4), g=1e-12)["permeability"]), rel=1e-12)
    coords = net["pore_coords"].values.copy()
    coords[:, 2] *= 1.0 + 1e-3 * np.arange(80)  # no longer a grid
    irregular = porenet.make_network(coords, net["throat_conns"].values, None, None,
                                     faces={f: net[f].values for f in porenet.network.FACES})
    with pytest.raises(ValueError, match="no 'domain_size'"):
        permeability(irregular, g=1e-12)


def test_trim_takes_masks_and_crops_a_lattice():
    net = cubic((6, 4, 4), 1e-4)
    mask = np.zeros(96, bool)
    mask[-1] = True
    assert porenet.trim(net, pores=mask).sizes["pore"] == 95  # before: pores 0 and 1 removed (True, False as indices)
    with pytest.raises(ValueError, match="needs 96 entries"):
        porenet.trim(net, pores=mask[:10])
    with pytest.raises(ValueError, match=r"pores to remove must lie in 0..95"):
        porenet.trim(net, pores=[100])
    cropped = porenet.trim(net, pores=net["pore_xmax"].values)
    assert cropped.attrs["lattice_shape"] == [5, 4, 4]  # before: 6 x 4 x 4 kept, K 1.25 times too large
    cropped["pore_xmax"] = ("pore", np.isclose(cropped["pore_coords"].values[:, 0], 4.5e-4))
    assert float(permeability(cropped, g=1e-12)["permeability"]) == pytest.approx(
        float(permeability(cubic((5, 4, 4), 1e-4), g=1e-12)["permeability"]), rel=1e-12)


def test_a_network_reordered_by_position_is_refused():
    net = cubic((6, 4, 4), 1e-4)
    shuffled = net.isel(pore=np.random.default_rng(0).permutation(96))
    with pytest.raises(ValueError, match="reordered or subset by position"):
        permeability(shuffled, g=1e-12)  # before: K ten times the lattice's
    with pytest.raises(ValueError, match=r"outside 0..71 \(pores removed by position"):
        permeability(net.isel(pore=slice(0, 72)), g=1e-12)  # before: a scipy index error


def test_geometry_in_the_wrong_units_or_shape_is_an_error_naming_it():
    net = cubic((4, 3, 3), 1e-4)
    coords, conns = net["pore_coords"].values, net["throat_conns"].values
    d_t = np.full(len(conns), 2e-5)
    d_t[3] = -2e-5
    with pytest.raises(ValueError, match="throat_diameter must be finite and positive"):
        porenet.make_network(coords, conns, 5e-5, d_t)  # before: K from |d|^4, no word
    with pytest.raises(ValueError, match=r"pore_diameter needs one value per pore \(36 pores\), got shape \(35,\)"):
        porenet.make_network(coords, conns, np.full(35, 5e-5), 2e-5)  # before: a bare broadcast error
    with pytest.raises(ValueError, match="voxel_size is in m; 5.345 m"):
        porenet.from_porespy(np.ones((8, 8, 8), bool), 5.345)  # micrometres given: before, K 1e12 too large


def test_statoil_link_between_the_two_reservoirs_is_dropped_with_a_warning(statoil_copy):
    full = from_statoil(statoil_copy / "F42A")
    # link 2 joins the inlet reservoir (-1) to pore 1230; make it join the outlet reservoir (0) instead
    _edit(statoil_copy / "F42A_link1.dat", lambda lines: lines.__setitem__(2, lines[2].replace(" 1230 ", "    0 ", 1)))
    _edit(statoil_copy / "F42A_link2.dat", lambda lines: lines.__setitem__(1, lines[1].replace(" 1230 ", "    0 ", 1)))
    with pytest.warns(UserWarning, match=r"F42A_link1.dat: link 2 joins the inlet reservoir .* outlet reservoir"):
        net = from_statoil(statoil_copy / "F42A")
    # before: the last pore was labelled inlet and outlet through index -1, and the solver refused the network
    assert not net["pore_xmin"].values[-1] and not net["pore_xmax"].values[-1]
    assert net.sizes["throat"] == full.sizes["throat"]
    changed = np.flatnonzero(net["pore_xmin"].values != full["pore_xmin"].values)
    assert set(changed) <= {1229}
    assert float(permeability(net)["permeability"]) > 0
