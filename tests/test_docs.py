"""The documentation holds together: every relative link in README.md, docs/ and bench/README.md
reaches a file (and, for ``#anchor``, a heading with that GitHub slug), the README stays under
200 lines, every docs page is linked from docs/index.md or the README and opens with a one-line
summary.

Pure file reading: no network (http(s) and mailto links are left alone), no rendering.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
INDEX = DOCS / "index.md"
README_MAX_LINES = 200

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
INLINE_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)  # within a paragraph, over line breaks
# [text](target) and ![alt](target), with an optional "title"; text may hold `code` or brackets
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md")), ROOT / "bench" / "README.md"]


def _prose_lines(path: Path) -> list[str]:
    """The file's lines outside fenced code blocks (a fence's own lines count as code)."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation other than
    ``-`` and ``_`` dropped, each space a hyphen."""
    text = INLINE_CODE.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"(\*\*|__|\*)", "", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a page offers: its headings' slugs (repeats get -1, -2, ... as on
    GitHub) and explicit ``<a id=...>`` / ``<a name=...>``."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in _prose_lines(path):
        found.update(HTML_ANCHOR.findall(line))
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path: Path) -> list[str]:
    """The link targets of a page's prose (not inside code blocks or inline code); a link or a
    code span may run over several lines of a paragraph, as in Markdown."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", "\n".join(_prose_lines(path))):
        out += LINK.findall(INLINE_CODE_SPAN.sub("", paragraph))
    return out


def _external(target: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) is not None  # http:, mailto:, ...


def broken_links(path: Path) -> list[str]:
    """Each relative link of ``path`` whose file or anchor does not exist, with the reason."""
    wrong = []
    for target in links(path):
        if _external(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not dest.exists():
            wrong.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and unquote(anchor) not in anchors(dest):
            wrong.append(f"{target}: no heading #{anchor} in {dest.name}")
    return wrong


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert not broken_links(page), broken_links(page)


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_every_docs_page_is_linked_from_the_index_or_the_readme() -> None:
    linked = set()
    for page in (README, INDEX):
        for target in links(page):
            if not _external(target) and target.partition("#")[0]:
                linked.add((page.parent / unquote(target.partition("#")[0])).resolve())
    pages = {p.resolve() for p in DOCS.rglob("*.md")} - {INDEX.resolve()}
    assert not sorted(pages - linked), "not linked from docs/index.md or README.md"
    assert INDEX.resolve() in linked, "README.md does not link docs/index.md"


@pytest.mark.parametrize("page", sorted(DOCS.rglob("*.md")), ids=lambda p: p.name)
def test_each_docs_page_opens_with_a_title_and_a_one_line_summary(page: Path) -> None:
    lines = page.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 4 and lines[0].startswith("# "), "the first line is the page's title"
    assert lines[1] == "" and lines[3] == "", "a one-line summary after the title, on its own"
    assert lines[2].strip() and not re.match(r"^\s*([-*|#>]|```|\d+\.)", lines[2]), lines[2]


def test_the_checks_catch_what_they_should(tmp_path: Path) -> None:
    """The checker itself: a missing file, a missing anchor and a link in code are told apart,
    and slugs follow GitHub's rule."""
    (tmp_path / "b.md").write_text("# B\n\n## `x_y`: a, b (c)\n\n## Again\n\n## Again\n")
    page = tmp_path / "a.md"
    page.write_text("[ok](b.md#x_y-a-b-c) [ok2](b.md#again-1) [bad](c.md) [bad2](b.md#nope)\n"
                    "`[in code](nowhere.md)` [web](https://example.com/x) `code over\n"
                    "two lines [in code](nowhere.md)` ![an image over\ntwo lines](d.png)\n"
                    "```\n[fenced](nowhere.md)\n```\n")
    wrong = broken_links(page)
    assert [w.split(":")[0] for w in wrong] == ["c.md", "b.md#nope", "d.png"]
    assert slug("What the table, `--json` and the page show first") == (
        "what-the-table---json-and-the-page-show-first")
    assert slug("Devices for training: `--train-device auto|cpu|cuda`") == (
        "devices-for-training---train-device-autocpucuda")
