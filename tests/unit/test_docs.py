"""The README and docs/ link only to files (and headings) that exist."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def _links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return [target for target in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {_slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


def _outside_folder(path: Path) -> Path:
    """The folder beside the repository that a link out of it goes into."""
    return ROOT.parent / path.relative_to(ROOT.parent).parts[0]


def test_there_are_pages_with_links() -> None:
    assert (ROOT / "docs").is_dir()
    assert sum(len(_links(page)) for page in PAGES) > 0


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page: Path) -> None:
    for target in _links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.is_relative_to(ROOT) and not _outside_folder(resolved).is_dir():
            continue  # the project's shared folder beside the clone (CI has it), absent here
        assert resolved.exists(), f"{page.name}: link to {target} names no file"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{page.name}: {target}: no such heading"


def test_slugs_follow_github() -> None:
    assert _slug("DeadLetter (out, topic `chat-messages-dlq`)") == (
        "deadletter-out-topic-chat-messages-dlq"
    )
    assert _slug("Standby replicas and failover") == "standby-replicas-and-failover"
    assert _slug("What a bad model says at start") == "what-a-bad-model-says-at-start"
