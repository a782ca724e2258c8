"""basinsx: xarray-native large-sample basin studies.

Subpackages load on first attribute access (SPEC 1): ``import basinsx`` stays light and never
imports torch, matplotlib or openpnm; ``basinsx.models.get("gr4j")`` imports ``basinsx.models`` then.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("basinsx")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from . import accessor  # noqa: F401  (registers ds.hydro)
from .camels_us import read_camels_us
from .caravan import read_caravan
from .catalog import catalog, fetch
from .store import open_dataset, to_zarr

__all__ = ["catalog", "fetch", "open_dataset", "read_camels_us", "read_caravan", "to_zarr", "__version__"]

_SUBMODULES = ("calibration", "demo", "embedding", "groundwater", "inverse", "metrics", "models", "pet", "plot",
               "porenet", "signatures", "simulation")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)  # the import system also binds it on the package
    raise AttributeError(f"module 'basinsx' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES})
