"""The data layer: canonical conventions, file-format readers, zarr stores, catalogs and :func:`open_dataset`.

Modules import one way, each only from those before it:
:mod:`~basinsx.io.conventions` -> :mod:`~basinsx.io.readers` -> :mod:`~basinsx.io.camels_us`,
:mod:`~basinsx.io.caravan` -> :mod:`~basinsx.io.registry` -> :mod:`~basinsx.io.store` ->
:mod:`~basinsx.io.sample` -> :mod:`~basinsx.io.catalog` -> :mod:`~basinsx.io.open`.
The names below are re-exported by :mod:`basinsx` itself.
"""

from .camels_us import read_camels_us
from .caravan import read_caravan
from .catalog import catalog, fetch
from .open import open_dataset
from .store import to_zarr

__all__ = ["catalog", "fetch", "open_dataset", "read_camels_us", "read_caravan", "to_zarr"]
