"""basinsx.inverse.kle: Karhunen-Loeve expansions of Gaussian fields."""

import numpy as np
import pytest
import xarray as xr

from basinsx.inverse import KLE


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


def test_kle_takes_fields_and_coefficients_by_their_labels():
    kle = KLE((8, 6), (1.0, 1.0), 0.5, n_terms=5)
    fields, xi = kle.sample(2, seed=0)
    f = xr.DataArray(fields, dims=("sample", "y", "x"))
    np.testing.assert_allclose(kle.project(f.transpose("sample", "x", "y")), kle.project(f))  # before: a shape error
    labeled = xr.DataArray(xi, dims=("sample", "mode"), coords={"mode": np.arange(5)})
    ref = kle.field(labeled)
    xr.testing.assert_allclose(kle.field(labeled.isel(mode=[4, 2, 0, 1, 3])), ref)  # before: modes by position
    grid = f.assign_coords(y=kle.y, x=kle.x)
    np.testing.assert_allclose(kle.project(grid.isel(y=slice(None, None, -1))), kle.project(f))  # before: signs flipped
    extra = xr.DataArray(np.ones((2, 7)), dims=("sample", "mode"), coords={"mode": np.arange(7)})
    with pytest.raises(ValueError, match=r"modes \[5, 6\]"):  # before: modes 5 and 6 dropped silently
        kle.field(extra)
