"""Every relative link of the README and of docs/*.md resolves: to a file or folder of the repository, and, where
it names an ``#anchor``, to a heading of that page as GitHub slugs it. The README stays a front door: at most 250
lines, with the rest on the pages of docs/.
"""

import re
from pathlib import Path
from typing import Dict, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def without_code_blocks(text: str) -> str:
    """The text with its fenced code blocks blanked (a ``# comment`` there is no heading, ``[x](y)`` no link)."""
    return re.sub(r"(?ms)^(```|~~~).*?^\1[ \t]*$", lambda m: "\n" * m.group(0).count("\n"), text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text lowercased, punctuation dropped, spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> Set[str]:
    """The anchors of a Markdown file's headings, the second of two equal ones suffixed ``-1`` as on GitHub."""
    seen: Dict[str, int] = {}
    found = set()
    for match in re.finditer(r"(?m)^#{1,6}[ \t]+(.+?)[ \t#]*$", without_code_blocks(path.read_text(encoding="utf8"))):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(text: str) -> List[str]:
    """The targets of the inline links and images outside code: not web or mail addresses."""
    prose = re.sub(r"`[^`\n]*`", "code", without_code_blocks(text))
    targets = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose)
    return [t for t in targets if not re.match(r"(?i)^([a-z][a-z0-9+.-]*:|//)", t)]


def broken_links(page: Path) -> List[Tuple[str, str]]:
    broken = []
    for target in relative_links(page.read_text(encoding="utf8")):
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append((target, "no such file"))
        elif anchor and (dest.is_dir() or dest.suffix.lower() != ".md"):
            broken.append((target, "an anchor into a file that is not Markdown"))
        elif anchor and anchor not in anchors(dest):
            broken.append((target, "no such heading"))
    return broken


def test_the_pages_are_there():
    names = {page.relative_to(ROOT).as_posix() for page in PAGES}
    assert {
        "README.md",
        "docs/speed.md",
        "docs/distillation.md",
        "docs/evaluation.md",
        "docs/spacy-llm.md",
        "docs/reliability.md",
        "docs/scale.md",
        "docs/development.md",
    } <= names


def test_every_relative_link_resolves():
    broken = {page.relative_to(ROOT).as_posix(): broken_links(page) for page in PAGES}
    assert {page: links for page, links in broken.items() if links} == {}


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links((ROOT / "README.md").read_text("utf8"))}
    assert [page.name for page in PAGES[1:] if page.resolve() not in linked] == []


def test_the_readme_is_a_front_door():
    assert len((ROOT / "README.md").read_text(encoding="utf8").splitlines()) <= 250


def test_the_checker_finds_broken_links_and_anchors(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A page: `the_one`\n\n## Twice\n\n## Twice\n", encoding="utf8")
    page = tmp_path / "README.md"
    page.write_text(
        "# Top\n\n[ok](docs/page.md) [ok](docs/page.md#a-page-the_one) [ok](docs/page.md#twice-1) [ok](#top)\n"
        "[ok](https://example.com/x.md) `[not a link](nowhere.md)`\n\n```bash\n[not a link](nowhere.md)\n```\n"
        "[bad](docs/missing.md) [bad](docs/page.md#twice-2) [bad](#nowhere) [bad\nacross lines](docs/gone.md)\n",
        encoding="utf8",
    )
    assert [target for target, _ in broken_links(page)] == [
        "docs/missing.md",
        "docs/page.md#twice-2",
        "#nowhere",
        "docs/gone.md",
    ]
