"""Old import paths of the modules moved into :mod:`basinsx.io`: every name resolves, with a DeprecationWarning.

The old modules are placeholders registered in ``sys.modules``, not files: a file
``basinsx/catalog.py`` imported late would rebind ``basinsx.catalog``, the function, to itself.
"""

from __future__ import annotations

import sys
import warnings
from importlib import import_module
from importlib.machinery import ModuleSpec
from types import ModuleType

#: Old module (under ``basinsx``) -> the modules that now hold its names, looked up in order.
MOVED = {
    "camels_us": ("basinsx.io.camels_us",),
    "caravan": ("basinsx.io.caravan",),
    "catalog": ("basinsx.io.catalog",),
    "readers": ("basinsx.io.readers",),
    "sample": ("basinsx.io.sample",),
    "store": ("basinsx.io.store", "basinsx.io.open", "basinsx.io.sample"),
    "variables": ("basinsx.io.conventions",),
}


def _placeholder(old: str, new: tuple[str, ...]) -> ModuleType:
    module = ModuleType(old, f"Deprecated: moved to {', '.join(new)}; the old path still works and warns.")
    module.__spec__ = ModuleSpec(old, loader=None)

    def __getattr__(name: str):
        for target in new:
            found = import_module(target)
            if name in vars(found) and not name.startswith("_"):
                warnings.warn(f"{old}.{name} moved to {target}.{name}; import it from there ({old} will be removed)",
                              DeprecationWarning, stacklevel=2)
                return getattr(found, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({n for target in new for n in vars(import_module(target)) if not n.startswith("_")})

    module.__getattr__, module.__dir__ = __getattr__, __dir__
    return module


def install(package: str) -> None:
    """Register the placeholders of :data:`MOVED` under ``package`` (not bound as its attributes)."""
    for old, new in MOVED.items():
        sys.modules.setdefault(f"{package}.{old}", _placeholder(f"{package}.{old}", new))


def module(package: str, name: str) -> ModuleType | None:
    """The placeholder of the moved module ``name``, or None."""
    return sys.modules.get(f"{package}.{name}") if name in MOVED else None
