"""The C fast paths give the reference paths' answers, byte for byte, or decline.

`scan_produce` reads a produce body straight into packed records; whenever it
answers, the answer must equal what the reference (`batching.checked`: read,
validate, partition, pack) builds from the same body. `render_fetch` writes a
fetch reply; whenever it answers, the bytes must equal the Python renderer's.
`add_header` adds the schema id header to packed records as
`schema_check.with_header` does.

The produce bodies are written by a JSON writer that varies everything JSON
leaves free (whitespace, escapes, number spellings, member order, repeated
names, both header forms), so that a scanner that stored a byte differently,
took a body the reference refuses, or declined one it takes, fails here. The
scanner declines on purpose only where its header comment says so (a body
member other than one `records`, header objects of more than 64 names, values
nested past 500 levels, base64 padded past its data), which these bodies never
hold; so for them the C answers exactly when the reference does. Damaged
bodies (cut short, a byte changed, junk inserted) must still agree.
`test_the_checks_catch_a_wrong_answer` shows the comparison itself fails on a
wrong answer. `make sanitize` runs this module
with the extension built under AddressSanitizer and UBSan.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from gateway.http.jsonlimits import JsonLimits
from gateway.http.problems import GatewayError
from gateway.http.recordjson import records_json
from gateway.http.value_schemas import SCHEMA_ID_HEADER
from gateway.records.batching import JSON, Appendable, Bounds, checked, scanned
from gateway.records.fastpath import FastPaths, built
from gateway.records.fetch import records_head
from gateway.records.partitioner import RoundRobin, partition_for_key
from gateway.records.rendering import offsets_json
from gateway.records.schema_check import json_value, with_header
from gateway.records.values import FORMAT_CODES
from gateway.schemas.automata import automaton
from gateway.schemas.avro_json import avro_as_json_schema
from gateway.schemas.fast_types import Node as Node_
from gateway.schemas.fast_types import python_pattern, value_check
from gateway.schemas.formats import SchemaType
from gateway.schemas.validators import compile_validator
from storage.records import (
    AppendResult,
    NewRecord,
    PackedRecords,
    Record,
    TopicConfig,
    TopicInfo,
    ValueFormat,
    pack_records,
    unpack_records,
)
from tests.gateway.schemas.strategies import (
    ALPHABET,
    PATTERNS,
    avro_schemas,
    keyword_schemas,
    values_for,
)
from tests.gateway.schemas.strategies import json_values as schema_json_values

NOW = 1_764_000_000_000
_built = built()
if _built is None:
    pytest.skip("the C fast paths are not built", allow_module_level=True)
_speedups: FastPaths = _built

texts = st.text(max_size=12)
plain_texts = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(texts, c, max_size=4),
    max_leaves=12,
)
plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | plain_texts,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(plain_texts, c, max_size=4),
    max_leaves=12,
)
# Slow machines and the sanitizer build: no per-example deadline. Example counts
# scale with the profile's (100 by default, fewer under `make sanitize`).
lenient = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXAMPLES = settings().max_examples


@dataclass
class Runtime:
    """What the two paths read: the bounds and the round-robin counters."""

    max_records: int = 1000
    limits: JsonLimits = field(default_factory=JsonLimits)
    round_robin: RoundRobin = field(default_factory=RoundRobin)


def runtime_for(max_records: int = 1000, limits: JsonLimits | None = None) -> Runtime:
    return Runtime(max_records, limits or JsonLimits())


def topic(partitions: int = 1, fmt: ValueFormat = ValueFormat.JSON) -> TopicInfo:
    return TopicInfo("t~topic", partitions, TopicConfig(value_format=fmt), 0)


def python_path(body: bytes, info: TopicInfo, runtime: Runtime, limit: int) -> Appendable | None:
    """The reference path's packed records, or None where it refuses the body."""
    try:
        bounds = Bounds(runtime.limits, runtime.max_records, limit)
        return checked(JSON, body, {}, info, bounds, runtime.round_robin, NOW)
    except GatewayError:
        return None


def fast_path(
    body: bytes, info: TopicInfo, runtime: Runtime, limit: int, fast: FastPaths = _speedups
) -> Appendable | None:
    bounds = Bounds(runtime.limits, runtime.max_records, limit)
    return scanned(fast, body, info, bounds, runtime.round_robin, NOW)


def same(a: Appendable, b: Appendable) -> None:
    assert a.count == b.count
    assert a.order == b.order
    assert [(p, unpack_records(x)) for p, x in a.groups] == [
        (p, unpack_records(x)) for p, x in b.groups
    ]
    assert a.groups == b.groups  # the bytes too, and the timestamps of each group
    assert all(type(packed) is PackedRecords for _, packed in a.groups + b.groups)


def agree(
    body: bytes,
    info: TopicInfo,
    limit: int = 1 << 20,
    *,
    exactly: bool = False,
    fast: FastPaths = _speedups,
    **kw: Any,
) -> Appendable | None:
    """Both paths on `body` from the same round-robin state; the fast one's answer.
    `exactly`: the fast path must also answer whenever the reference does."""
    fast_rt, slow_rt = runtime_for(**kw), runtime_for(**kw)
    answer = fast_path(body, info, fast_rt, limit, fast)
    if answer is None and not exactly:
        return None
    slow = python_path(body, info, slow_rt, limit)
    if answer is None:
        assert slow is None, f"declined what the reference takes: {body!r}"
        return None
    assert slow is not None, f"took what the reference refuses: {body!r}"
    same(answer, slow)
    assert fast_rt.round_robin.peek(info.name) == slow_rt.round_robin.peek(info.name)
    return answer


# -- a JSON writer that varies what JSON leaves free ------------------------------
#
# A node is ("raw", text) for numbers and literals, ("str", text), ("arr", [node])
# or ("obj", [(name, node)]); a Writer writes its text.

Node = tuple[str, Any]
NULL: Node = ("raw", "null")
WHITESPACE = ["", "", "", "", "", " ", "\n", "\t", "\r\n", " \t "]
SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
characters = st.characters(codec="utf-8") | st.sampled_from('"\\/\x00\x1f\x7f\u2028é😀')
numbers = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.from_regex(r"-?(0|[1-9][0-9]{0,22})(\.[0-9]{1,9})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["-0", "-0.0", "0e0", "1E+2", "1e-7", "18446744073709551616", "1.10"]),
)
leaves = st.one_of(
    st.sampled_from(["true", "false", "null"]).map(lambda t: ("raw", t)),
    numbers.map(lambda t: ("raw", t)),
    st.text(characters, max_size=8).map(lambda t: ("str", t)),
)
names = st.sampled_from(["a", "b", "é", "", "a/b"]) | st.text(characters, max_size=4)
nodes = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda items: ("arr", items))
        | st.lists(st.tuples(names, inner), max_size=4).map(lambda members: ("obj", members))
    ),
    max_leaves=10,
)


def _spellings(ch: str) -> list[str]:
    """Every way JSON can write `ch` inside a string."""
    code = ord(ch)
    ways = [ch] if code >= 0x20 and ch not in '"\\' else []
    if ch in SHORT_ESCAPES:
        ways.append(SHORT_ESCAPES[ch])
    if code < 0x10000:
        ways += [f"\\u{code:04x}", f"\\u{code:04X}"]
    else:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        ways += [f"\\u{high:04x}\\u{low:04x}", f"\\u{high:04X}\\u{low:04X}"]
    return ways


class Writer:
    """Writes a node's JSON text, each free choice (whitespace between tokens, the
    spelling of each character of a string) drawn from `rnd`."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd

    def ws(self) -> str:
        return self.rnd.choice(WHITESPACE)

    def string(self, text: str) -> str:
        return '"' + "".join(self.rnd.choice(_spellings(ch)) for ch in text) + '"'

    def __call__(self, node: Node) -> str:
        kind, content = node
        if kind == "raw":
            return str(content)
        if kind == "str":
            return self.string(content)
        ws = self.ws
        if kind == "arr":
            items = [ws() + self(item) + ws() for item in content]
            return "[" + (",".join(items) if items else ws()) + "]"
        members = [
            ws() + self.string(name) + ws() + ":" + ws() + self(value) + ws()
            for name, value in content
        ]
        return "{" + (",".join(members) if members else ws()) + "}"


header_names = st.text(characters, min_size=1, max_size=6)
header_values = st.text(characters, max_size=6).map(lambda t: ("str", t)) | st.just(NULL)
# Both forms the reference takes; repeated names in the object form are likely.
headers_nodes = st.one_of(
    st.just(NULL),
    st.lists(st.tuples(header_names, header_values), max_size=4).map(
        lambda pairs: ("arr", [("arr", [("str", n), v]) for n, v in pairs])
    ),
    st.lists(
        st.tuples(st.sampled_from(["h", "é", "x-id"]) | header_names, header_values), max_size=5
    ).map(lambda pairs: ("obj", pairs)),
)


def value_nodes(fmt: ValueFormat) -> st.SearchStrategy[Node]:
    if fmt is ValueFormat.JSON:
        return nodes
    if fmt is ValueFormat.STRING:
        return st.text(characters, max_size=10).map(lambda t: ("str", t)) | st.just(NULL)
    return st.binary(max_size=10).map(lambda b: ("str", base64.b64encode(b).decode())) | st.just(
        NULL
    )


@st.composite
def valid_records(draw: st.DrawFn, fmt: ValueFormat, partitions: int) -> Node:
    """A record the reference takes: each field at most once, in any order, and
    sometimes a field given earlier too with any JSON (the last one counts)."""
    fields: dict[str, Node] = {}
    if draw(st.booleans()):
        fields["key"] = (
            draw(st.text(characters, max_size=6).map(lambda t: ("str", t)))
            if draw(st.integers(0, 3))
            else NULL
        )
    if draw(st.integers(0, 5)):
        fields["value"] = draw(value_nodes(fmt))
    if draw(st.booleans()):
        fields["headers"] = draw(headers_nodes)
    if draw(st.integers(0, 3)) == 0:
        fields["partition"] = draw(
            st.integers(0, partitions - 1).map(lambda n: ("raw", str(n)))
            | st.sampled_from([NULL, ("raw", "-0")])
        )
    if draw(st.integers(0, 3)) == 0:
        fields["timestamp"] = draw(
            st.sampled_from([NULL, ("raw", "0"), ("raw", "-0"), ("raw", str(2**63 - 1))])
            | st.integers(0, 2**63 - 1).map(lambda n: ("raw", str(n)))
        )
    members = draw(st.permutations(list(fields.items())))
    if fields:
        for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=2)):
            members.insert(0, (name, draw(nodes | headers_nodes)))  # an earlier, replaced value
    return ("obj", members)


@st.composite
def any_records(draw: st.DrawFn) -> Node:
    """A record whose fields hold anything: the reference refuses many of them."""
    fields = st.sampled_from(["key", "value", "headers", "partition", "timestamp"])
    some = st.one_of(
        nodes,
        headers_nodes,
        st.integers(-3, 5).map(lambda n: ("raw", str(n))),
        st.sampled_from(
            [
                ("arr", [("arr", [("str", "h")])]),  # a pair of one
                ("arr", [("arr", [("str", ""), ("str", "v")])]),  # an empty name
                ("obj", [("", ("str", "v"))]),
                ("arr", [("arr", [("raw", "1"), ("str", "v")])]),
                ("obj", [("h", ("raw", "1")), ("h", ("str", "v"))]),  # fixed by the repeat
                ("obj", [("h", ("str", "v")), ("h", ("raw", "1"))]),
                ("arr", [("arr", [("str", "h"), ("str", "v"), ("str", "w")])]),
                ("arr", [("str", "h")]),
                ("str", "QR=="),  # base64 with stray bits
                ("str", "QQ="),
                ("str", "QQ=A"),
                ("str", "AAAA="),  # padding past a whole group (b64decode lets it pass)
                ("str", "QQ===="),
                ("str", "é==="),
            ]
        ),
    )
    return ("obj", draw(st.lists(st.tuples(fields | names, some), max_size=5)))


@st.composite
def bodies(
    draw: st.DrawFn,
    records: Callable[[ValueFormat, int], st.SearchStrategy[Node]] | None = None,
) -> tuple[TopicInfo, bytes]:
    fmt = draw(st.sampled_from(list(ValueFormat)))
    partitions = draw(st.sampled_from([1, 1, 2, 3, 8]))
    strategy = records(fmt, partitions) if records else any_records()
    doc = ("obj", [("records", ("arr", draw(st.lists(strategy, min_size=1, max_size=6))))])
    write = Writer(draw(st.randoms(use_true_random=False)))
    text = write.ws() + write(doc) + write.ws()
    return topic(partitions, fmt), text.encode()


JUNK = [b",", b"]", b"}", b"[", b"{", b'"', b"\\", b"\\u", b"\\ud800", b":", b" ", b"\x00"]
JUNK += [b"\xff", b"\xc3", b"0", b"-", b"e", b".", b"+", b"null", b"1e400", b'"key":1,']


@st.composite
def mutated(draw: st.DrawFn, body: bytes) -> bytes:
    at = draw(st.integers(0, len(body)))
    how = draw(st.sampled_from(["cut", "flip", "insert", "delete"]))
    if how == "cut":
        return body[:at]
    if how == "insert":
        return body[:at] + draw(st.sampled_from(JUNK)) + body[at:]
    if at == len(body):
        return body
    if how == "delete":
        return body[:at] + body[at + draw(st.integers(1, 4)) :]
    return body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1 :]


@given(bodies(valid_records))
@settings(lenient, max_examples=3 * EXAMPLES)
def test_what_users_send_takes_the_fast_path_with_the_reference_answer(
    case: tuple[TopicInfo, bytes],
) -> None:
    info, body = case
    assert agree(body, info, exactly=True) is not None, body


@given(bodies())
@settings(lenient, max_examples=5 * EXAMPLES // 2)
def test_any_fields_agree_with_the_reference(case: tuple[TopicInfo, bytes]) -> None:
    info, body = case
    agree(body, info, exactly=True)


@given(bodies(valid_records), st.data())
@settings(lenient, max_examples=3 * EXAMPLES)
def test_damaged_bodies_agree_with_the_reference(
    case: tuple[TopicInfo, bytes], data: st.DataObject
) -> None:
    info, body = case
    for _ in range(3):
        body = data.draw(mutated(body))
        agree(body, info, exactly=True)


@given(st.lists(st.fixed_dictionaries({"value": json_values}), min_size=1, max_size=6))
@settings(lenient, max_examples=EXAMPLES)
@example([{"value": 1.5}])
@example([{"value": -0.0}])
@example([{"value": 2**64}])
@example([{"value": "a\u2028\x7f\x1f\u00e9"}])
def test_what_json_libraries_write_takes_the_fast_path(objects: list[dict[str, Any]]) -> None:
    doc = {"records": objects}
    bodies_ = [
        json.dumps(doc).encode(),  # spaces, \u escapes
        json.dumps(doc, indent=2).encode(),
        json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode(),  # compact
    ]
    with contextlib.suppress(TypeError):  # an integer orjson cannot write
        bodies_.append(orjson.dumps(doc))
    for body in bodies_:
        assert agree(body, topic(), exactly=True) is not None


records = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "key": st.none() | plain_texts,
            "value": plain_values,
            "partition": st.none() | st.integers(0, 3),
            "timestamp": st.none() | st.integers(0, 2**63 - 1),
            "headers": st.lists(st.tuples(st.text(min_size=1, max_size=4), plain_texts)),
        },
    ),
    min_size=1,
    max_size=12,
)


@given(records, st.integers(1, 4))
@settings(lenient, max_examples=EXAMPLES)
def test_compact_bodies_take_the_fast_path_with_the_reference_answer(
    objects: list[dict[str, Any]], partitions: int
) -> None:
    assume(all((o.get("partition") or 0) < partitions for o in objects))
    body = orjson.dumps({"records": objects})
    assert agree(body, topic(partitions), exactly=True) is not None


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        (b'{"records":[{"value":{"a":1,"a":2}}]}', b'{"a":1,"a":2}'),  # kept as sent
        (b'{"records":[{"value":"\\u0041\\/"}]}', b'"\\u0041\\/"'),
        (b'{"records":[{"value":[-0, 1.0 ,1e2,\n1.10]}]}', b"[-0,1.0,1e2,1.10]"),
        (
            b'{"records":[{"value":123456789012345678901234567890}]}',
            b"123456789012345678901234567890",
        ),
        (b'{"records":[{"value":" a b " }]}', b'" a b "'),  # whitespace in strings stays
        (b'{"records":[{"value":1,"value":2}]}', b"2"),  # the last one counts
        (b'{"records":[{"value":{"x":1},"value":null}]}', None),
        (b'{"records":[{"\\u0076alue":"\\ud83d\\ude00"}]}', b'"\\ud83d\\ude00"'),
    ],
)
def test_values_are_stored_as_sent_without_whitespace(body: bytes, stored: bytes | None) -> None:
    fast = agree(body, topic(), exactly=True)
    assert fast is not None
    assert unpack_records(fast.groups[0][1])[0].value == stored


def test_keys_and_headers_are_stored_decoded() -> None:
    body = (
        b'{"records":[{"key":"\\u00e9\\n\\ud83d\\ude00","value":1,'
        b'"headers":{"a":"1","b":null,"\\u0061":"2"}},'
        b'{"value":2,"headers":[["a","1"],["a",null],["\\/","\\"q\\""]]}]}'
    )
    fast = agree(body, topic(), exactly=True)
    assert fast is not None
    first, second = unpack_records(fast.groups[0][1])
    assert first.key == "é\n😀".encode()
    assert first.headers == (("a", b"2"), ("b", b""))  # a repeated name: first place, last value
    assert second.headers == (("a", b"1"), ("a", b""), ("/", b'"q"'))


@pytest.mark.parametrize(
    "body",
    [
        b'{"records":[{"value":"\\ud800"}]}',  # unpaired surrogate escapes
        b'{"records":[{"value":"\\udc00"}]}',
        b'{"records":[{"key":"\\ud800\\n"}]}',
        b'{"records":[{"value":"\\udc00\\ud800"}]}',
        b'{"records":[{"value":"\\ud800\\u0041"}]}',
        b'{"records":[{"value":"\\x"}]}',
        b'{"records":[{"value":"\\u12"}]}',
        b'{"records":[{"value":01}]}',
        b'{"records":[{"value":1.}]}',
        b'{"records":[{"value":-}]}',
        b'{"records":[{"value":1e}]}',
        b'{"records":[{"value":+1}]}',
        b'{"records":[{"value":.5}]}',
        b'{"records":[{"value":[1,]}]}',
        b'{"records":[{"value":{"a":1,}}]}',
        b'{"records":[{"value":nul}]}',
        b'{"records":[{"value":truex}]}',
        b'{"records":[{"value":1,"extra":2}]}',
        b'{"records":[]}',
        b'{"records":[{"value":1}],"other":1}',
        b'{"records":[{"value":1}]} x',
        b'{"records":[{"value":1},]}',
        b'{"records":[{"value":"\xff"}]}',  # not UTF-8
        b'{"records":[{"value":"\xed\xa0\x80"}]}',  # a surrogate
        b'{"records":[{"value":"\xc0\xaf"}]}',  # overlong
        b'{"records":[{"value":"a\tb"}]}',  # a raw control character
        b'{"records":[{"partition":-1,"value":1}]}',
        b'{"records":[{"partition":1,"value":1}]}',  # one partition only
        b'{"records":[{"partition":0.0,"value":1}]}',
        b'{"records":[{"timestamp":-5,"value":1}]}',
        b'{"records":[{"timestamp":1.5,"value":1}]}',
        b'{"records":[{"timestamp":9223372036854775808,"value":1}]}',
        b'{"records":[{"key":5,"value":1}]}',
        b'{"records":[{"value":1,"headers":[["",""]]}]}',
        b'{"records":[{"value":1,"headers":{"":"v"}}]}',
        b'{"records":[{"value":1,"headers":[["h",1]]}]}',
        b'{"records":[{"value":1,"headers":[["h"]]}]}',
        b'{"records":[{"value":1,"headers":["h","v"]}]}',
        b'{"records":[{"value":1,"headers":"h"}]}',
        b'{"records":[{"value":1,"headers":{"h":"v","h":2}}]}',
        b'[{"value":1}]',
        b"",
    ],
)
def test_what_the_reference_refuses_the_fast_path_declines(body: bytes) -> None:
    assert fast_path(body, topic(), runtime_for(), 1 << 20) is None
    assert python_path(body, topic(), runtime_for(), 1 << 20) is None


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        # the reference takes the last `records`
        (b'{"records":[{"value":1}],"records":[{"value":2}]}', ValueFormat.JSON),
        (
            b'{"records":[{"value":1,"headers":{%b}}]}'
            % b",".join(b'"h%d":"v"' % i for i in range(65)),
            ValueFormat.JSON,
        ),
        (b'{"records":[{"value":%b}]}' % (b"[" * 501 + b"]" * 501), ValueFormat.JSON),
    ],
)
def test_what_the_fast_path_leaves_to_the_reference(body: bytes, fmt: ValueFormat) -> None:
    runtime = runtime_for(limits=JsonLimits(max_depth=2000))
    assert fast_path(body, topic(fmt=fmt), runtime, 1 << 20) is None
    assert python_path(body, topic(fmt=fmt), runtime, 1 << 20) is not None


@pytest.mark.parametrize("text", [b"QUJD====", b"AAAA=", b"QQ=A", b"A==="])
def test_padding_anywhere_but_the_end_of_the_last_group_is_refused_by_both(text: bytes) -> None:
    body = b'{"records":[{"value":"%b"}]}' % text
    assert agree(body, topic(fmt=ValueFormat.BINARY)) is None
    assert python_path(body, topic(fmt=ValueFormat.BINARY), runtime_for(), 1 << 20) is None


def test_a_field_refused_then_given_again_counts_by_its_last_value() -> None:
    body = (
        b'{"records":[{"key":5,"key":"k","partition":9,"partition":-0,"timestamp":-1,'
        b'"timestamp":7,"headers":"x","headers":{"h":1,"h":"v"},"value":1}]}'
    )
    fast = agree(body, topic(), exactly=True)
    assert fast is not None
    [record] = unpack_records(fast.groups[0][1])
    assert (record.key, record.value, record.timestamp) == (b"k", b"1", 7)
    assert record.headers == (("h", b"v"),)


@given(st.integers(3, 12), st.integers(0, 14), st.booleans())
@settings(lenient)
def test_depth_limit_is_the_references(max_depth: int, nesting: int, spaced: bool) -> None:
    value: Any = 1
    for _ in range(nesting):
        value = [value]
    body = orjson.dumps({"records": [{"value": value}]})
    if spaced:
        body = json.dumps(json.loads(body), indent=1).encode()
    limits = JsonLimits(max_depth=max_depth)
    fast = agree(body, topic(), limits=limits, exactly=True)
    # The body nests 3 levels above the value: within the limit, the fast path answers.
    assert (fast is not None) == (nesting + 3 <= max_depth)


@pytest.mark.parametrize("max_depth", [3, 4, 5, 6])
def test_headers_count_towards_the_depth_limit(max_depth: int) -> None:
    limits = JsonLimits(max_depth=max_depth)
    pairs = b'{"records":[{"value":1,"headers":[["h","v"]]}]}'
    named = b'{"records":[{"value":1,"headers":{"h":"v"}}]}'
    assert (agree(pairs, topic(), limits=limits, exactly=True) is not None) == (max_depth >= 5)
    assert (agree(named, topic(), limits=limits, exactly=True) is not None) == (max_depth >= 4)


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_size_item_string_and_count_limits_are_the_references(delta: int) -> None:
    body = orjson.dumps({"records": [{"key": "kk", "value": "x" * 10}, {"value": [1, 2]}]})
    # record bytes: 2 + 12 for the first; its limit is exact
    assert (agree(body, topic(), limit=14 + delta, exactly=True) is not None) == (delta >= 0)
    # items: the body's `{`, `[` and `,`: 2 + 2 + 1 (between records) + 1 + 1 + 1 = 8
    within = agree(body, topic(), limits=JsonLimits(max_items=8 + delta), exactly=True)
    assert (within is not None) == (delta >= 0)
    within = agree(body, topic(), limits=JsonLimits(max_string_bytes=10 + delta), exactly=True)
    assert (within is not None) == (delta >= 0)
    assert (agree(body, topic(), max_records=2 + delta, exactly=True) is not None) == (delta >= 0)


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_headers_count_towards_the_record_size_and_item_limits(delta: int) -> None:
    body = b'{"records":[{"key":"k","value":"vv","headers":[["hh\\u00e9","\\n"],["x",null]]}]}'
    # payload: key 1 + value 4 + names 4 and 1 + values 1 and 0 = 11 bytes
    assert (agree(body, topic(), limit=11 + delta, exactly=True) is not None) == (delta >= 0)
    # items: { [ { [ [ , , [ , and the commas between fields: 2 = 11
    within = agree(body, topic(), limits=JsonLimits(max_items=11 + delta), exactly=True)
    assert (within is not None) == (delta >= 0)
    # strings are measured as sent: "hh\u00e9" is 8 bytes
    within = agree(body, topic(), limits=JsonLimits(max_string_bytes=8 + delta), exactly=True)
    assert (within is not None) == (delta >= 0)


def test_header_counts_and_name_lengths_are_the_references() -> None:
    many = b",".join(b'["h","v"]' for _ in range(1001))
    body = b'{"records":[{"value":1,"headers":[%b]}]}' % many
    assert agree(body, topic(), exactly=True) is None
    assert agree(body.replace(b'["h","v"],', b"", 1), topic(), exactly=True) is not None
    long_name = b'{"records":[{"value":1,"headers":[["%b","v"]]}]}'
    assert agree(long_name % (b"n" * 65535), topic(), exactly=True) is not None
    assert agree(long_name % (b"n" * 65536), topic(), exactly=True) is None  # packs in 16 bits


@given(st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=20), st.integers(2, 50))
@settings(lenient)
def test_keys_land_where_kafka_puts_them(keys: list[bytes], partitions: int) -> None:
    texts_ = [k.decode("latin-1") for k in keys]  # escaped by json.dumps, decoded by the scanner
    body = json.dumps({"records": [{"key": k, "value": 1} for k in texts_]}).encode()
    fast = agree(body, topic(partitions), exactly=True)
    assert fast is not None
    order = fast.order or [fast.groups[0][0]] * len(texts_)
    assert order == [partition_for_key(k.encode(), partitions) for k in texts_]


spread_records = st.fixed_dictionaries(
    {},
    optional={
        "key": st.text(max_size=8),
        "partition": st.integers(0, 63),
        "timestamp": st.integers(0, 2**40),
        "headers": st.lists(st.tuples(st.text(min_size=1, max_size=3), st.text(max_size=3))),
    },
).map(lambda r: {**r, "value": len(r)})


@given(st.lists(spread_records, min_size=1, max_size=120), st.integers(2, 64))
@settings(lenient)
def test_batches_spread_over_many_partitions_agree_with_the_reference(
    records: list[dict[str, Any]], partitions: int
) -> None:
    """Each partition's records packed in request order, the groups in order of first
    appearance, and each record's partition, as the reference places and packs them."""
    for r in records:
        if "partition" in r:
            r["partition"] %= partitions
    fast = agree(orjson.dumps({"records": records}), topic(partitions), exactly=True)
    assert fast is not None
    assert sum(packed.record_count for _, packed in fast.groups) == len(records)


def test_the_packed_type_must_be_a_plain_named_tuple() -> None:
    class Widened(PackedRecords):
        extra: int = 0

        def __init__(self, *args: Any) -> None:
            self.extra = 1

    fast: Any = _speedups
    for wrong in (tuple, list, Widened):
        with pytest.raises(TypeError):
            fast.scan_produce(b'{"records":[{"value":1}]}', 0, 1, 10, 99, 9, 99, 99, 0, 0, wrong)


def test_keyless_records_continue_the_round_robin() -> None:
    runtime = runtime_for()
    info = topic(3)
    body = orjson.dumps({"records": [{"value": i} for i in range(4)]})
    first = fast_path(body, info, runtime, 1 << 20)
    second = fast_path(body, info, runtime, 1 << 20)
    assert first is not None
    assert second is not None
    assert first.order == [0, 1, 2, 0]
    assert second.order == [1, 2, 0, 1]
    assert [p for p, _ in first.groups] == [0, 1, 2]


@given(st.binary(max_size=60))
@settings(lenient)
def test_random_bytes_agree_with_the_reference(body: bytes) -> None:
    for info in (topic(), topic(fmt=ValueFormat.STRING), topic(fmt=ValueFormat.BINARY)):
        agree(b'{"records":[{"value":' + body + b"}]}", info, exactly=True)
        agree(b'{"records":[{"value":1,"headers":' + body + b"}]}", info, exactly=True)


@given(st.binary(max_size=12))
@settings(lenient)
def test_binary_values_are_their_base64_decoded(data: bytes) -> None:
    text = base64.b64encode(data).replace(b"/", b"\\/")
    fast = agree(
        b'{"records":[{"value":"%b"}]}' % text, topic(fmt=ValueFormat.BINARY), exactly=True
    )
    assert fast is not None
    assert unpack_records(fast.groups[0][1])[0].value == data


@pytest.mark.parametrize(
    ("text", "taken"),
    [
        ("", True),
        ("QR==", True),  # stray bits after the data: ignored, as the reference does
        ("QUJ=", True),
        ("QUJDQQ==", True),
        ("QUJD\\/w==", True),
        ("QUI=QUJD", False),  # padding before the end
        ("QQ==QUJD", False),
        ("QQ=A", False),
        ("Q=Q=", False),
        ("Q===", False),
        ("QQ=", False),
        (" QQ==", False),
        ("QQ==\\n", False),
        ("w6k=\\u00e9", False),
    ],
)
def test_base64_is_read_as_the_reference_reads_it(text: str, taken: bool) -> None:
    body = b'{"records":[{"value":"%b"}]}' % text.encode()
    answer = agree(body, topic(fmt=ValueFormat.BINARY), exactly=True)
    assert (answer is not None) == taken


@pytest.mark.parametrize("fmt", [ValueFormat.STRING, ValueFormat.BINARY])
def test_string_and_binary_topics_take_strings_only(fmt: ValueFormat) -> None:
    value = "héllo" if fmt is ValueFormat.STRING else "aGk="
    body = orjson.dumps({"records": [{"value": value}, {"value": None}]})
    assert agree(body, topic(fmt=fmt), exactly=True) is not None
    assert fast_path(b'{"records":[{"value":1}]}', topic(fmt=fmt), runtime_for(), 99) is None


class _Wrong:
    """The C scanner with one thing wrong, to show the checks above would see it."""

    def __init__(self, wrong: str) -> None:
        self.wrong = wrong

    def __getattr__(self, name: str) -> Any:
        return getattr(_speedups, name)

    def scan_produce(self, body: bytes, *args: Any, **kwargs: Any) -> Any:
        if self.wrong == "takes-anything":
            body = b'{"records":[{"value":1}]}'
        result = _speedups.scan_produce(body, *args, **kwargs)
        if result is None or self.wrong == "takes-anything":
            return result
        groups, order, drawn = result
        if self.wrong == "declines":
            return None
        p, packed = groups[0]
        if self.wrong == "a-byte":
            packed = packed._replace(data=packed.data[:-1] + bytes([packed.data[-1] ^ 1]))
        if self.wrong == "a-timestamp":
            packed = packed._replace(max_timestamp=packed.max_timestamp + 1)
        return [(p, packed), *groups[1:]], order, drawn + (self.wrong == "draws")


@pytest.mark.parametrize("wrong", ["takes-anything", "declines", "a-byte", "a-timestamp", "draws"])
def test_the_checks_catch_a_wrong_answer(wrong: str) -> None:
    fast: Any = _Wrong(wrong)
    body = b'{"records":[{"value":"v","headers":{"h":"\\u00e9"}},{"value":2}]}'
    if wrong == "takes-anything":
        body = b'{"records":[{"value":01}]}'
    if wrong == "draws":
        body, partitions = b'{"records":[{"value":1}]}', 2
    else:
        partitions = 1
    agree(body, topic(partitions), fast=_speedups, exactly=True)  # the real one passes
    with pytest.raises(AssertionError):
        agree(body, topic(partitions), fast=fast, exactly=True)


# -- rendering ----------------------------------------------------------------------

header_names = st.text(min_size=1, max_size=6)
stored = st.builds(
    Record,
    st.integers(0, 2**63 - 1),
    st.integers(0, 2**63 - 1),
    st.none() | st.binary(max_size=12) | plain_texts.map(str.encode),
    st.none() | st.binary(max_size=12) | plain_texts.map(str.encode),
    st.lists(
        st.tuples(header_names, st.binary(max_size=6) | plain_texts.map(str.encode)), max_size=3
    ).map(tuple),
)


@given(st.lists(stored, max_size=8), st.integers(0, 10_000), st.sampled_from(list(ValueFormat)))
@settings(lenient, max_examples=3 * EXAMPLES)
def test_rendering_agrees_with_python(records: list[Record], partition: int, fmt: Any) -> None:
    if fmt is ValueFormat.JSON:  # json topics store JSON: make every value some JSON
        records = [
            r._replace(value=orjson.dumps(r.value.hex()) if r.value else None) for r in records
        ]
    expected = records_json(records, partition, fmt)
    reply = _speedups.render_fetch(records, partition, FORMAT_CODES[fmt], 7, 2**62)
    if reply is not None:
        assert reply == b'{"records":%b,"next_offset":7,"end_offset":%d}' % (expected, 2**62)
    if all(_valid_text(r) for r in records):
        assert reply is not None


def _valid_text(record: Record) -> bool:
    try:
        (record.key or b"").decode()
        for name, value in record.headers:
            name.encode()
            value.decode()
        if record.value is not None:
            record.value.decode()
    except UnicodeError:
        return False
    return True


def test_rendering_escapes_as_orjson_does() -> None:
    every = "".join(map(chr, range(0x20))) + '"\\/\x7f\u2028é' + string.ascii_letters
    record = Record(1, 2, every.encode(), every.encode(), (("h" + every, every.encode()),))
    for fmt in ValueFormat:
        value = orjson.dumps(every) if fmt is ValueFormat.JSON else record.value
        r = record._replace(value=value)
        reply = _speedups.render_fetch([r], 0, FORMAT_CODES[fmt], 2, 2)
        expected = b'{"records":%b,"next_offset":2,"end_offset":2}' % records_json([r], 0, fmt)
        assert reply == expected


@given(st.integers(0, 10_000), st.integers(0, 2**62), st.integers(0, 300))
@settings(lenient)
def test_the_reply_offsets_agree_with_python(partition: int, base: int, count: int) -> None:
    expected = offsets_json((partition, o) for o in range(base, base + count))
    assert _speedups.offsets_json(partition, base, count) == expected
    if count:
        assert orjson.loads(expected)[-1] == {"partition": partition, "offset": base + count - 1}


@given(st.lists(st.integers(0, 1_100), min_size=1, max_size=300), st.integers(0, 2**60))
def test_placed_offsets_agree_with_python(order: list[int], start: int) -> None:
    """Records over several partitions: each one's partition and offset, in request order."""
    bases = {p: start + 7 * p for p in set(order)}
    results = [AppendResult(p, base, order.count(p), 0) for p, base in bases.items()]
    following = dict(bases)
    placed = []
    for p in order:
        placed.append((p, following[p]))
        following[p] += 1
    assert _speedups.placed_offsets_json(order, results) == offsets_json(placed)


def test_placed_offsets_need_a_result_for_every_partition_named() -> None:
    fast: Any = _speedups
    assert fast.placed_offsets_json([1, 0, 1], [AppendResult(0, 5, 1, 0), AppendResult(1, 9, 2, 0)])
    with pytest.raises(KeyError):
        fast.placed_offsets_json([1, 0, 1], [AppendResult(1, 9, 2, 0)])
    with pytest.raises(TypeError):
        fast.placed_offsets_json([0], [AppendResult(0, 5, 1, 0), ValueError("a failed append")])


@given(
    st.lists(stored, max_size=8),
    st.integers(0, 10_000),
    st.sampled_from(list(ValueFormat)),
    st.integers(0, 2**63 - 1),
)
@settings(lenient, max_examples=2 * EXAMPLES)
def test_a_reply_from_a_kept_head_is_the_whole_reply(
    records: list[Record], partition: int, fmt: Any, end: int
) -> None:
    """`fetch_reply` keeps `records_head` and adds the offsets: the same bytes as
    rendering the reply whole, C or Python."""
    if fmt is ValueFormat.JSON:
        records = [
            r._replace(value=orjson.dumps(r.value.hex()) if r.value else None) for r in records
        ]
    whole = b'{"records":%b,"next_offset":%d,"end_offset":%d}' % (
        records_json(records, partition, fmt),
        end // 2,
        end,
    )
    for fast in (_speedups, None):
        head = records_head(records, partition, fmt, fast)
        assert b'%b,"next_offset":%d,"end_offset":%d}' % (head, end // 2, end) == whole


# What the scanner must look at byte by byte inside a string (it skips plain ASCII
# eight bytes at a time): each at every position of strings around that width.
IN_STRINGS = [
    b'\\"',
    b"\\\\",
    b"\\n",
    b"\\u00e9",
    b"\\ud83d\\ude00",
    b"\\ud83d",
    b"\xc3\xa9",
    b"\xf0\x9f\x98\x80",
    b"\xff",
    b"\xc3",
    b"\x1f",
    b"\x00",
    b"\x7f",
    b" ",
    b"~",
]


@pytest.mark.parametrize("special", IN_STRINGS)
def test_every_position_of_a_string_reads_as_the_reference_reads_it(special: bytes) -> None:
    for length in range(0, 20):
        for at in range(length + 1):
            text = b"a" * at + special + b"b" * (length - at)
            for record in (b'{"value":"%b"}', b'{"key":"%b","value":1}', b'{"value":{"%b":1}}'):
                body = b'{"records":[' + record % text + b"]}"
                for info in (topic(), topic(fmt=ValueFormat.STRING)):
                    agree(body, info, exactly=True)


packed_records = st.lists(
    st.builds(
        NewRecord,
        st.none() | st.binary(max_size=20),
        st.none() | st.binary(max_size=8),
        st.lists(st.tuples(st.text(max_size=6), st.binary(max_size=6)), max_size=3).map(tuple),
        st.none() | st.integers(0, 2**62),
    ),
    min_size=1,
    max_size=8,
)


@given(packed_records, st.binary(max_size=30), st.integers(0, 2**31))
@settings(lenient)
def test_the_schema_id_header_is_added_as_python_adds_it(
    records: list[NewRecord], name: bytes, schema_id: int
) -> None:
    packed = pack_records(records, now_ms=NOW)
    raw_id = b"%d" % schema_id
    header = len(name).to_bytes(2, "big") + name + len(raw_id).to_bytes(4, "big") + raw_id
    added = _speedups.add_header(packed.data, packed.record_count, header)
    assert added == with_header(packed, header).data


@given(packed_records, st.data())
@settings(lenient)
def test_adding_the_header_declines_data_that_is_not_the_records_it_counts(
    records: list[NewRecord], data: st.DataObject
) -> None:
    packed = pack_records(records, now_ms=NOW)
    header = b"\x00\x01h\x00\x00\x00\x011"
    cut = data.draw(st.integers(0, len(packed.data) - 1))
    assert _speedups.add_header(packed.data[:cut], packed.record_count, header) is None
    assert _speedups.add_header(packed.data, packed.record_count + 1, header) is None
    if packed.record_count > 1:
        assert _speedups.add_header(packed.data, packed.record_count - 1, header) is None


# -- schema checks --------------------------------------------------------------------
#
# A scan given a compiled check (`compile_schema` of `fast_types.value_check`) takes a
# body only when every value passes; the reference is jsonschema-rs. The check may
# refuse more than the reference (it only sends those bodies the slower way), never
# less, and checking changes nothing of what is stored.


def value_node(value: Any) -> Node:
    """A JSON value as a node for the Writer, which then spells it every way JSON lets."""
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, list):
        return ("arr", [value_node(v) for v in value])
    if isinstance(value, dict):
        return ("obj", [(k, value_node(v)) for k, v in value.items()])
    return ("raw", json.dumps(value))


def check_agrees(
    kind: SchemaType, document: Any, translated: Any, values: list[Any], rnd: Any
) -> None:
    check = value_check(translated)
    if check is None:
        event("no check")
        return
    assume(not any("\ud800" <= c <= "\udfff" for c in json.dumps(values, ensure_ascii=False)))
    write = Writer(rnd)
    records = ",".join(write.ws() + '{"value":' + write(value_node(v)) + "}" for v in values)
    body = ('{"records":[' + records + "]}").encode()
    info = topic()
    bounds = Bounds(JsonLimits(), 1000, 1 << 20)
    compiled = _speedups.compile_schema(check.root)
    taken = scanned(_speedups, body, info, bounds, RoundRobin(), NOW, compiled)
    if taken is None:
        event("refused")
        return
    event("accepted")
    plain = scanned(_speedups, body, info, bounds, RoundRobin(), NOW)
    assert plain is not None
    same(taken, plain)
    validator = compile_validator(kind, document)
    for record in unpack_records(plain.groups[0][1]):
        value = None if record.value is None else json_value(record.value)
        assert validator.is_valid(value), (document, body)


@given(keyword_schemas(), st.data(), st.randoms(use_true_random=False))
@settings(lenient, max_examples=4 * EXAMPLES, suppress_health_check=list(HealthCheck))
def test_a_json_schemas_check_accepts_only_what_the_reference_accepts(
    doc: dict[str, Any], data: st.DataObject, rnd: Any
) -> None:
    values = data.draw(
        st.lists(values_for(doc, doc) | schema_json_values(), min_size=1, max_size=3)
    )
    check_agrees(SchemaType.JSON, doc, doc, values, rnd)


@given(avro_schemas, st.data(), st.randoms(use_true_random=False))
@settings(lenient, max_examples=2 * EXAMPLES, suppress_health_check=list(HealthCheck))
def test_an_avro_schemas_check_accepts_only_what_the_reference_accepts(
    avro: dict[str, Any], data: st.DataObject, rnd: Any
) -> None:
    translated = avro_as_json_schema(avro)
    values = data.draw(
        st.lists(values_for(translated, translated) | schema_json_values(), min_size=1, max_size=3)
    )
    check_agrees(SchemaType.AVRO, avro, translated, values, rnd)


ORDERS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "n"],
    "properties": {
        "id": {"type": "string", "pattern": "^o-[0-9]+$", "maxLength": 6},
        "n": {"type": "integer", "minimum": 1, "maximum": 9},
        "rate": {"type": "number", "exclusiveMaximum": 1},
        "state": {"enum": ["new", "é", None]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
    },
}


@pytest.mark.parametrize(
    ("value", "taken"),
    [
        (b'{"id":"o-1","n":1}', True),
        (b'{"n":9,"id":"o-12","rate":0.5,"state":null,"tags":[]}', True),
        (b'{"id":"\\u006f-1","n":1,"state":"\\u00e9"}', True),  # escapes decoded first
        (b'{"id" : "o-1" ,\n "n" : 1 }', True),
        (b'{"id":"o-1"}', False),  # a required member missing
        (b'{"id":"o-1","n":1,"x":1}', False),  # an unknown member
        (b'{"id":"o-x","n":1}', False),  # the pattern
        (b'{"id":"o-12345","n":1}', False),  # maxLength in code points
        (b'{"id":"o-1","n":10}', False),
        (b'{"id":"o-1","n":1.5}', False),
        (b'{"id":"o-1","n":1,"rate":1}', False),
        (b'{"id":"o-1","n":1,"rate":1e0}', False),
        (b'{"id":"o-1","n":1,"state":"old"}', False),
        (b'{"id":"o-1","n":1,"tags":["a","b","c"]}', False),
        (b'{"id":"o-1","n":1,"tags":[1]}', False),
        (b"null", False),
        (b"[]", False),
    ],
)
def test_a_check_reads_values_as_json_schema_does(value: bytes, taken: bool) -> None:
    check = value_check(ORDERS)
    assert check is not None
    compiled = _speedups.compile_schema(check.root)
    body = b'{"records":[{"value":' + value + b"}]}"
    bounds = Bounds(JsonLimits(), 1000, 1 << 20)
    assert (
        scanned(_speedups, body, topic(), bounds, RoundRobin(), NOW, compiled) is not None
    ) == taken
    reference = compile_validator(SchemaType.JSON, ORDERS).is_valid(json_value(value))
    assert reference == taken


def test_a_checked_scan_declines_the_reserved_header_and_other_formats() -> None:
    check = value_check({"type": "integer"})
    assert check is not None
    compiled = _speedups.compile_schema(check.root)
    bounds = Bounds(JsonLimits(), 1000, 1 << 20)
    assert _speedups.SCHEMA_ID_HEADER == SCHEMA_ID_HEADER
    for headers in ['{"tidegate-schema-id":"1"}', '[["tidegate\\u002dschema-id","1"]]']:
        body = ('{"records":[{"value":1,"headers":' + headers + "}]}").encode()
        assert scanned(_speedups, body, topic(), bounds, RoundRobin(), NOW) is not None
        assert scanned(_speedups, body, topic(), bounds, RoundRobin(), NOW, compiled) is None
    body = b'{"records":[{"value":"1"}]}'
    assert (
        scanned(_speedups, body, topic(fmt=ValueFormat.STRING), bounds, RoundRobin(), NOW, compiled)
        is None
    )


def test_a_description_the_c_cannot_hold_is_refused_when_compiled() -> None:
    with pytest.raises(ValueError, match="shape"):
        _speedups.compile_schema((1, 2))
    with pytest.raises(OverflowError):
        _speedups.compile_schema(Node_(4, int_min=-(2**64)))
    with pytest.raises(ValueError, match="PyCapsule"):
        scanned(
            _speedups,
            b'{"records":[]}',
            topic(),
            Bounds(JsonLimits(), 1, 1),
            RoundRobin(),
            NOW,
            object(),
        )


MORE_PATTERNS = ["^[a-f0-9]{8}-[a-f0-9]{4}$", "^\\d{4}-\\d{2}-\\d{2}$", "", "$^", "a^b", "x$|^y"]


@given(st.sampled_from(PATTERNS + MORE_PATTERNS), st.data(), st.randoms(use_true_random=False))
@settings(lenient, max_examples=4 * EXAMPLES)
def test_a_patterns_automaton_finds_what_re_and_the_reference_find(
    pattern: str, data: st.DataObject, rnd: Any
) -> None:
    python = python_pattern(pattern)
    schema = {"type": "string", "pattern": pattern}
    check = value_check(schema)
    assert check is not None
    assert check.root.automaton is not None  # these all run as automata, not through re
    text = data.draw(st.from_regex(python) | st.text(ALPHABET, max_size=8))
    assume(not any("\ud800" <= c <= "\udfff" for c in text))
    body = ('{"records":[{"value":' + Writer(rnd).string(text) + "}]}").encode()
    compiled = _speedups.compile_schema(check.root)
    bounds = Bounds(JsonLimits(), 1000, 1 << 20)
    taken = scanned(_speedups, body, topic(), bounds, RoundRobin(), NOW, compiled) is not None
    found = re.search(python, text) is not None
    assert taken == found, (pattern, text)
    assert compile_validator(SchemaType.JSON, schema).is_valid(text) == found, (pattern, text)


def test_an_automaton_the_c_could_run_outside_its_table_is_refused() -> None:
    flags, table = automaton("a") or (b"", b"")
    assert len(table) == len(flags) * 129 * 2
    bad = bytes([255, 255]) + table[2:]
    node = Node_(16, automaton=(flags, bad))
    with pytest.raises(ValueError, match="transition"):
        _speedups.compile_schema(node)
    with pytest.raises(ValueError, match="size"):
        _speedups.compile_schema(Node_(16, automaton=(flags, table[:-2])))


@given(st.text(st.sampled_from("ab\u00e9"), max_size=14), st.randoms(use_true_random=False))
@settings(lenient)
def test_a_pattern_too_large_for_an_automaton_is_run_by_re(text: str, rnd: Any) -> None:
    schema = {"type": "string", "pattern": "(a|b)*a(a|b){9}"}  # 2^10 states as a DFA
    check = value_check(schema)
    assert check is not None
    assert check.root.automaton is None
    assert check.root.pattern is not None
    body = ('{"records":[{"value":' + Writer(rnd).string(text) + "}]}").encode()
    compiled = _speedups.compile_schema(check.root)
    bounds = Bounds(JsonLimits(), 1000, 1 << 20)
    taken = scanned(_speedups, body, topic(), bounds, RoundRobin(), NOW, compiled) is not None
    assert taken == compile_validator(SchemaType.JSON, schema).is_valid(text)
