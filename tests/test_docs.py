"""The documentation site builds offline with ``mkdocs build --strict``, and its API reference is complete."""

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# roles of the numpydoc docstrings that docs/griffe_sphinx_roles.py must have turned into links or code
SPHINX_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj|math):(?:`|<code>)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    # the docs extra, whether or not its scripts are on PATH
    for module in ("mkdocs", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs extra (mkdocs, mkdocstrings[python]) is not installed")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-5000:]
    return out


def public_objects() -> dict[str, object]:
    """Canonical path -> griffe object of every public name of basinsx and its subpackages.

    Public: in a module's ``__all__``, or a function or class defined in the module without a leading
    underscore; modules with a leading underscore are private, and so is everything in them.
    """
    griffe = pytest.importorskip("griffe")
    package = griffe.load("basinsx", search_paths=[str(ROOT)], resolve_aliases=True, resolve_external=False)

    def modules(module):
        yield module
        for sub in module.modules.values():
            if not sub.is_alias and not sub.name.startswith("_"):
                yield from modules(sub)

    found = {}
    for module in modules(package):
        for name, obj in module.members.items():
            exported = module.exports is not None and name in module.exports
            if name.startswith("_") or not (exported or (not obj.is_alias and (obj.is_function or obj.is_class))):
                continue
            target = obj.final_target if obj.is_alias else obj
            found[target.path] = target
    return found


def documented(api_html: str) -> dict[str, object]:
    """Heading id -> griffe object (aliases resolved) of every object that has an entry in the API page."""
    griffe = pytest.importorskip("griffe")
    package = griffe.load("basinsx", search_paths=[str(ROOT)], resolve_aliases=True, resolve_external=False)
    ids = re.findall(r'<h\d id="(basinsx[\w.]*)" class="doc doc-heading"', api_html)
    assert ids, "no mkdocstrings heading in the API page"
    objs = {ident: package if ident == "basinsx" else package[ident.removeprefix("basinsx.")] for ident in ids}
    assert len(objs) == len(ids), "two entries of the API page share an anchor"
    return {ident: obj.final_target if obj.is_alias else obj for ident, obj in objs.items()}


def test_site_builds(site):
    api = (site / "api" / "index.html").read_text()
    for name in ("open_dataset", "calibrate", "KGSSL", "Aquifer", "permeability"):
        assert name in api
    for page in ("data", "calibration", "embedding", "inversion", "porenet", "cluster", "benchmarks",
                 *(f"benchmarks/{area}" for area in ("data", "calibration", "embedding", "inversion", "porenet"))):
        assert (site / page / "index.html").exists(), page


def test_api_reference_documents_every_public_name_once(site):
    paths = [obj.path for obj in documented((site / "api" / "index.html").read_text()).values()]
    public = public_objects()
    assert len(public) > 150  # the enumeration itself works
    missing = sorted(set(public) - set(paths))
    assert not missing, f"public names without an entry in docs/api.md: {missing}"
    # a function or class of a module once (inherited methods and re-exported constants may recur)
    twice = sorted({p for p in paths if paths.count(p) > 1 and (public.get(p) and not public[p].is_attribute)})
    assert not twice, f"documented twice in docs/api.md (filter the re-export in its defining module): {twice}"
    undocumented = sorted(p for p, obj in public.items() if (obj.is_function or obj.is_class) and not obj.docstring)
    assert not undocumented, f"public functions and classes without a docstring: {undocumented}"


def test_api_entries_have_heading_signature_and_docstring(site):
    api = (site / "api" / "index.html").read_text()
    objs = documented(api)
    for name in ("basinsx.models.available", "basinsx.models.NegativePETWarning", "basinsx.signatures.baseflow",
                 "basinsx.groundwater.conductivity", "basinsx.open_dataset", "basinsx.inverse.TNNA"):
        assert name in objs, name
        assert f'class="reference internal" href="#{name}"' in api, f"{name} is not in the table of contents"
    # a function's heading is followed by its signature, and so is a class's when it has an __init__
    signatures = dict(re.findall(r'<h\d id="(basinsx[\w.]*)" class="doc doc-heading">.*?</h\d>\s*'
                                 r'(?:<div class="doc-signature highlight">(.*?)</div>)?', api, re.DOTALL))
    callables = [ident for ident, obj in objs.items()
                 if obj.is_function or (obj.is_class and "__init__" in obj.all_members)]
    assert len(callables) > 150
    no_signature = [ident for ident in callables if "(" not in html.unescape(signatures[ident])]
    assert not no_signature, f"entries without a signature: {no_signature}"
    no_docstring = [ident for ident in callables if not re.search(
        rf'id="{re.escape(ident)}".*?<div class="doc doc-contents ">\s*<p>', api, re.DOTALL)]
    assert not no_docstring, f"entries without a docstring: {no_docstring}"


def test_sphinx_roles_become_links_or_code(site):
    api = (site / "api" / "index.html").read_text()
    left = SPHINX_ROLE.search(api)
    assert not left, api[left.start() - 200:left.end() + 100]
    # :func:`basinsx.models.available` in models.get, resolved in its module's scope
    assert re.search(r'<a class="autorefs autorefs-internal"[^>]*href="#basinsx\.models\.available"', api)
    # :func:`dask.compute` is not in the site: plain code
    assert '<span title="dask.compute"><code>dask.compute</code></span>' in api
    # a role naming a public basinsx object that has no entry is a broken reference
    broken = {t for t in re.findall(r'<span title="(basinsx[\w.]*)"><code>', api) if "._" not in t}
    assert not broken, f"docstrings refer to basinsx objects the reference does not have: {sorted(broken)}"


def test_site_loads_nothing_from_the_network(site):
    remote = re.compile(r"^(?:https?:)?//", re.IGNORECASE)
    offenders = []
    for page in site.rglob("*.html"):
        text = page.read_text()
        for tag in re.findall(r"<(?:script|img|link|iframe|source)\b[^>]*>", text, re.IGNORECASE):
            # <link rel="canonical"> and the like are not loaded; stylesheets, icons and scripts are
            if tag.lower().startswith("<link") and not re.search(r'rel="(?:stylesheet|icon|preload|modulepreload)',
                                                                 tag, re.IGNORECASE):
                continue
            for url in re.findall(r'\b(?:src|href)="([^"]*)"', tag):
                if remote.match(url):
                    offenders.append(f"{page.relative_to(site)}: {url}")
    for sheet in site.rglob("*.css"):
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)|@import\s+['\"]([^'\"]+)", sheet.read_text()):
            if remote.match(url[0] or url[1]):
                offenders.append(f"{sheet.relative_to(site)}: {url[0] or url[1]}")
    assert not offenders, offenders
    assert (site / "css" / "pygments.css").exists()
    assert 'class="highlight"' in (site / "index.html").read_text()  # code is highlighted at build time
