"""basinsx: xarray-native large-sample basin studies.

Subpackages load on first attribute access (SPEC 1): ``import basinsx`` stays light and never
imports torch, matplotlib or openpnm; ``basinsx.models.get("gr4j")`` imports ``basinsx.models`` then.
"""

from importlib import import_module

from . import _deprecated, accessor  # noqa: F401  (accessor registers ds.hydro)
from .io import catalog, fetch, open_dataset, read_camels_us, read_caravan, to_zarr
from .io.conventions import package_version

__version__ = package_version()

__all__ = ["catalog", "fetch", "open_dataset", "read_camels_us", "read_caravan", "to_zarr", "__version__"]

_SUBMODULES = ("calibration", "demo", "embedding", "groundwater", "inverse", "metrics", "models", "pet", "plot",
               "porenet", "signatures", "simulation")
_deprecated.install(__name__)  # basinsx.store etc.: moved into basinsx.io, the old paths warn


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)  # the import system also binds it on the package
    moved = _deprecated.module(__name__, name)
    if moved is not None:
        return moved
    raise AttributeError(f"module 'basinsx' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES})
