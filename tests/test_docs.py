"""Every relative link in the README and docs/ points at a file inside the repository."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# [text](target) and [text](target "title"); images too. Reference-style definitions: [x]: target
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
EXTERNAL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|//)")  # https:, mailto:, //host


def links(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    text = FENCE.sub("", text)
    # Code spans are not links, but a link's text may be a code span: drop only bare ones.
    text = CODE_SPAN.sub("code", text)
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)


def relative_links() -> list[tuple[Path, str]]:
    found = []
    for page in PAGES:
        for target in links(page):
            if EXTERNAL.match(target) or target.startswith("#"):
                continue
            found.append((page, target))
    return found


def test_the_docs_exist():
    names = {page.name for page in PAGES if page.parent.name == "docs"}
    assert {"README.md", "data-model.md", "roles.md", "event-states.md", "provenance.md"} <= names


def test_the_pages_have_links_to_check():
    assert any(page.name == "README.md" and page.parent == ROOT for page, _ in relative_links())


@pytest.mark.parametrize(
    "page,target",
    relative_links(),
    ids=lambda value: str(value.relative_to(ROOT)) if isinstance(value, Path) else value,
)
def test_relative_link_points_at_a_file_in_the_repository(page, target):
    path = unquote(target.split("#", 1)[0].split("?", 1)[0])
    assert not path.startswith("/"), f"{page.name}: absolute path {target}"
    resolved = (page.parent / path).resolve()
    assert resolved.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
    assert resolved.exists(), f"{page.name}: {target} does not exist"
