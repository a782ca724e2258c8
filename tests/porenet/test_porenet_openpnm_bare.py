"""from_openpnm on networks without diameters, and OpenPNM's hydraulic conductance riding along."""

import numpy as np
import pytest

from basinsx.porenet import conductance, from_openpnm, permeability

op = pytest.importorskip("openpnm")


def _bare(shape=(4, 3, 3), a=1e-4):
    pn = op.network.Cubic(shape, spacing=a)
    assert not any("diameter" in k or "radius" in k for k in pn.keys())
    return pn


def test_bare_network_imports_and_solves_with_given_g():
    net = from_openpnm(_bare())
    assert "pore_diameter" not in net and "throat_diameter" not in net and "conduit_length" not in net
    # uniform g on a 4 x 3 x 3 lattice: 9 parallel chains of 3 throats in series
    assert float(permeability(net, g=1e-12)["flow_rate"]) == pytest.approx(1e-12 * 9 / 3, rel=1e-10)


@pytest.mark.parametrize("model", ["hagen_poiseuille", "spheres_and_cylinders", "cones_and_cylinders"])
def test_bare_network_diameter_models_name_the_missing_variable(model):
    net = from_openpnm(_bare())
    with pytest.raises(ValueError, match="pore_diameter"):
        conductance(net, model)
    with pytest.raises(ValueError, match="pore_diameter"):
        permeability(net)


def test_network_hydraulic_conductance_is_the_default_g():
    pn = _bare()
    g = np.random.default_rng(0).uniform(1e-13, 1e-12, pn.Nt)
    pn["throat.hydraulic_conductance"] = g
    net = from_openpnm(pn)
    np.testing.assert_array_equal(net["throat_hydraulic_conductance"].values, g)
    assert float(permeability(net)["flow_rate"]) == float(permeability(net, g=g)["flow_rate"])
    # an explicit g still wins
    assert float(permeability(net, g=1e-12)["flow_rate"]) == pytest.approx(3e-12, rel=1e-10)


def test_phase_hydraulic_conductance_rides_along_and_matches_openpnm():
    pn = _bare()
    phase = op.phase.Phase(network=pn)
    g = np.random.default_rng(1).uniform(1e-13, 1e-12, pn.Nt)
    phase["throat.hydraulic_conductance"] = g
    net = from_openpnm(pn, phase=phase)
    np.testing.assert_array_equal(net["throat_hydraulic_conductance"].values, g)
    sf = op.algorithms.StokesFlow(network=pn, phase=phase)
    sf.set_value_BC(pores=pn.pores("left"), values=1.0)
    sf.set_value_BC(pores=pn.pores("right"), values=0.0)
    sf.run()
    q = abs(float(sf.rate(pores=pn.pores("left"))[0]))
    assert float(permeability(net)["flow_rate"]) == pytest.approx(q, rel=1e-8)


def test_phase_for_another_network_is_refused():
    phase = op.phase.Phase(network=_bare((3, 3, 3)))
    phase["throat.hydraulic_conductance"] = 1e-12
    with pytest.raises(ValueError, match="throat"):
        from_openpnm(_bare(), phase=phase)


def test_gnn_inputs_of_bare_network_name_the_missing_variable():
    pytest.importorskip("torch")
    from basinsx.porenet.gnn import graph_inputs

    with pytest.raises(ValueError, match="pore_diameter"):
        graph_inputs(from_openpnm(_bare()))


def test_only_one_kind_of_diameter_is_refused():
    pn = _bare()
    pn["pore.diameter"] = 5e-5
    with pytest.raises(ValueError, match="throat.diameter"):
        from_openpnm(pn)


def test_phase_viscosity_rides_along_with_its_conductance():
    pn = op.network.Cubic([6, 5, 4], spacing=1e-4)
    pn["pore.diameter"], pn["throat.diameter"] = 5e-5, 2.5e-5
    pn.add_model_collection(op.models.collections.geometry.spheres_and_cylinders)
    np.random.seed(0)  # the collection's pore seeds come from numpy's global generator
    pn.regenerate_models()
    water = op.phase.Water(network=pn)
    water.add_model(propname="throat.hydraulic_conductance",
                    model=op.models.physics.hydraulic_conductance.generic_hydraulic)
    water.regenerate_models()
    mu = float(water["pore.viscosity"][0])
    assert abs(mu - 1e-3) > 5e-5  # water at 298 K
    sf = op.algorithms.StokesFlow(network=pn, phase=water)
    sf.set_value_BC(pores=pn.pores("left"), values=1.0)
    sf.set_value_BC(pores=pn.pores("right"), values=0.0)
    sf.run()
    k_hand = abs(float(sf.rate(pores=pn.pores("left"))[0])) * mu * 5e-4 / (5 * 4 * 1e-8)
    net = from_openpnm(pn, phase=water)
    assert net.attrs["viscosity"] == pytest.approx(mu, rel=1e-12, abs=0)
    # before: mu = 1e-3 taken, K 12 % off
    assert float(permeability(net)["permeability"]) == pytest.approx(k_hand, rel=1e-8, abs=0)
    assert float(permeability(net, mu=1e-3)["permeability"]) == pytest.approx(k_hand * 1e-3 / mu, rel=1e-8, abs=0)
    # a model name: K does not depend on the viscosity
    assert float(permeability(net, "spheres_and_cylinders")["permeability"]) == pytest.approx(
        float(permeability(net, "spheres_and_cylinders", mu=1e-3)["permeability"]), rel=1e-10, abs=0)
    phase = op.phase.Phase(network=pn)  # a phase with a conductance and no viscosity: nothing carried
    phase["throat.hydraulic_conductance"] = 1e-12
    assert "viscosity" not in from_openpnm(pn, phase=phase).attrs
