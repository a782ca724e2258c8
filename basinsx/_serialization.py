"""Safe save/load of model files: plain data and tensors, read without running code from the file.

A file is a ``torch.save`` zip of one dict whose first entry is ``"format": <tag>``. Loading
checks that tag by scanning the pickle's opcodes (nothing is unpickled), then reads with
``torch.load(weights_only=True)``, which only rebuilds containers, numbers, strings and tensors.
numpy arrays and scalars are stored as tagged tensors (or lists, for strings) and come back as
numpy. Every model ``save``/``load`` in basinsx goes through :func:`save` and :func:`load`.
"""

from __future__ import annotations

import pickle
import pickletools
import struct
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

ARRAY = "__ndarray__"


def _encode(obj, where: str):
    import torch

    # exact types: subclasses (np.float64 is a float, namedtuples are tuples) pickle as their own class
    if obj is None or type(obj) in (bool, int, float, str) or isinstance(obj, torch.Tensor):
        return obj
    if type(obj) in (dict, OrderedDict):
        return type(obj)((k, _encode(v, f"{where}[{k!r}]")) for k, v in obj.items())
    if type(obj) in (list, tuple):
        return type(obj)(_encode(v, f"{where}[{i}]") for i, v in enumerate(obj))
    if isinstance(obj, (np.ndarray, np.generic)):
        a = np.asarray(obj)
        scalar = isinstance(obj, np.generic)
        if a.dtype.kind in "biufc":
            return {ARRAY: torch.from_numpy(np.array(a, order="C")), "scalar": scalar}
        if a.dtype.kind == "U":
            return {ARRAY: a.tolist(), "dtype": a.dtype.str, "scalar": scalar}
    what = type(obj).__name__ + (f" of dtype {obj.dtype}" if isinstance(obj, (np.ndarray, np.generic)) else "")
    raise TypeError(f"cannot store {what} at {where} in a model file (only numbers, strings, None, lists, "
                    "tuples, dicts, tensors and numeric or unicode arrays)")


def _decode(obj):
    if isinstance(obj, dict):
        if ARRAY in obj:
            value = obj[ARRAY]
            a = np.array(value, dtype=obj["dtype"]) if "dtype" in obj else value.numpy()
            return a[()] if obj["scalar"] else a
        return type(obj)((k, _decode(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_decode(v) for v in obj)
    return obj


def check_destination(path, fmt: str, kind: str, what: str = "file") -> None:
    """Raise ValueError unless ``path`` is absent or a file :func:`save` wrote with format ``fmt``: anything
    else there (a user's file, another model's, a folder) is never overwritten. ``kind`` names the format."""
    path = Path(path)
    if not path.exists():
        return
    try:
        ours = path.is_file() and _format_tag(path) == fmt
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, struct.error):
        ours = False
    if not ours:
        raise ValueError(f"{what} {path} exists and is not a {kind} (format {fmt}); it is not overwritten: remove it "
                         "or choose another path")


def save(path, fmt: str, content: dict) -> None:
    """Write ``{"format": fmt, **content}`` to ``path`` atomically (temporary file, then rename).

    Raises TypeError, naming the entry, for anything :func:`load` could not read back safely, and
    ValueError where ``path`` holds anything but a file of format ``fmt`` (:func:`check_destination`).
    """
    import torch

    check_destination(path, fmt, f"basinsx {fmt} file")
    obj = {"format": fmt, **_encode(content, "")}
    from .io.store import write_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, lambda tmp: torch.save(obj, tmp))


def _format_tag(path: Path) -> str | None:
    """The format tag of a file written by :func:`save`, read from the pickle's opcodes without unpickling."""
    with zipfile.ZipFile(path) as z:
        name = next((n for n in z.namelist() if n.endswith("/data.pkl")), None)
        if name is None:
            return None
        strings = []
        with z.open(name) as f:
            for _, arg, _ in pickletools.genops(f):
                if isinstance(arg, str):
                    strings.append(arg)
                    if len(strings) == 2:
                        break
    return strings[1] if strings[:1] == ["format"] and len(strings) == 2 else None


def load(path, fmt: str, *, kind: str, map_location="cpu") -> dict:
    """Read a file written by :func:`save` with format ``fmt``; ``kind`` (e.g. ``"KGSSL model"``) names it.

    Raises ValueError naming the file when it is not a zip, is truncated or damaged, carries
    another format tag, or holds anything but plain data and tensors. No code in the file runs.
    """
    import torch

    path = Path(path)
    problem = f"{path} is not a basinsx {kind} file (or it is truncated or damaged)"
    try:
        tag = _format_tag(path)
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, struct.error) as err:  # struct: a cut opcode
        raise ValueError(f"{problem}: {err}") from err
    if tag is not None and tag != fmt and tag.split("/")[0] == fmt.split("/")[0]:
        raise ValueError(f"{path} was written by an earlier basinsx in format {tag}, which is not read anymore "
                         f"because loading it could run code from the file; fit and save the model again "
                         f"with this version (format {fmt})")
    if tag != fmt:
        raise ValueError(f"{problem}: " + (f"its format is {tag}, expected {fmt}" if tag else "it has no format tag"))
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile, struct.error) as err:
        # torch's message suggests ways to load it unsafely; keep only the reason
        reason = next((line for line in str(err).splitlines() if "WeightsUnpickler error" in line), str(err))
        raise ValueError(f"{problem}: {reason.split(' Please use')[0].strip()}") from err
    return _decode(obj)
