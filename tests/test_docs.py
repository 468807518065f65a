"""The docs cannot rot: every ```python block of docs/**/*.md runs, and the site builds.

The blocks of one page run in order in one namespace, as a reader would type them. A block
that must not run is marked by a ``<!-- skip -->`` line right above its fence (used sparingly).
The build test runs ``mkdocs build --strict`` where the docs extra is installed
(``pip install -e ".[docs]"``) and skips elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("MINIGRAD_DEVICE") == "cuda", reason="the pages are written for the CPU (they call .numpy())"
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
# group 1: the line above the fence; group 2: the code up to the closing fence
FENCE = re.compile(r"^([^\n]*)\n```python\n(.*?)^```$", re.S | re.M)
SKIP = "<!-- skip -->"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The page's runnable ```python blocks as (line of their first line of code, code)."""
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(1).strip() != SKIP:
            blocks.append((text.count("\n", 0, match.start(2)) + 1, match.group(2)))
    return blocks


def test_docs_have_code():
    assert sum(len(python_blocks(page.read_text())) for page in PAGES) >= 20


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a page that writes files writes them here
    namespace = {"__name__": f"docs_{page.stem}"}
    for line, code in python_blocks(page.read_text()):
        # padded to its line, so tracebacks (and anomaly mode's) point into the page
        exec(compile("\n" * (line - 1) + code, str(page.relative_to(ROOT)), "exec"), namespace)


NO_MKDOCS = 'mkdocs is not installed: pip install -e ".[docs]"'


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason=NO_MKDOCS)
def test_site_builds(tmp_path):
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(tmp_path)]
    result = subprocess.run(build, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
