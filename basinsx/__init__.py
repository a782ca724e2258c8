"""basinsx: xarray-native large-sample basin studies."""

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
