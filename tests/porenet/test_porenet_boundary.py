"""What a network Dataset brings in at the boundary: units, pore order, labelled conductances, array layout."""

import numpy as np
import pytest

from basinsx import porenet
from basinsx.porenet import cones_and_cylinders, cubic, make_network, permeability
from basinsx.units import UnitsError

LENGTHS = ("pore_coords", "pore_diameter", "throat_diameter", "throat_spacing", "conduit_length")


def _k(net, g="cones_and_cylinders"):
    return float(permeability(net, g)["permeability"])


@pytest.mark.parametrize("units, factor", [("um", 1e6), ("µm", 1e6), ("micrometre", 1e6), ("mm", 1e3), ("cm", 1e2),
                                           ("m", 1.0)])
def test_length_variables_are_read_in_their_units(units, factor):
    net = cubic((5, 4, 4), 1e-4)
    k_m = _k(net)
    one = net.copy(deep=True)
    one["throat_diameter"] = one["throat_diameter"] * factor
    one["throat_diameter"].attrs["units"] = units
    # before: taken as metres, K 3.1e7 times too large for "um"
    assert _k(one) == pytest.approx(k_m, rel=1e-10, abs=0)
    assert _k(one, "hagen_poiseuille") == pytest.approx(_k(net, "hagen_poiseuille"), rel=1e-10, abs=0)
    every = net.copy(deep=True)
    for v in LENGTHS:
        every[v] = every[v] * factor
        every[v].attrs["units"] = units
    every["pore_volume"] = every["pore_volume"] * factor**3
    every["pore_volume"].attrs["units"] = f"{units}3" if units != "micrometre" else "micrometre^3"
    assert _k(every) == pytest.approx(k_m, rel=1e-10, abs=0)  # before: 1.48 m2 for "um"
    assert float(porenet.network.checked(every)["pore_volume"].sum()) == pytest.approx(float(net["pore_volume"].sum()),
                                                                                         rel=1e-10, abs=0)


def test_a_variable_without_units_is_metres_and_other_units_are_refused():
    net = cubic((4, 3, 3), 1e-4)
    bare = net.copy(deep=True)
    for v in LENGTHS:
        bare[v].attrs.pop("units")
    assert _k(bare) == _k(net)
    for units in ("furlong", "s", "m2", "degC"):
        bad = net.copy(deep=True)
        bad["throat_spacing"].attrs["units"] = units
        with pytest.raises(UnitsError, match="throat_spacing"):
            permeability(bad, "cones_and_cylinders")
    bad = net.copy(deep=True)
    bad["pore_volume"].attrs["units"] = "m"
    with pytest.raises(UnitsError, match="pore_volume"):
        porenet.network.checked(bad)


def test_lengths_far_beyond_a_pore_network_in_metres_are_refused():
    # 100 um meant, 100 m taken: before, K = 1.61 m2 from cubic((5, 4, 4), 100.0)
    with pytest.raises(ValueError, match=r"spacing is in m; 100.0 m is more than 0.01 m, too large for a pore "
                                         r"network \(micrometres\? give 100.0 um as 0.0001\)"):
        cubic((5, 4, 4), 100.0)
    net = cubic((4, 3, 3), 1e-4)
    coords, conns = net["pore_coords"].values, net["throat_conns"].values
    with pytest.raises(ValueError, match="throat_spacing is in m; 100"):
        make_network(coords * 1e6, conns, 5e-5, 2.5e-5)
    with pytest.raises(ValueError, match="pore_diameter is in m; 50.0 m"):
        make_network(coords, conns, 50.0, 2.5e-5)
    with pytest.raises(ValueError, match="throat_diameter is in m; 25.0 m"):
        make_network(coords, conns, 5e-5, 25.0)
    # a Dataset whose attributes are in micrometres (the variables converted by their units)
    um = net.copy(deep=True)
    for v in LENGTHS:
        um[v] = um[v] * 1e6
        um[v].attrs["units"] = "um"
    um.attrs.update(spacing=100.0, domain_size=[400.0, 300.0, 300.0])
    with pytest.raises(ValueError, match="attribute spacing is in m; 100.0 m"):
        permeability(um, "cones_and_cylinders")
    um.attrs.update(spacing=1e-4)
    with pytest.raises(ValueError, match=r"attribute domain_size is in m; 400.0 m is more than 1.0 m"):
        permeability(um, "cones_and_cylinders")
    um.attrs.update(domain_size=[4e-4, 3e-4, 3e-4])
    assert _k(um) == pytest.approx(_k(net), rel=1e-10, abs=0)
    # millimetre pores of a bead pack are fine
    assert _k(cubic((4, 3, 3), 2e-3)) == pytest.approx(400 * _k(net), rel=1e-10, abs=0)


@pytest.mark.parametrize("shift", [7, -1, 95])
def test_a_network_rolled_by_position_is_refused(shift):
    net = cubic((6, 4, 4), 1e-4)
    g = cones_and_cylinders(net)
    with pytest.raises(ValueError, match="reordered or subset by position"):
        permeability(net.roll(pore=shift), g=g)  # before: the pore labels stayed, K 4 times too large
    with pytest.raises(ValueError, match="reordered or subset by position"):
        cones_and_cylinders(net.roll(pore=shift))
    with pytest.raises(ValueError, match="reordered or subset by position"):
        permeability(net.roll(pore=shift, roll_coords=True), g=g)


def test_no_false_alarm_for_what_keeps_the_pore_order():
    net = cubic((6, 4, 4), 1e-4)
    k = _k(net)
    perm = np.random.default_rng(0).permutation(net.sizes["throat"])
    assert _k(net.isel(throat=perm)) == pytest.approx(k, rel=1e-10, abs=0)  # throats reordered: still the same network
    moved = net.assign(pore_coords=net["pore_coords"] + 1e-3)  # coordinates edited in place
    assert _k(moved) == pytest.approx(k, rel=1e-10, abs=0)
    trimmed = porenet.trim(net, pores=[5, 17])
    assert np.array_equal(trimmed["pore_index"].values, np.arange(94))
    _k(trimmed)
    old = net.drop_vars("pore_index")  # a network saved before pore_index existed: checked by its coordinate only
    assert _k(old) == k
    rebuilt = make_network(net["pore_coords"].values, net["throat_conns"].values, net["pore_diameter"].values,
                           net["throat_diameter"].values, pore_index=np.zeros(96))  # reserved name: set here
    assert np.array_equal(rebuilt["pore_index"].values, np.arange(96))


def test_labelled_conductances_are_taken_by_throat_label():
    rng = np.random.default_rng(0)
    net = cubic((6, 5, 4), 1e-4).assign_coords(throat=np.arange(286))
    g = (cones_and_cylinders(net) * np.exp(rng.normal(size=286))).assign_coords(throat=np.arange(286))
    k = float(permeability(net, g=g)["permeability"])
    perm = rng.permutation(286)
    # before: g taken by position, K 9 % off
    assert float(permeability(net.isel(throat=perm), g=g)["permeability"]) == pytest.approx(k, rel=1e-10, abs=0)
    assert float(permeability(net, g=g.isel(throat=perm))["permeability"]) == pytest.approx(k, rel=1e-10, abs=0)
    with pytest.raises(ValueError, match=r"no conductance for throats \[3, 7\]"):
        permeability(net, g=g.drop_sel(throat=[3, 7]))
    with pytest.raises(ValueError, match=r"conductances for throats \[1000\] that the network does not have"):
        permeability(net.isel(throat=slice(0, 285)).assign_coords(throat=np.r_[np.arange(285)]),
                     g=g.assign_coords(throat=np.r_[np.arange(285), 1000]))
    with pytest.raises(ValueError, match="more than once"):
        permeability(net, g=g.assign_coords(throat=np.r_[np.arange(285), 0]))
    # the models label their output with the network's throats
    assert np.array_equal(cones_and_cylinders(net.isel(throat=perm))["throat"].values, perm)
    # unlabelled on either side: by position
    assert float(permeability(net, g=g.values)["permeability"]) == pytest.approx(k, rel=1e-12, abs=0)
    assert float(permeability(net.drop_vars("throat"), g=g)["permeability"]) == pytest.approx(k, rel=1e-12, abs=0)


def test_make_network_copies_its_inputs():
    net = cubic((4, 3, 3), 1e-4)
    coords, conns = net["pore_coords"].values.copy(), net["throat_conns"].values.copy()
    d = np.full(36, 5e-5)
    made = make_network(coords, conns, d, 2.5e-5)
    coords[:] = 0.0
    conns[:] = 0
    d[:] = 1.0
    assert made["pore_coords"].values.max() > 0 and made["throat_conns"].values.max() == 35
    assert made["pore_diameter"].values.max() == 5e-5


def test_negative_stride_throat_conns_reach_torch():
    torch = pytest.importorskip("torch")
    from basinsx.porenet.gnn import graph_inputs
    from basinsx.porenet.torch_solver import throat_flow_torch

    net = cubic((4, 3, 3), 1e-4)
    flipped = make_network(net["pore_coords"].values, net["throat_conns"].values[:, ::-1], net["pore_diameter"].values,
                           net["throat_diameter"].values, faces={f: net[f].values for f in porenet.network.FACES})
    for n in (flipped, net.isel(throat=slice(None, None, -1))):  # before: torch.as_tensor raised on both
        g = cones_and_cylinders(n).values
        assert torch.equal(graph_inputs(n)["conns"], torch.as_tensor(np.array(n["throat_conns"].values)))
        q = throat_flow_torch(n, torch.tensor(g)).numpy()
        np.testing.assert_allclose(q, permeability(n, g)["throat_flow"].values, rtol=1e-10, atol=1e-30)


def test_gnn_prediction_does_not_depend_on_which_end_of_a_throat_comes_first():
    torch = pytest.importorskip("torch")
    from basinsx.porenet.geometry import cone_cylinder_lengths
    from basinsx.porenet.gnn import ConductanceGNN, graph_inputs

    rng = np.random.default_rng(0)
    net = cubic((6, 5, 4), 1e-4)
    net["pore_diameter"] = net["pore_diameter"] * rng.uniform(0.6, 1.0, net.sizes["pore"])
    conns = net["throat_conns"].values
    cl = np.stack(cone_cylinder_lengths(net["pore_diameter"].values[conns[:, 0]], net["throat_diameter"].values,
                                        net["pore_diameter"].values[conns[:, 1]], net["throat_spacing"].values), 1)
    torch.manual_seed(0)
    model = ConductanceGNN(hidden=16, layers=2)
    torch.nn.init.normal_(model.head[-1].weight, std=0.5)  # a stand-in for a trained head

    def predict(flip):
        c, length = (conns[:, ::-1], cl[:, ::-1]) if flip else (conns, cl)
        n = make_network(net["pore_coords"].values, c, net["pore_diameter"].values, net["throat_diameter"].values,
                         conduit_length=length, spacing=net["throat_spacing"].values,
                         faces={f: net[f].values for f in porenet.network.FACES},
                         pore_volume=net["pore_volume"].values)
        i = graph_inputs(n)
        return model(i["x"], i["e"], i["conns"], i["g0"]).detach().numpy()

    # before: up to 1.6 % per throat
    np.testing.assert_allclose(predict(True), predict(False), rtol=1e-12)
