"""Data-set catalogs (``basinsx/io/catalogs/*.yaml``) and :func:`fetch`: download, verify, unpack, convert to zarr
once."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import uuid
import zipfile
import zlib
from importlib.resources import files
from pathlib import Path

import pooch
import yaml

from .registry import get_reader
from .store import is_zarr, to_zarr

try:
    import fcntl
except ImportError:  # Windows: concurrent fetches of one data set are not serialised
    fcntl = None

DATA_ENV = "BASINSX_DATA_DIR"
MIRROR_ENV = "BASINSX_MIRROR"
CATALOG_ENV = "BASINSX_CATALOGS"
REQUIRED = ("name", "description", "license", "citation", "files", "reader", "layout")


def cache_dir() -> Path:
    """Where downloads and converted stores live (``$BASINSX_DATA_DIR`` overrides)."""
    return Path(os.environ.get(DATA_ENV) or pooch.os_cache("basinsx")).expanduser()


def load_catalog() -> dict[str, dict]:
    """Every catalog entry by name: the packaged ones, then those in ``$BASINSX_CATALOGS`` folders."""
    folders = [files("basinsx.io") / "catalogs"]
    folders += [Path(p) for p in os.environ.get(CATALOG_ENV, "").split(os.pathsep) if p]
    entries = {}
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"catalog folder {folder} (from ${CATALOG_ENV}) does not exist")
        for path in sorted(folder.iterdir(), key=lambda p: p.name):
            if not path.name.endswith(".yaml"):
                continue
            try:
                entry = yaml.safe_load(path.read_text())
            except yaml.YAMLError as err:
                raise ValueError(f"catalog {path} is not valid YAML: {err}") from None
            if not isinstance(entry, dict):
                raise ValueError(f"catalog {path} is empty or not a mapping of {', '.join(REQUIRED)}")
            missing = [k for k in REQUIRED if k not in entry]
            if missing:
                raise ValueError(f"catalog {path} lacks {missing}")
            entries[entry["name"]] = entry
    return entries


def catalog() -> dict[str, str]:
    """Names of the data sets :func:`fetch` knows, with their descriptions."""
    return {name: entry["description"].strip() for name, entry in load_catalog().items()}


def _check_content(path: Path) -> None:
    """Archives whose host publishes no hash are checked by reading every member's CRC."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            if bad is not None:
                raise ValueError(f"member {bad} fails its CRC check")
        elif tarfile.is_tarfile(path):
            with tarfile.open(path) as t:
                for member in t:
                    if member.isfile():
                        t.extractfile(member).read()
        else:
            raise ValueError("not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError, ValueError) as err:
        path.unlink(missing_ok=True)
        raise ValueError(f"corrupted download {path.name}: {err}; the file was removed, fetch again") from err


def _unwritable(folder: Path, err: OSError) -> OSError:
    """The same OSError subclass (PermissionError, NotADirectoryError, ...) with a message that says what to do."""
    return type(err)(err.errno, f"cannot write to the basinsx cache folder {folder} ({err.strerror}); "
                                f"make it writable or set ${DATA_ENV} to a writable folder")


def _download(entry: dict, item: dict, folder: Path, progress: bool) -> Path:
    import requests

    mirror = os.environ.get(MIRROR_ENV)
    url = f"{mirror.rstrip('/')}/{item['name']}" if mirror else item["url"]
    known = item.get("hash")
    try:
        # pooch writes to a temporary file and moves it into place only when complete and verified.
        path = Path(pooch.retrieve(url, known_hash=known, fname=item["name"], path=folder, progressbar=progress))
    except ValueError as err:
        raise ValueError(f"corrupted download of {item['name']} for {entry['name']} from {url}: {err}") from err
    except requests.RequestException as err:  # an OSError too: caught before the cache-folder case
        raise ConnectionError(f"download of {item['name']} for {entry['name']} from {url} failed: {err}; "
                              "nothing was kept, fetch again") from err
    except OSError as err:
        raise _unwritable(folder, err) from err
    if not known:
        _check_content(path)
    return path


def _unpack(archive: Path, dest: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")
    else:
        shutil.copy2(archive, dest / archive.name)


def _find_member(top: Path, member: str) -> Path | None:
    for depth in range(4):
        hits = sorted(top.glob("/".join(["*"] * depth + [member])))
        if hits:
            return hits[0]
    return None


def _lock(fd: int, name: str, lock: Path) -> None:
    """Take the exclusive lock on ``fd`` (released when it is closed), saying so when another process holds it."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for another process fetching {name} (lock {lock})", file=sys.stderr)
        fcntl.flock(fd, fcntl.LOCK_EX)


def fetch(name: str, *, progress: bool = True, **reader_kwargs) -> Path:
    """Download, verify, unpack and convert the catalog data set ``name`` to zarr.

    A second call returns the existing store at once (also from a read-only cache). Downloads
    are checked against the host's hash where it publishes one, otherwise by reading every
    archive member; a corrupted file raises and is removed. Unpacking and
    conversion happen in temporary folders renamed into place, so an interrupted
    fetch leaves nothing that is taken as valid. Processes fetching the same data set at
    once take turns (a lock file in the cache): the later ones find the store ready.
    ``$BASINSX_MIRROR`` replaces the hosts (file names appended); ``$BASINSX_DATA_DIR``
    sets the cache.

    Returns the path of the zarr store.

    Raises
    ------
    ConnectionError
        A download failed (refused, dropped part-way, HTTP error); names the URL.
    ValueError
        A download is corrupted (hash or archive check) or lacks a member of the layout.
    OSError
        The cache folder cannot be written (PermissionError, NotADirectoryError, ...); names it.
    """
    entries = load_catalog()
    if name not in entries:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(sorted(entries))}")
    entry = entries[name]
    kwargs = {**entry.get("reader_kwargs", {}), **reader_kwargs}
    suffix = "".join(f"-{k}={v}" for k, v in sorted(reader_kwargs.items()))
    cache = cache_dir()
    zarr_path = cache / f"{name}{suffix}.zarr"
    if is_zarr(zarr_path):
        return zarr_path
    lock = cache / f".{name}.lock"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=cache).close()  # the lock file may exist in a cache made read-only since
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o666)  # flock needs no write access: shared caches
    except OSError as err:
        raise _unwritable(cache, err) from err
    try:
        _lock(fd, name, lock)
        if is_zarr(zarr_path):  # written by the process we waited for
            return zarr_path
        return _fetch_locked(entry, cache, zarr_path, progress, kwargs)
    finally:
        os.close(fd)


def _fetch_locked(entry: dict, cache: Path, zarr_path: Path, progress: bool, kwargs: dict) -> Path:
    name = entry["name"]
    root = cache / name / "data"
    if not root.is_dir():
        archives = [_download(entry, item, cache / name / "downloads", progress) for item in entry["files"]]
        work = cache / name / f".unpack-{uuid.uuid4().hex[:8]}"
        try:
            work.mkdir(parents=True)
            for archive in archives:
                _unpack(archive, work)
            staged = work / "data"
            staged.mkdir()
            for member in entry["layout"]:
                found = _find_member(work, member)
                if found is None:
                    raise ValueError(f"{name}: the downloaded archives hold no {member!r}; expected {entry['layout']}")
                os.replace(found, staged / member)
            os.replace(staged, root)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    ds = get_reader(entry["reader"]).read(root, chunks=16, **kwargs)
    ds.attrs.update(license=entry["license"], citation=entry["citation"].strip())
    return to_zarr(ds, zarr_path, progress=progress)


def sha256(path) -> str:
    """``sha256:<hex>`` of a file, the form catalog ``hash`` fields take."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"
