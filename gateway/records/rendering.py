"""A produce's reply as JSON bytes: the offsets each record was placed at.

The reference for the C renderer `offsets_json` (`fastpath.py`): it must give
these bytes exactly. Records themselves are rendered by `gateway.http.recordjson`,
which every reader of records shares. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

_OFFSET = b'{"partition":%d,"offset":%d}'


def offsets_json(placed: Iterable[tuple[int, int]]) -> bytes:
    """The JSON array of `{"partition", "offset"}` for each (partition, offset)."""
    return b"[" + b",".join(_OFFSET % pair for pair in placed) + b"]"
