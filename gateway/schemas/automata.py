"""A string pattern as a deterministic automaton the C scanner runs over a string's bytes.

A schema's `pattern` is checked on every value, and handing each string to
Python's `re` costs a Python string and a call per value (about a third of a
15-field value's check). The patterns the fast check takes are a small subset
(`fast_types.python_pattern`: ASCII literals, classes and ranges, `.`, groups,
alternation, greedy quantifiers, `^` and `$`), so each can be turned into a DFA
once: Python's own parse of the translated pattern, a Thompson NFA, then the
subset construction. Within that subset every code point past ASCII behaves
alike (no literal or range reaches one), so the automaton reads one symbol per
ASCII byte and one for each non-ASCII character. It answers as `re.search`
does on the translated pattern: a match anywhere, `^` only at the start, `$`
(`\\Z`) only at the end. A pattern outside what this reads, or whose automaton
would be large, gets none, and the check calls `re` for it instead. A property
test holds the automaton to `re` and the reference
(tests/gateway/records/test_speedups.py). Pure: no I/O.
"""

from __future__ import annotations

from array import array
from re import _parser  # type: ignore[attr-defined,unused-ignore]  # the parse `re` itself runs
from typing import Any

SYMBOLS = 129
"""ASCII's 128 bytes, then one symbol for any character past ASCII."""

OTHER = 128
MAX_NFA_STATES = 2000
MAX_STATES = 256
"""Automaton states at most (a table of 256 by 129 uint16); past it, `re` decides."""

MATCHED = 1  # a match ends here: the search has found one, whatever follows
AT_END = 2  # a match ends here if the string ends here
DEAD = 4  # no match can follow from here

_EVERY = frozenset(range(SYMBOLS))


class _TooComplex(Exception):
    pass


class _Nfa:
    """States with edges on a set of symbols, on nothing (None), or on the assertions
    "begin" and "end" (taken only at the start or the end of the string)."""

    def __init__(self) -> None:
        self.edges: list[list[tuple[Any, int]]] = []

    def state(self) -> int:
        if len(self.edges) >= MAX_NFA_STATES:
            raise _TooComplex
        self.edges.append([])
        return len(self.edges) - 1

    def edge(self, start: int, on: Any, end: int) -> None:
        self.edges[start].append((on, end))

    def sequence(self, items: Any, start: int) -> int:
        """The NFA of a parsed sequence from `start`; the state where it ends."""
        for op, av in items:
            start = self.item(str(op), av, start)
        return start

    def item(self, op: str, av: Any, start: int) -> int:
        if op in ("LITERAL", "NOT_LITERAL", "IN"):
            end = self.state()
            self.edge(start, _symbols(op, av), end)
            return end
        if op == "AT":
            where = {"AT_BEGINNING": "begin", "AT_END_STRING": "end"}.get(str(av))
            if where is None:
                raise _TooComplex
            end = self.state()
            self.edge(start, where, end)
            return end
        if op == "SUBPATTERN":
            _group, add_flags, del_flags, inner = av
            if add_flags or del_flags:
                raise _TooComplex
            return self.sequence(inner, start)
        if op == "BRANCH":
            end = self.state()
            for branch in av[1]:
                self.edge(self.sequence(branch, start), None, end)
            return end
        if op == "MAX_REPEAT":
            low, high, inner = av
            for _ in range(low):
                start = self.sequence(inner, start)
            if high == _parser.MAXREPEAT:
                loop = self.state()
                self.edge(start, None, loop)
                self.edge(self.sequence(inner, loop), None, loop)
                return loop
            end = self.state()
            for _ in range(high - low):
                self.edge(start, None, end)
                start = self.sequence(inner, start)
            self.edge(start, None, end)
            return end
        raise _TooComplex


def _symbols(op: str, av: Any) -> frozenset[int]:
    if op == "LITERAL":
        return frozenset([_ascii(av)])
    if op == "NOT_LITERAL":
        return _EVERY - {_ascii(av)}
    chosen: set[int] = set()
    negate = False
    for kind, value in av:
        kind = str(kind)
        if kind == "NEGATE":
            negate = True
        elif kind == "LITERAL":
            chosen.add(_ascii(value))
        elif kind == "RANGE":
            low, high = value
            chosen.update(range(_ascii(low), _ascii(high) + 1))
        else:
            raise _TooComplex
    return _EVERY - chosen if negate else frozenset(chosen)


def _ascii(code: int) -> int:
    if not 0 <= code < OTHER:
        raise _TooComplex
    return code


def automaton(python_text: str) -> tuple[bytes, bytes] | None:
    """The DFA of a pattern `fast_types.python_pattern` wrote, as (one flag byte per
    state, the transitions: a uint16 per state and symbol, native order); state 0
    starts. None when the pattern is outside what this reads or too large."""
    try:
        nfa = _Nfa()
        start = nfa.state()
        final = nfa.sequence(_parser.parse(python_text), start)
    except (_TooComplex, RecursionError):
        return None
    return _determinised(nfa, start, final)


def _closure(nfa: _Nfa, states: frozenset[int], allowed: frozenset[str]) -> frozenset[int]:
    seen = set(states)
    todo = list(states)
    while todo:
        for on, end in nfa.edges[todo.pop()]:
            if (on is None or on in allowed) and end not in seen:
                seen.add(end)
                todo.append(end)
    return frozenset(seen)


def _determinised(nfa: _Nfa, start: int, final: int) -> tuple[bytes, bytes] | None:
    none: frozenset[str] = frozenset()
    at_end = frozenset(["end"])
    first = _closure(nfa, frozenset([start]), frozenset(["begin"]))
    restart = _closure(nfa, frozenset([start]), none)  # a search may begin anywhere
    sets = [first]
    index: dict[frozenset[int], int] = {}  # every state but the first, which stays apart
    rows: list[list[int]] = []
    flags = []
    done = 0
    while done < len(sets):
        current = sets[done]
        ends = _closure(nfa, current, frozenset(["begin", "end"]) if done == 0 else at_end)
        flags.append((MATCHED if final in current else 0) | (AT_END if final in ends else 0))
        row = []
        for symbol in range(SYMBOLS):
            moved = frozenset(
                end
                for state in current
                for on, end in nfa.edges[state]
                if isinstance(on, frozenset) and symbol in on
            )
            following = _closure(nfa, moved, none) | restart
            if following not in index:
                if len(sets) >= MAX_STATES:
                    return None
                index[following] = len(sets)
                sets.append(following)
            row.append(index[following])
        rows.append(row)
        done += 1
    # DEAD: no state reachable from it ends a match.
    live = {i for i, f in enumerate(flags) if f & (MATCHED | AT_END)}
    grew = True
    while grew:
        grew = False
        for i, row in enumerate(rows):
            if i not in live and any(j in live for j in row):
                live.add(i)
                grew = True
    flag_bytes = bytes(f | (0 if i in live else DEAD) for i, f in enumerate(flags))
    table = array("H", [target for row in rows for target in row])
    return flag_bytes, table.tobytes()
