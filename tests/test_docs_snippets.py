"""Every ```python block of ``docs/*.md`` and ``README.md`` runs, as a reader pasting a page's blocks in order would.

A block preceded by ``<!-- skip: reason -->`` (downloads, a cluster, hours of work) is reported as skipped
with that reason. Bare expressions are evaluated and their ``repr`` taken, as an interactive session shows them.
The blocks of one page share a namespace; a page runs in a fresh folder next to a link to ``shared/``, so the
docs' paths relative to the project root (``../shared/data/...``) resolve, and files the blocks write go away.
"""

import ast
import os
import re
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
# an optional skip comment, then a fenced python block
BLOCK = re.compile(r"(?:<!--\s*skip:\s*(?P<skip>.*?)\s*-->\s*\n)?^```python[ \t]*\n(?P<code>.*?)^```[ \t]*$",
                   re.MULTILINE | re.DOTALL)


def blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, skip reason or None)`` of each python block of ``page``, in order."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start("code")) + 1, m["code"], m["skip"]) for m in BLOCK.finditer(text)]


CASES = [pytest.param(page, i, id=f"{page.relative_to(ROOT)}:{line}")
         for page in PAGES for i, (line, _, _) in enumerate(blocks(page))]


def run_block(code: str, filename: str, namespace: dict) -> None:
    """Execute ``code`` statement by statement, taking the ``repr`` of bare expressions like a REPL."""
    for node in ast.parse(code, filename).body:
        if isinstance(node, ast.Expr):
            repr(eval(compile(ast.Expression(node.value), filename, "eval"), namespace))
        else:
            exec(compile(ast.Module([node], type_ignores=[]), filename, "exec"), namespace)


class Page:
    """The namespace and folder of one page, its blocks run once each, in order, as tests ask for them."""

    def __init__(self, page: Path, folder: Path):
        self.page, self.folder, self.namespace, self.done = page, folder, {"__name__": "__main__"}, 0
        self.blocks, self.failed = blocks(page), None
        (folder / "shared").symlink_to(ROOT.parent / "shared")
        (folder / "repo").mkdir()

    def run_through(self, index: int) -> None:
        while self.done <= index:
            line, code, skip = self.blocks[self.done]
            name = f"{self.page.relative_to(ROOT)}:{line}"
            self.done += 1
            if self.failed:
                raise AssertionError(f"an earlier block of the page failed: {self.failed}")
            if skip:
                continue
            cwd = os.getcwd()
            os.chdir(self.folder / "repo")
            try:
                # line numbers in tracebacks are the page's own
                run_block("\n" * (line - 1) + code, str(self.page), self.namespace)
            except BaseException as e:
                self.failed = f"{name}: {type(e).__name__}: {e}"
                raise
            finally:
                os.chdir(cwd)


def test_every_python_fence_is_found():
    # a fence the pattern missed (```py, ``` python) would silently never run
    for page in PAGES:
        fences = re.findall(r"^```[ \t]*(?:python|py|pycon)\b", page.read_text(), re.MULTILINE)
        assert len(fences) == len(blocks(page)), f"{page.relative_to(ROOT)}: write python blocks as ```python"


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    matplotlib.use("Agg")
    opened: dict[Path, Page] = {}
    yield lambda page: opened.setdefault(page, Page(page, tmp_path_factory.mktemp(page.stem)))


@pytest.mark.parametrize(("page", "index"), CASES)
def test_doc_block_runs(pages, page, index):
    _, _, skip = blocks(page)[index]
    if skip:
        pytest.skip(skip)
    pages(page).run_through(index)
