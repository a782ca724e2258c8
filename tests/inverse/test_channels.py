"""basinsx.inverse.channels: binary channelised fields."""

import numpy as np

from basinsx.inverse import channel_fields


def test_channel_fields():
    f = channel_fields(20, (40, 50), seed=0)
    assert f.dims == ("sample", "y", "x") and set(np.unique(f.values)) == {0.0, 1.0}
    assert 0.1 < float(f.mean()) < 0.6
    np.testing.assert_array_equal(f.values, channel_fields(20, (40, 50), seed=0).values)
