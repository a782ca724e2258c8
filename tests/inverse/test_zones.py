"""basinsx.inverse.zones: zoned parameter fields."""

import numpy as np
import pytest

from basinsx.inverse import zone_map, zoned_field


def test_zones():
    z = zone_map((40, 80))
    assert z.shape == (40, 80) and np.bincount(z.ravel()).tolist() == [400] * 8
    f = zoned_field(z, np.arange(16.0).reshape(2, 8))
    assert f.shape == (2, 40, 80) and f[1, 39, 79] == 15.0
    with pytest.raises(ValueError, match="zones"):
        zoned_field(z, np.ones(7))
