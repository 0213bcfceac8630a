"""The layout picture in docs/architecture.md matches the gateway package on disk."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "architecture.md"


def layout_picture() -> str:
    text = DOC.read_text()
    start = text.index("```\ngateway/\n")
    return text[start : text.index("```", start + 3)]


def modules_on_disk() -> set[str]:
    """Every gateway module and sub-package, as `records/produce.py` or `records/`."""
    found: set[str] = set()
    for path in (REPO / "gateway").rglob("*"):
        rel = path.relative_to(REPO / "gateway")
        if "__pycache__" in rel.parts or rel.name.startswith("__"):
            continue
        if path.is_dir():
            found.add(f"{rel}/")
        elif path.suffix in {".py", ".c"}:
            found.add(str(rel))
    return found


LEADING = re.compile(r"^([\w.]+/?(?:,\s*[\w.]+/?)*)")


def named_in_picture() -> set[str]:
    """What the picture names: the names a tree line starts with, files under their package.

    A package drawn on one line (`topics/  routes.py, config.py …`) owns the
    files its description lists; a package drawn as a subtree owns its
    indented lines.
    """
    named: set[str] = set()
    package = ""
    for line in layout_picture().splitlines()[2:]:  # after the fence and `gateway/`
        nested = line.startswith(("│   ", "    ")) and line[4:5] in "├└"
        drawn = line.lstrip("│├└─ ")
        match = LEADING.match(drawn)
        if not match:
            continue
        names = [n.strip() for n in match.group(1).split(",")]
        if nested:
            named.update(package + n for n in names)
            continue
        package = ""
        for name in names:
            named.add(name)
            if name.endswith("/"):
                package = name
                rest = drawn[match.end() :]
                named.update(name + f for f in re.findall(r"\b\w+\.py\b", rest))
    return named


def test_every_gateway_module_is_in_the_layout_picture() -> None:
    missing = sorted(modules_on_disk() - named_in_picture())
    assert missing == [], f"add these to the layout picture in docs/architecture.md: {missing}"


def test_the_layout_picture_names_only_what_exists() -> None:
    planned = {"groups/", "streams/", "schemas/"}  # drawn as the features to come
    stale = sorted(named_in_picture() - modules_on_disk() - planned)
    assert stale == [], f"docs/architecture.md draws modules that do not exist: {stale}"
