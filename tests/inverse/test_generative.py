"""basinsx.inverse.generative: the VAE reducer of binary fields."""

import pickle

import numpy as np
import pytest

from basinsx.inverse import channel_fields

torch = pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_vae_reducer_learns_channels(tmp_path):
    from basinsx.inverse import VAEReducer

    f = channel_fields(200, (16, 16), seed=0)
    red = VAEReducer(8, epochs=15, batch_size=32, beta=0.5).fit(f)
    assert red.loss_history[-1] < 0.8 * red.loss_history[0]
    assert red.accuracy(channel_fields(30, (16, 16), seed=5)) > 0.75
    assert red.decode(np.zeros((2, 8))).dims == ("sample", "y", "x")
    # a fitted reducer saves and loads as one pickle (its network class is importable)
    (tmp_path / "vae.pkl").write_bytes(pickle.dumps(red))
    back = pickle.loads((tmp_path / "vae.pkl").read_bytes())
    z = np.random.default_rng(1).standard_normal((3, 8))
    np.testing.assert_array_equal(back.decode(z).values, red.decode(z).values)
    with pytest.raises(ValueError, match="binary"):
        VAEReducer(4).fit(f * 0.5)


def test_vae_takes_fields_by_their_y_x_labels():
    from basinsx.inverse import VAEReducer

    f = channel_fields(40, (8, 12), seed=0).assign_coords(y=np.arange(8) + 0.5, x=np.arange(12) + 0.5)
    red = VAEReducer(4, epochs=1, batch_size=20).fit(f)
    ref = red.encode(f)
    np.testing.assert_allclose(red.encode(f.transpose("sample", "x", "y")), ref)  # before: a transposed field
    np.testing.assert_allclose(red.encode(f.isel(y=slice(None, None, -1))), ref, atol=1e-6)  # before: flipped
    assert red.accuracy(f.isel(y=slice(None, None, -1))) == red.accuracy(f)
    with pytest.raises(ValueError, match=r"fields have cells \(12, 8\); the reducer was fitted on \(8, 12\)"):
        red.encode(f.values.transpose(0, 2, 1))  # before: torch's "mat1 and mat2 shapes cannot be multiplied"
