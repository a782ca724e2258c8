"""Differentiable solver (gradcheck, finite differences), LBM Poiseuille flow, GNN training."""

import numpy as np
import pytest

from basinsx.porenet import cones_and_cylinders, cubic, lbm_permeability, permeability

torch = pytest.importorskip("torch")
torch.set_num_threads(1)


def small_network(seed=0):
    rng = np.random.default_rng(seed)
    net = cubic((4, 3, 3), 1e-5)
    return cubic((4, 3, 3), 1e-5, pore_diameter=rng.uniform(4e-6, 7e-6, net.sizes["pore"]),
                 throat_diameter=rng.uniform(1.5e-6, 3.5e-6, net.sizes["throat"]))


def unit_g(net, seed=1):
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.uniform(0.5, 2.0, net.sizes["throat"]), dtype=torch.float64, requires_grad=True)


def test_permeability_torch_matches_numpy_solver():
    from basinsx.porenet import permeability_torch

    net = small_network()
    g = cones_and_cylinders(net).values
    k = permeability_torch(net, torch.tensor(g), axis="y", mu=2e-3)
    assert float(k) == pytest.approx(float(permeability(net, g, axis="y", mu=2e-3)["permeability"]), rel=1e-12)


@pytest.mark.parametrize("axis", ["x", "z"])
def test_closed_form_gradient_passes_gradcheck(axis):
    from basinsx.porenet import permeability_torch

    net = small_network()
    # scale so that K and g are O(1): gradcheck's absolute tolerances then mean something
    assert torch.autograd.gradcheck(lambda x: permeability_torch(net, x * 1e-12, axis=axis) * 1e10,
                                    (unit_g(net),))


def test_general_adjoint_passes_gradcheck_for_pressure_and_flow_losses():
    from basinsx.porenet.torch_solver import pressure_torch, throat_flow_torch

    net = small_network(2)
    w = torch.tensor(np.random.default_rng(3).normal(size=net.sizes["pore"]))
    assert torch.autograd.gradcheck(lambda x: (pressure_torch(net, x, dp=2.0) * w).sum(), (unit_g(net),))
    assert torch.autograd.gradcheck(lambda x: (throat_flow_torch(net, x) ** 2).sum(), (unit_g(net),))


def test_closed_form_equals_general_adjoint_and_finite_differences():
    from basinsx.porenet import permeability_torch
    from basinsx.porenet.solver import length_and_area, system
    from basinsx.porenet.torch_solver import pressure_torch

    net = small_network(4)
    g = unit_g(net)
    permeability_torch(net, g).backward()
    closed = g.grad.clone()
    # K through pressures: Q = sum over inlet throats of g (p_in - p_other)
    g2 = g.detach().clone().requires_grad_(True)
    sys_ = system(net, "x")
    p = pressure_torch(net, g2)
    c = torch.as_tensor(sys_.conns[sys_.t_face])
    q = (torch.as_tensor(sys_.face_sign) * g2[sys_.t_face] * (p[c[:, 0]] - p[c[:, 1]])).sum()
    length, area = length_and_area(net, "x")
    (q * 1e-3 * length / area).backward()
    torch.testing.assert_close(g2.grad, closed, rtol=1e-10, atol=0)
    # central finite differences of the numpy solver
    g0 = g.detach().numpy()
    for t in (0, 7, 20):
        h = 1e-6 * g0[t]
        gp, gm = g0.copy(), g0.copy()
        gp[t] += h
        gm[t] -= h
        fd = (float(permeability(net, gp)["permeability"]) - float(permeability(net, gm)["permeability"])) / (2 * h)
        assert closed[t].item() == pytest.approx(fd, rel=1e-6)


def test_permeability_torch_input_errors():
    from basinsx.porenet import permeability_torch

    net = small_network()
    with pytest.raises(TypeError, match="torch tensor"):
        permeability_torch(net, np.ones(net.sizes["throat"]))
    with pytest.raises(ValueError, match="shape"):
        permeability_torch(net, torch.ones(3, dtype=torch.float64))
    g = torch.ones(net.sizes["throat"], dtype=torch.float64)
    for kw in ({"mu": -1e-3}, {"mu": 0.0}, {"dp": 0.0}):  # before: K < 0, K = 0, a ZeroDivisionError
        with pytest.raises(ValueError, match="dp and mu must be positive"):
            permeability_torch(net, g, **kw)


@pytest.mark.parametrize("h", [4, 8])
def test_lbm_plane_poiseuille(h):
    """Slit of h fluid voxels between solid planes: nodal profile exact, K = phi h^2/12 (1 + 1/(2 h^2))."""
    im = np.ones((3, 2, h + 1), bool)
    im[:, :, 0] = False
    force = 1e-5
    k, info = lbm_permeability(im, 2e-6, axis="x", tau=1.5, force=force, tol=1e-10, return_info=True)
    # the mean of the parabola sampled at voxel centres is h^2/12 (1 + 1/(2 h^2))
    phi = h / (h + 1)
    assert k == pytest.approx(phi * h**2 / 12 * (1 + 1 / (2 * h**2)) * 2e-6**2, rel=1e-6)
    nu = (1.5 - 0.5) / 3
    z = np.arange(1, h + 1) - 0.5
    np.testing.assert_allclose(info["velocity"][1, 1, 1:], force / (2 * nu) * z * (h - z), rtol=1e-6)
    assert info["porosity"] == pytest.approx(phi)


def test_lbm_is_viscosity_independent_and_axis_consistent():
    im = np.ones((2, 7, 3), bool)
    im[:, 0, :] = False
    k1 = lbm_permeability(im, 1.0, axis="z", tau=0.8, tol=1e-9)
    k2 = lbm_permeability(im, 1.0, axis="z", tau=2.0, tol=1e-9)
    assert k1 == pytest.approx(k2, rel=1e-6)
    assert k1 == pytest.approx(6 / 7 * 36 / 12 * (1 + 1 / 72), rel=1e-6)
    # flow across the walls is blocked
    assert abs(lbm_permeability(im, 1.0, axis="y", tol=1e-9)) < 1e-8 * k1


def test_lbm_buffer_reservoirs_add_little_resistance():
    """A thin slit fed from open reservoirs keeps its own permeability up to entrance effects."""
    im = np.zeros((24, 2, 12), bool)
    im[:, :, 1:3] = True
    exact = 2 / 12 * 2**2 / 12 * (1 + 1 / 8)
    assert lbm_permeability(im, 1.0, axis="x", tol=1e-10) == pytest.approx(exact, rel=1e-6)
    buffered = lbm_permeability(im, 1.0, axis="x", tol=1e-10, buffer=3)
    assert 0.96 * exact < buffered < exact


def test_lbm_errors():
    with pytest.raises(ValueError, match="boolean"):
        lbm_permeability(np.ones((3, 3, 3)), 1.0)
    with pytest.raises(ValueError, match="no pore voxels"):
        lbm_permeability(np.zeros((3, 3, 3), bool), 1.0)


def test_gnn_training_reduces_loss():
    from basinsx.porenet.gnn import ConductanceGNN, fit, graph_inputs

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    nets, labels = [], []
    for s in range(4):
        net = small_network(s)
        nets.append(net)
        # labels: classical K times a factor that depends on the throat geometry
        k0 = float(permeability(net, "cones_and_cylinders")["permeability"])
        labels.append(k0 * (1.5 + rng.uniform(0, 1)))
    model = ConductanceGNN(hidden=8, layers=1)
    before = model.permeability(nets[0]).item()
    assert before == pytest.approx(float(permeability(nets[0], "cones_and_cylinders")["permeability"]), rel=1e-12)
    hist = fit(model, nets, labels, epochs=15, lr=1e-2, progress=False)
    assert hist[-1] < 0.2 * hist[0]
    inp = graph_inputs(nets[0])
    assert (model(inp["x"], inp["e"], inp["conns"], inp["g0"]) > 0).all()
    assert model.permeability(nets[0], inp).item() == model.permeability(nets[0]).item()
    # inputs made for another viscosity or axis: before, their conductances won silently (K off by 2x)
    with pytest.raises(ValueError, match="inputs were computed with mu=0.001, axis='x'; got mu=0.002"):
        model.permeability(nets[0], inp, mu=2e-3)
    with pytest.raises(ValueError, match="got mu=0.001, axis='y'"):
        model.permeability(nets[0], inp, axis="y")
    with pytest.raises(ValueError, match="inputs were computed with"):
        fit(model, nets[:1], labels[:1], epochs=1, mu=2e-3, inputs=[inp], progress=False)


def test_lbm_source_table_folds_bounce_back():
    from basinsx.porenet.lbm import OPP, neighbour_table, source_table

    im = np.ones((3, 3, 4), bool)
    im[:, :, 0] = False
    nbr = neighbour_table(im)
    src = source_table(nbr)
    n = nbr.shape[1]
    q, i = np.nonzero(nbr < 0)
    assert q.size and np.array_equal(src[q, i], OPP[q] * n + i)  # solid source: own opposite population
    q, i = np.nonzero(nbr >= 0)
    assert np.array_equal(src[q, i], q * n + nbr[q, i])


def test_dataset_plan_keeps_berea_slab_and_feature_size():
    from basinsx.porenet.dataset import plan

    specs = plan(20, 4, 30, seed=1, berea_shape=(100, 100, 100), berea_z=(50, 100))
    corners = np.array([s["corner"] for s in specs if s["source"] == "berea"])
    assert corners[:, 2].min() >= 50 and corners[:, 2].max() <= 70
    assert {s["source"] for s in specs} == {"berea", "blobs", "spheres"}
    assert plan(0, 4, 30, seed=1)[1]["feature"] == plan(0, 4, 60, seed=1)[1]["feature"]  # not scaled with size
    with pytest.raises(ValueError, match="thinner"):
        plan(1, 0, 30, berea_shape=(100, 100, 100), berea_z=(80, 100))


def test_graph_inputs_separate_flow_faces_from_side_faces():
    from basinsx.porenet.gnn import PORE_FEATURES, graph_inputs

    net = small_network()
    flow, side = PORE_FEATURES.index("flow_face"), PORE_FEATURES.index("side_face")
    x = graph_inputs(net, axis="x")["x"].numpy()
    on_x = np.maximum(net["pore_xmin"].values, net["pore_xmax"].values)
    assert np.array_equal(x[:, flow], on_x)
    y = graph_inputs(net, axis="y")["x"].numpy()
    assert np.array_equal(y[:, side], np.maximum(on_x, np.maximum(net["pore_zmin"].values, net["pore_zmax"].values)))


def test_dataset_spans_uses_d3q19_links():
    from basinsx.porenet.dataset import spans

    im = np.zeros((6, 5, 5), bool)
    im[:3, 1, 1] = True
    im[3:, 2, 2] = True  # joined to the first segment only through a corner (not a D3Q19 link)
    assert not spans(im, 0)
    im[3:, 2, 1] = True  # now through an edge neighbour
    assert spans(im, 0)
    assert not spans(im, 1)
