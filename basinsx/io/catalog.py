"""Data-set catalogs (``basinsx/io/catalogs/*.yaml``) and :func:`fetch`: download, verify, unpack, convert to zarr
once, and again when the catalog entry or the basinsx version changes."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import reprlib
import shutil
import string
import sys
import tarfile
import tempfile
import uuid
import zipfile
import zlib
from importlib.resources import files
from pathlib import Path, PureWindowsPath

import pooch
import yaml
from pooch.hashes import ALGORITHMS_AVAILABLE

from .conventions import package_version
from .registry import get_reader
from .store import is_zarr, to_zarr, warn_recovered, write_file

try:
    import fcntl
except ImportError:  # Windows: concurrent fetches of one data set are not serialised
    fcntl = None

DATA_ENV = "BASINSX_DATA_DIR"
MIRROR_ENV = "BASINSX_MIRROR"
CATALOG_ENV = "BASINSX_CATALOGS"
REQUIRED = ("name", "description", "license", "citation", "files", "reader", "layout")
#: Zarr attribute of a store :func:`fetch` converted: the catalog entry and basinsx version it came from (JSON).
RECORD = "basinsx_fetch"
#: File in ``NAME/data`` naming the downloads (URL, hash) and layout it was unpacked from.
DATA_RECORD = ".basinsx-fetch.json"
PLAIN = "a plain file or folder name (no '/', '\\', ':', control characters or leading '.')"


def cache_dir() -> Path:
    """Where downloads and converted stores live (``$BASINSX_DATA_DIR`` overrides)."""
    return Path(os.environ.get(DATA_ENV) or pooch.os_cache("basinsx")).expanduser()


def _entries() -> dict[str, tuple[dict, str]]:
    """Every checked catalog entry by name, with the path of its catalog file."""
    folders = [files("basinsx.io") / "catalogs"]
    folders += [Path(p) for p in os.environ.get(CATALOG_ENV, "").split(os.pathsep) if p]
    entries, seen = {}, set()
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"catalog folder {folder} (from ${CATALOG_ENV}) does not exist")
        if os.path.realpath(str(folder)) in seen:  # a folder given twice is read once
            continue
        seen.add(os.path.realpath(str(folder)))
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
            _check_entry(entry, path)
            name = entry["name"]
            if name in entries:
                raise ValueError(f"catalog {path} defines {name!r}, which {entries[name][1]} defines too; rename one "
                                 "of them (an entry never replaces another: their downloads and stores would mix)")
            entries[name] = (entry, str(path))
    return entries


def load_catalog() -> dict[str, dict]:
    """Every catalog entry by name: the packaged ones, then those in ``$BASINSX_CATALOGS`` folders.

    Each entry is checked: field types, names that must stay inside the cache (``name``,
    ``files[].name``, ``layout``), hashes pooch can check. A name defined twice is an error
    naming both files. Raises ``ValueError`` naming the catalog file, the entry and the field.
    """
    return {name: entry for name, (entry, _) in _entries().items()}


def _show(value) -> str:
    """``repr(value)``, shortened: a field can hold a huge nested list (a YAML alias bomb)."""
    return reprlib.repr(value)


def _plain(name) -> bool:
    """Whether ``name`` is one file or folder name that stays where it is joined (no separator, no '..')."""
    return (isinstance(name, str) and name != "" and not name.startswith(".") and name.isprintable()
            and not any(c in name for c in "/\\:"))


def _relative(member) -> bool:
    """Whether ``member`` is a relative '/'-separated path that stays inside the folder it is joined to."""
    return (isinstance(member, str) and member.isprintable() and "\\" not in member
            and not PureWindowsPath(member).drive and all(p not in ("", ".", "..") for p in member.split("/")))


def _hash_problem(known) -> str | None:
    """Why pooch could not check the catalog hash ``known`` (None: it can, or there is none)."""
    if known is None:
        return None
    if not isinstance(known, str):
        return f"must be a string ALGORITHM:HEX (or null), got {_show(known)}"
    if not known:
        return "is empty; write null where the host publishes no hash"
    if known.count(":") > 1:
        return f"{known!r} is not ALGORITHM:HEX"
    alg, _, digest = known.rpartition(":")
    alg = alg.lower() or "sha256"
    usable = sorted(a for a in ALGORITHMS_AVAILABLE if not a.startswith("shake"))
    if alg not in usable:
        return f"{known!r} names an unknown hash algorithm {alg!r}; known: {', '.join(usable)}"
    try:
        width = 2 * ALGORITHMS_AVAILABLE[alg]().digest_size
    except (ValueError, TypeError) as err:  # listed, but disabled in this OpenSSL build (FIPS)
        return f"{known!r}: the hash algorithm {alg!r} is not available here ({err})"
    if len(digest) != width or any(c not in string.hexdigits for c in digest):
        return f"{known!r}: the {alg} digest {digest!r} is not {width} hex digits"
    return None


def _check_entry(entry: dict, path) -> None:
    """Raise ``ValueError`` naming ``path``, the entry and the field unless ``entry`` is well formed and every name
    it gives a path stays inside the cache or the unpacked archives."""
    name = entry.get("name")

    def bad(field, why):
        return ValueError(f"catalog {path}, entry {_show(name)}: {field} {why}")

    for key in ("name", "description", "license", "citation", "reader"):
        if not isinstance(entry[key], str):
            raise bad(key, f"must be a string, got {_show(entry[key])}")
    if not _plain(name):
        raise bad("name", f"{name!r} is not {PLAIN}")
    kwargs = entry.get("reader_kwargs")
    if kwargs is not None and (not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs)):
        raise bad("reader_kwargs", f"must be a mapping of option names to values, got {_show(kwargs)}")
    items = entry["files"]
    if not isinstance(items, list) or not items:
        raise bad("files", f"must be a non-empty list of mappings of name, url, hash; got {_show(items)}")
    first = {}
    for i, item in enumerate(items):
        field = f"files[{i}]"
        if not isinstance(item, dict):
            raise bad(field, f"must be a mapping of name, url, hash; got {_show(item)}")
        for key in ("name", "url"):
            if key not in item:
                raise bad(field, f"lacks {key}")
            if not isinstance(item[key], str):
                raise bad(f"{field}.{key}", f"must be a string, got {_show(item[key])}")
        if not _plain(item["name"]):
            raise bad(f"{field}.name", f"{item['name']!r} is not {PLAIN}")
        if item["name"] in first:
            raise bad(f"{field}.name", f"{item['name']!r} is already files[{first[item['name']]}].name")
        first[item["name"]] = i
        problem = _hash_problem(item.get("hash"))
        if problem:
            raise bad(f"{field}.hash", problem)
        size = item.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise bad(f"{field}.size", f"must be a number of bytes, got {_show(size)}")
    layout = entry["layout"]
    if not isinstance(layout, list) or not layout:
        raise bad("layout", f"must be a non-empty list of the folders the reader needs, got {_show(layout)}")
    for i, member in enumerate(layout):
        if not isinstance(member, str):
            raise bad(f"layout[{i}]", f"must be a string, got {_show(member)}")
        if not _relative(member):
            raise bad(f"layout[{i}]", f"{member!r} is not a relative path inside the archives "
                                      "('/'-separated, without '..', '.', '\\', a leading '/' or a drive)")


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


def _in(folder: Path, name: str, what: str) -> Path:
    """``folder / name``, checked where it is used (load_catalog checks too): ``name`` never leaves ``folder``."""
    if not _plain(name):
        raise ValueError(f"{what} {name!r} is not a plain name: it would leave {folder} ({PLAIN} is needed)")
    return folder / name


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None


def _download(entry: dict, item: dict, folder: Path, progress: bool) -> Path:
    """``item`` of ``entry`` in ``folder``, downloaded unless there and known to be the file the entry names: by its
    hash, or (``hash: null``) by the record ``.NAME.source.json`` of the URL it came from."""
    import requests

    mirror = os.environ.get(MIRROR_ENV)
    url = f"{mirror.rstrip('/')}/{item['name']}" if mirror else item["url"]
    known = item.get("hash")
    target = _in(folder, item["name"], f"{entry['name']}: file")
    source = {"url": item["url"], "hash": known}  # the catalog's URL: a mirror serves copies of the same files
    record = folder / f".{item['name']}.source.json"
    try:
        if not known and (target.exists() or target.is_symlink()) and _read_json(record) != source:
            print(f"{target} is not known to come from {item['url']}: downloading it again", file=sys.stderr)
            record.unlink(missing_ok=True)
            target.unlink()
    except OSError as err:
        raise _unwritable(folder, err) from err
    try:
        # pooch writes to a temporary file and moves it into place only when complete and verified; with a hash
        # it downloads again a file already there that does not match it.
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
    if _read_json(record) != source:
        try:
            write_file(record, lambda tmp: Path(tmp).write_text(json.dumps(source)))
        except OSError as err:
            raise _unwritable(folder, err) from err
    return path


def _unpack(archive: Path, dest: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest)  # zipfile drops '..', drive letters and leading '/' from member names
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            try:
                t.extractall(dest, filter="data")
            except tarfile.FilterError as err:
                member = err.tarinfo.name if err.tarinfo is not None else "?"
                raise ValueError(f"{archive}: member {member!r} is refused ({err}); nothing of the archive "
                                 "is used: check its source") from err
    else:
        shutil.copy2(archive, dest / archive.name)


def _find_member(top: Path, member: str) -> Path | None:
    """The layout ``member`` at the top of ``top`` or up to three folders down; it never leaves ``top``."""
    if not _relative(member):
        raise ValueError(f"layout member {member!r} leaves the unpacked archives: a relative path without '..' "
                         "is needed")
    for depth in range(4):
        hits = sorted(top.glob("/".join(["*"] * depth + [glob.escape(member)])))
        if hits:
            if not hits[0].resolve().is_relative_to(top.resolve()):  # a link out of the archives
                raise ValueError(f"layout member {member!r} leaves the unpacked archives: {hits[0]} is "
                                 f"{hits[0].resolve()}")
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


def _json(value):
    """``value`` as it reads back from JSON (tuples as lists, other objects as strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _record(entry: dict, catalog_file: str, kwargs: dict) -> dict:
    """What a store converted from ``entry`` with reader options ``kwargs`` holds, and what converted it."""
    return _json({"name": entry["name"], "catalog": catalog_file,
                  "files": [{"name": i["name"], "url": i["url"], "hash": i.get("hash")} for i in entry["files"]],
                  "layout": entry["layout"], "reader": entry["reader"], "reader_kwargs": kwargs,
                  "license": entry["license"], "citation": entry["citation"].strip(),
                  "basinsx_version": package_version()})


def _stored_record(store: Path) -> dict | None:
    """The record of the store :func:`fetch` converted at ``store``; None if there is none.

    Raises ``ValueError`` for anything else there (a store without the record: the user's own, or one fetched by
    an older basinsx, which recorded nothing), which is neither used nor replaced.
    """
    if not store.exists() and not store.is_symlink():
        return None
    attrs = (_read_json(store / ".zattrs") or (_read_json(store / "zarr.json") or {}).get("attributes")
             if is_zarr(store) else None)
    try:
        record = json.loads(attrs[RECORD])
        if not isinstance(record, dict):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{store} was not written by basinsx.fetch (it has no {RECORD} record): it may be your own, "
                         "so it is neither used nor replaced; move it away (or delete it, if an older basinsx "
                         "fetched it) and fetch again") from None
    return record


def _differences(stored: dict, record: dict) -> list[str]:
    """What differs between the store's record and the current one; the catalog file alone does not count."""

    def short(value):
        text = repr(value)
        return text if len(text) <= 160 else text[:157] + "..."

    return [f"{key} {short(stored.get(key))} (now {short(value)})" for key, value in record.items()
            if key != "catalog" and stored.get(key) != value]


def _stale(store: Path, record: dict, name: str, said: str = "") -> str | None:
    """None if ``store`` is current for ``record``; else ``""`` if there is no store, or what differs (said on
    stderr unless it is ``said`` already). Raises for a ``store`` fetch did not write."""
    stored = _stored_record(store)
    if stored is None:
        return ""
    differences = "; ".join(_differences(stored, record))
    if differences and differences != said:
        print(f"{store} was converted from another catalog entry or by another basinsx: {differences}; "
              f"fetching {name} again", file=sys.stderr)
    return differences or None


def fetch(name: str, *, progress: bool = True, **reader_kwargs) -> Path:
    """Download, verify, unpack and convert the catalog data set ``name`` to zarr.

    A second call returns the existing store at once (also from a read-only cache) when it
    was converted from the same catalog entry (files, URLs, hashes, layout, reader and its
    options, license, citation) by the same basinsx version: the store's zarr attribute
    ``basinsx_fetch`` records them. Otherwise what changed is fetched again: files whose URL or
    hash changed are downloaded, the archives unpacked and the store converted anew, each
    replacing the old one only when complete (what differs is said on stderr). A ``NAME.zarr``
    in the cache without that record is refused (``ValueError``), never used or replaced.
    Downloads are checked against the host's hash where it publishes one, otherwise by reading
    every archive member; a corrupted file raises and is removed. Unpacking and
    conversion happen in temporary folders renamed into place, so an interrupted
    fetch leaves nothing that is taken as valid, and the next fetch removes its unpack folder.
    Processes fetching the same data set at
    once take turns (a lock file in the cache): the later ones find the store ready.
    ``$BASINSX_MIRROR`` replaces the hosts (file names appended); ``$BASINSX_DATA_DIR``
    sets the cache.

    Returns the path of the zarr store.

    Raises
    ------
    ConnectionError
        A download failed (refused, dropped part-way, HTTP error); names the URL.
    ValueError
        A catalog entry is malformed (names the file, entry and field), a download is corrupted
        (hash or archive check), an archive holds an unsafe member or lacks one of the layout,
        or the cache holds a ``NAME.zarr`` that fetch did not write.
    OSError
        The cache folder cannot be written (PermissionError, NotADirectoryError, ...); names it.
    """
    entries = _entries()
    if name not in entries:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(sorted(entries))}")
    entry, catalog_file = entries[name]
    _check_entry(entry, catalog_file)  # checked on load; again here, where its names become paths
    kwargs = {**(entry.get("reader_kwargs") or {}), **reader_kwargs}
    cache = cache_dir()
    folder = _in(cache, name, "data set name")
    suffix = "".join(f"-{k}={v}" for k, v in sorted(reader_kwargs.items()))
    if not _plain(f"{name}{suffix}.zarr"):
        options = ", ".join(f"{k}={v!r}" for k, v in sorted(reader_kwargs.items()))
        raise ValueError(f"reader options {options} cannot name a store in the cache {cache}: "
                         f"{name}{suffix}.zarr is not {PLAIN}")
    zarr_path = cache / f"{name}{suffix}.zarr"
    record = _record(entry, catalog_file, kwargs)
    said = _stale(zarr_path, record, name)
    if said is None:
        return zarr_path
    lock = cache / f".{name}.lock"  # name is plain (checked above): the lock stays in the cache
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=cache).close()  # the lock file may exist in a cache made read-only since
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o666)  # flock needs no write access: shared caches
    except OSError as err:
        raise _unwritable(cache, err) from err
    try:
        _lock(fd, name, lock)
        warn_recovered(zarr_path)  # a conversion killed between its two renames: the old store back in place
        now = _stale(zarr_path, record, name, said)  # the process we waited for may have written it
        if now is None:
            return zarr_path
        return _fetch_locked(entry, folder, zarr_path, progress, kwargs, record, replace=bool(now))
    finally:
        os.close(fd)


def _remove_stale_unpacks(folder: Path) -> None:
    """Remove the unpack folders of fetches killed while unpacking.

    Unpacking happens only under the lock of the data set, which the caller holds: every
    ``.unpack-*`` folder there now belongs to a process that is gone. Without ``fcntl``
    (Windows) fetches do not take turns, so nothing is removed.
    """
    if fcntl is None:
        return
    for work in sorted(folder.glob(".unpack-*")):
        shutil.rmtree(work, ignore_errors=True)
        print(f"removed {work}, left by a fetch killed while unpacking", file=sys.stderr)


def _fetch_locked(entry: dict, folder: Path, zarr_path: Path, progress: bool, kwargs: dict, record: dict,
                  replace: bool) -> Path:
    name = entry["name"]
    if folder.is_dir():
        _remove_stale_unpacks(folder)
    root = folder / "data"
    unpacked = {"files": record["files"], "layout": record["layout"]}
    if _read_json(root / DATA_RECORD) != unpacked:
        if root.exists():
            print(f"{root} was unpacked from other files or by another layout: unpacking again", file=sys.stderr)
        archives = [_download(entry, item, folder / "downloads", progress) for item in entry["files"]]
        work = folder / f".unpack-{uuid.uuid4().hex[:8]}"
        try:
            top = work / "files"
            top.mkdir(parents=True)
            for archive in archives:
                _unpack(archive, top)
            staged = work / "data"
            staged.mkdir()
            for member in entry["layout"]:
                found = _find_member(top, member)
                if found is None:
                    raise ValueError(f"{name}: the downloaded archives hold no {member!r}; expected {entry['layout']}")
                dest = staged / member
                if not dest.resolve().is_relative_to(staged.resolve()):
                    raise ValueError(f"{name}: layout member {member!r} leaves {staged}")
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(found, dest)
            (staged / DATA_RECORD).write_text(json.dumps(unpacked))
            if root.exists() or root.is_symlink():
                os.replace(root, work / "old")  # removed with the unpack folder, once the new one is in place
            os.replace(staged, root)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    ds = get_reader(entry["reader"]).read(root, chunks=16, **kwargs)
    ds.attrs.update({"license": entry["license"], "citation": entry["citation"].strip(), RECORD: json.dumps(record)})
    return to_zarr(ds, zarr_path, progress=progress, overwrite=replace)


def sha256(path) -> str:
    """``sha256:<hex>`` of a file, the form catalog ``hash`` fields take."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"
