import collections
import http.server
import os
import re
import subprocess
import sys
import threading
import zipfile
from functools import partial
from importlib.resources import files

import pytest
import requests
import xarray as xr
import yaml

import basinsx
from basinsx.io.catalog import load_catalog, sha256

BASINS = ["01031500", "01055000"]


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; paths under /cut/ send half the file, then hang up (an interrupted download);
    paths under /together/ wait (up to 5 s) until a second request arrives, so two clients download at once."""

    def do_GET(self):
        self.server.hits[self.path] += 1
        if self.path.startswith("/together/"):
            try:
                self.server.together.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass  # no second client came (it waited for the first instead)
            self.path = self.path.replace("/together/", "/", 1)
        if self.path.startswith("/cut/"):
            path = self.translate_path(self.path.replace("/cut/", "/", 1))
            body = open(path, "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    """A local HTTP server on 127.0.0.1 holding a two-basin Caravan archive (and broken copies)."""
    root = tmp_path_factory.mktemp("www")
    src = data_dir / "caravan"
    archive = root / "mini-caravan.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for b in BASINS:
            z.write(src / f"timeseries/netcdf/camels/camels_{b}.nc", f"Caravan/timeseries/netcdf/camels/camels_{b}.nc")
        for table in (src / "attributes/camels").glob("*.csv"):
            z.write(table, f"Caravan/attributes/camels/{table.name}")
        z.writestr("Caravan/licenses/README.txt", "CC-BY-4.0")
    data = archive.read_bytes()
    (root / "corrupt.zip").write_bytes(data[:200] + bytes(b ^ 0xFF for b in data[200:400]) + data[400:])
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    httpd.hits, httpd.together = collections.Counter(), threading.Barrier(2)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, httpd.hits
    httpd.shutdown()


def write_catalog(folder, name, url, hash):
    folder.mkdir(parents=True, exist_ok=True)
    entry = {
        "name": name, "description": "two Caravan basins served locally", "license": "CC-BY-4.0",
        "citation": "Kratzert et al. 2023", "reader": "caravan", "reader_kwargs": {"subset": "camels"},
        "layout": ["attributes", "timeseries", "licenses"],
        "files": [{"name": url.rsplit("/", 1)[1], "url": url, "hash": hash}],
    }
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(entry))


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("BASINSX_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BASINSX_CATALOGS", str(tmp_path / "catalogs"))
    monkeypatch.delenv("BASINSX_MIRROR", raising=False)
    (tmp_path / "catalogs").mkdir()
    return tmp_path


def test_packaged_catalogs():
    names = basinsx.catalog()
    assert {"camels-us", "caravan"} <= set(names)
    assert (files("basinsx.io") / "catalogs" / "caravan.yaml").is_file()
    for entry in load_catalog().values():
        for item in entry["files"]:
            assert item["url"].startswith("https://") and "hash" in item


def test_fetch_converts_once_and_opens(server, env):
    base, root, _ = server
    write_catalog(env / "catalogs", "mini", f"{base}/mini-caravan.zip", sha256(root / "mini-caravan.zip"))
    assert "mini" in basinsx.catalog()
    store = basinsx.fetch("mini", progress=False)
    assert store.name == "mini.zarr" and (store / ".zmetadata").exists()
    ds = basinsx.open_dataset("mini")
    assert list(ds.basin.values) == BASINS and ds.attrs["license"] == "CC-BY-4.0"
    direct = basinsx.read_caravan(env / "cache/mini/data")
    xr.testing.assert_allclose(ds[["prcp", "streamflow"]].compute(), direct[["prcp", "streamflow"]])
    # a second call needs no network: the URL no longer answers
    write_catalog(env / "catalogs", "mini", "http://127.0.0.1:9/gone.zip", None)
    assert basinsx.fetch("mini", progress=False) == store


def test_mirror_replaces_the_host(server, env, monkeypatch):
    base, root, _ = server
    write_catalog(env / "catalogs", "mirrored", "https://unreachable.invalid/mini-caravan.zip",
                  sha256(root / "mini-caravan.zip"))
    monkeypatch.setenv("BASINSX_MIRROR", base)
    assert basinsx.open_dataset("mirrored").sizes["basin"] == 2


def _cache_holds_nothing(cache, name):
    """Nothing but the (empty) lock file is left."""
    leftovers = [p for p in cache.rglob("*") if p.is_file() and p.name != f".{name}.lock"] if cache.exists() else []
    assert not leftovers, leftovers
    assert not (cache / f"{name}.zarr").exists()


def test_corrupted_download_with_hash(server, env):
    base, root, _ = server
    write_catalog(env / "catalogs", "bad", f"{base}/corrupt.zip", sha256(root / "mini-caravan.zip"))
    with pytest.raises(ValueError, match="corrupted download"):
        basinsx.fetch("bad", progress=False)
    _cache_holds_nothing(env / "cache", "bad")


def test_corrupted_download_without_published_hash(server, env):
    base, _, _ = server
    write_catalog(env / "catalogs", "nohash", f"{base}/corrupt.zip", None)
    with pytest.raises(ValueError, match="corrupted download"):
        basinsx.fetch("nohash", progress=False)
    _cache_holds_nothing(env / "cache", "nohash")


@pytest.mark.parametrize("path", ["cut/mini-caravan.zip", "missing.zip", None])
def test_failed_download_names_the_url_and_is_never_taken_as_valid(server, env, path):
    """A connection dropped half way, a 404 and a refused connection: a ConnectionError naming the URL."""
    base, root, _ = server
    url = f"{base}/{path}" if path else "http://127.0.0.1:9/mini-caravan.zip"  # port 9: nothing listens
    write_catalog(env / "catalogs", "cut", url, sha256(root / "mini-caravan.zip"))
    with pytest.raises(ConnectionError, match=f"{re.escape(url)}.*fetch again") as info:
        basinsx.fetch("cut", progress=False)
    assert not isinstance(info.value, requests.RequestException)
    _cache_holds_nothing(env / "cache", "cut")


def test_concurrent_fetches_both_succeed(server, env):
    """Two processes fetch one data set at the same moment: both return the same store."""
    base, root, hits = server
    write_catalog(env / "catalogs", "both", f"{base}/together/mini-caravan.zip", sha256(root / "mini-caravan.zip"))
    # each client imports basinsx, says it is ready and waits for the other, so both start fetching together
    code = ("import pathlib, sys, time, basinsx; ready = pathlib.Path(sys.argv[1]); (ready / sys.argv[2]).touch()\n"
            "while len(list(ready.iterdir())) < 2: time.sleep(0.01)\n"
            "print(basinsx.fetch('both', progress=False))")
    (env / "ready").mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", code, str(env / "ready"), str(i)], env=os.environ.copy(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
    assert results[0][0] == results[1][0] == f"{env / 'cache' / 'both.zarr'}\n"
    assert hits["/together/mini-caravan.zip"] == 1  # the second waited for the first instead of downloading
    assert basinsx.open_dataset("both").sizes["basin"] == 2
    assert sorted(p.name for p in (env / "cache" / "both").iterdir()) == ["data", "downloads"]


@pytest.mark.parametrize("how", ["read-only", "under-a-file"])
def test_unwritable_cache_names_the_folder(server, env, monkeypatch, how):
    base, root, _ = server
    write_catalog(env / "catalogs", "mini", f"{base}/mini-caravan.zip", sha256(root / "mini-caravan.zip"))
    if how == "read-only":
        cache = env / "cache"
        store = basinsx.fetch("mini", progress=False)
        cache.chmod(0o555)  # a store already there is still returned from a read-only cache
        try:
            try:
                (cache / "probe").touch()
            except PermissionError:
                pass
            else:
                pytest.skip("chmod does not stop this user (root) from writing; the under-a-file case still runs")
            assert basinsx.fetch("mini", progress=False) == store
            with pytest.raises(PermissionError, match=f"{re.escape(str(cache))}.*BASINSX_DATA_DIR"):
                basinsx.fetch("mini", progress=False, subset="camels")  # another store: needs writing
        finally:
            cache.chmod(0o755)
    else:
        (env / "a-file").write_text("not a folder")
        cache = env / "a-file" / "cache"
        monkeypatch.setenv("BASINSX_DATA_DIR", str(cache))
        with pytest.raises(NotADirectoryError, match=f"{re.escape(str(cache))}.*BASINSX_DATA_DIR"):
            basinsx.fetch("mini", progress=False)


def test_unknown_name(env):
    with pytest.raises(KeyError, match="unknown data set 'nope'; known: .*caravan"):
        basinsx.fetch("nope")


@pytest.mark.parametrize("text, message", [("", "is empty or not a mapping"), ("name: [unclosed", "is not valid YAML"),
                                           ("- a\n- b\n", "is empty or not a mapping")])
def test_a_broken_catalog_file_is_an_error_naming_it(env, text, message):
    path = env / "catalogs" / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"catalog {path} {message}"):  # before: a bare TypeError or ScannerError
        basinsx.catalog()


def test_reader_options_that_do_not_apply_are_errors(tmp_path):
    with pytest.raises(ValueError, match=r"the bundled sample takes no reader options; got \['forcing'\]"):
        basinsx.open_dataset("sample", forcing="nldas")  # before: ignored
    store = basinsx.to_zarr(basinsx.open_dataset("sample").isel(basin=[0]), tmp_path / "s.zarr")
    with pytest.raises(ValueError, match=r"a zarr store takes no reader options; got \['subset'\]"):
        basinsx.open_dataset(store, subset="camelsgb")
