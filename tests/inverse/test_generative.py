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
