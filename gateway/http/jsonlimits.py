"""Bounds on a JSON body, checked on the raw bytes before anything is parsed.

A parser turns a small body into a large object graph (`[{},{},...]` costs
about 20 bytes of memory per body byte), and a deep one into deep recursion.
So before orjson sees a body we bound its nesting depth, its number of values
and the length of each string, in time and memory proportional to the limits,
not to the body:

1. A fast path counts bytes in C (`bytes.count`): the number of `[`/`{` bounds
   the depth, and that plus the number of `,` bounds the value count. Most
   bodies pass here without a Python-level loop.
2. Otherwise a tokenizer (one regex: whole strings, or a structural byte) walks
   the body and stops at the first limit crossed, so its cost is bounded by the
   limits. Strings are skipped as whole tokens, so brackets or commas inside
   them never count.

The check never parses, never recurses and never raises anything but
`JsonLimitExceeded`; invalid JSON that passes it is left to the parser's own
error (with its line and column).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The next structural byte or quote; and the rest of a string after its opening
# quote (possessive quantifiers: linear, no backtracking on a long string).
_NEXT = re.compile(rb'[\[\]{},"]')
_STRING_REST = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """`max_depth` nesting levels, `max_items` values in all, `max_string_bytes` per string."""

    max_depth: int = 64
    max_items: int = 250_000
    max_string_bytes: int = 4 * 1024 * 1024


class JsonLimitExceeded(ValueError):
    """Which limit (`depth`, `items` or `string`), its value, and where it was crossed."""

    def __init__(self, limit: str, value: int, position: int) -> None:
        super().__init__(f"JSON {limit} limit of {value} exceeded at byte {position}")
        self.limit = limit
        self.value = value
        self.position = position


def needs_scan(body: bytes, limits: JsonLimits) -> bool:
    """False when byte counts (in C) prove the body within the item and string limits.

    Those two limits are what bound a parser's memory, so a body that might
    cross them is scanned before it is parsed. Depth is not decided here:
    orjson refuses nesting past 1024 by itself (no recursion error), so a
    shallow-enough parse can be checked for depth afterwards (`too_deep`).
    """
    size = len(body)
    if size > limits.max_string_bytes:
        return True
    # Every counted item is a distinct `[`, `{` or `,` byte: a body no longer than
    # the item limit cannot cross it, and needs no count at all.
    return (
        size > limits.max_items
        and body.count(b"[") + body.count(b"{") + body.count(b",") > limits.max_items
    )


def may_be_too_deep(body: bytes, limits: JsonLimits) -> bool:
    """False when the body has too few brackets to nest past the depth limit."""
    return body.count(b"[") + body.count(b"{") > limits.max_depth


def too_deep(doc: object, max_depth: int) -> bool:
    """True when a parsed document nests more than `max_depth` containers (iterative;
    a scalar is level 0, a container of scalars level 1)."""
    if type(doc) is not dict and type(doc) is not list:
        return False
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        children = node.values() if type(node) is dict else node
        for child in children:  # type: ignore[attr-defined]
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
    return False


def check_json_limits(body: bytes, limits: JsonLimits) -> None:
    """Raise JsonLimitExceeded if `body` nests, counts or stretches past `limits`.

    Counted as `items`: every container opened plus every `,` outside strings,
    i.e. about one per value. Strings are measured as encoded (escapes count).
    """
    opens = body.count(b"[") + body.count(b"{")
    if (
        opens <= limits.max_depth
        and opens + body.count(b",") <= limits.max_items
        and len(body) <= limits.max_string_bytes
    ):
        return
    _scan(body, limits)


def _scan(body: bytes, limits: JsonLimits) -> None:
    max_depth, max_items, max_string = limits.max_depth, limits.max_items, limits.max_string_bytes
    # Valid JSON within max_items has at most 5 * items + 2 tokens; more means
    # garbage such as `"a""a""a"...`, stopped here so the loop stays bounded.
    max_tokens = 5 * max_items + 2
    depth = items = tokens = 0
    pos = 0
    search, rest = _NEXT.search, _STRING_REST.match
    while (match := search(body, pos)) is not None:
        tokens += 1
        if tokens > max_tokens:
            raise JsonLimitExceeded("items", max_items, match.start())
        first = body[match.start()]
        if first == 0x22:  # '"'
            end = rest(body, match.end())
            if end is None:  # unterminated: malformed, left to the parser
                if len(body) - match.end() > max_string:
                    raise JsonLimitExceeded("string", max_string, match.start())
                return
            if end.end() - match.end() - 1 > max_string:
                raise JsonLimitExceeded("string", max_string, match.start())
            pos = end.end()
            continue
        pos = match.end()
        if first in (0x5B, 0x7B):  # '[' '{'
            depth += 1
            items += 1
            if depth > max_depth:
                raise JsonLimitExceeded("depth", max_depth, match.start())
        elif first in (0x5D, 0x7D):  # ']' '}'
            depth = max(depth - 1, 0)
        else:  # ','
            items += 1
        if items > max_items:
            raise JsonLimitExceeded("items", max_items, match.start())
