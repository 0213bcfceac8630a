"""Where the console's files are, and which of them may be served.

The console is plain files (HTML, CSS, ES modules) kept at the repository's
top in `web/`, beside the packages, since it is a client of the public API
and not part of the gateway's code. A source checkout (and an editable
install) serves them from there; a built wheel carries a copy as
`gateway/console/web/` (setup.py's `build_py` puts it there), found first.

Only a fixed set of suffixes is served, each with its media type named here
rather than guessed from the host's mime tables (which differ between
machines and have served JavaScript as `text/plain`, which a browser refuses
to run as a module).
"""

from __future__ import annotations

import re
from pathlib import Path

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}

# One path segment of a served file: no dot first (no `..`, no hidden files).
SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")

PACKAGED = Path(__file__).resolve().parent / "web"
IN_REPOSITORY = Path(__file__).resolve().parents[2] / "web"


def web_root() -> Path | None:
    """The directory holding the console's `index.html`, or None without a console."""
    for candidate in (PACKAGED, IN_REPOSITORY):
        if (candidate / "index.html").is_file():
            return candidate
    return None


def servable(root: Path, segments: list[str]) -> Path | None:
    """The file under `root` that these URL path segments name, if it may be served:
    every segment a plain name, a known suffix, an existing regular file."""
    if not segments or not all(SEGMENT.fullmatch(s) for s in segments):
        return None
    path = root.joinpath(*segments)
    if path.suffix not in MEDIA_TYPES or not path.is_file():
        return None
    return path
