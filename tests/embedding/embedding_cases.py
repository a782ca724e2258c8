"""Synthetic basins the tests of basinsx.embedding share, and a small model configuration.

The synthetic basins are linear reservoirs whose recession rate ``k`` and runoff coefficient
``c`` are static attributes: the response depends on them, so a working encoder must recover them.
Not a test module (pytest collects ``test_*.py`` only); the test files in this folder import it.
"""

import numpy as np
import pandas as pd
import xarray as xr

SMALL = {"dim": 8, "hidden": 16, "window": 90, "stride": 45, "basins_per_batch": 8, "windows_per_basin": 4,
         "progress": False}


def synthetic(n_basin=16, years=3, seed=1):
    """Linear-reservoir basins: S' = c P - k S, q = k S, driven by random rain."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2000-01-01", periods=365 * years + 1, freq="D")  # 2000 is a leap year
    k = np.linspace(0.02, 0.5, n_basin)
    c = rng.uniform(0.2, 0.9, n_basin)
    prcp = (rng.random((n_basin, len(time))) < 0.3) * rng.exponential(8.0, (n_basin, len(time)))
    doy = time.day_of_year.values
    tmean = 10 + 10 * np.sin(2 * np.pi * (doy - 100) / 365) + rng.normal(0, 2, (n_basin, len(time)))
    pet = np.clip(2 + 1.5 * np.sin(2 * np.pi * (doy - 100) / 365), 0, None) * np.ones((n_basin, 1))
    q = np.zeros_like(prcp)
    s = np.full(n_basin, 10.0)
    for t in range(len(time)):
        s = s + c * prcp[:, t] - k * s
        q[:, t] = k * s
    basin = [f"b{i:02d}" for i in range(n_basin)]
    dims = ("basin", "time")
    return xr.Dataset(
        {"prcp": (dims, prcp.astype(np.float32)), "tmean": (dims, tmean.astype(np.float32)),
         "pet": (dims, pet.astype(np.float32)), "streamflow": (dims, q.astype(np.float32)),
         "k": ("basin", k), "c": ("basin", c)},
        coords={"basin": basin, "time": time},
    )
