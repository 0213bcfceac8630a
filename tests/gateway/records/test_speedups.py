"""The C fast paths give the Python paths' answers, byte for byte, or decline.

`scan_produce` reads a produce body straight into packed records; whenever it
answers, the answer must equal what the Python path (parse, validate, partition,
pack) builds from the same body. `render_fetch` writes a fetch reply;
whenever it answers, the bytes must equal the Python renderer's. Each property
also checks that the fast path does answer for the bodies and records it is
meant for, so a fast path that always declined would fail here.
"""

from __future__ import annotations

import contextlib
import json
import string
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from gateway.http.jsonlimits import JsonLimits
from gateway.http.problems import GatewayError
from gateway.records.batching import JSON, Appendable, Bounds, checked, scanned
from gateway.records.fastpath import FastPaths, built
from gateway.records.fetch import records_head
from gateway.records.partitioner import RoundRobin, partition_for_key
from gateway.records.rendering import offsets_json, records_json
from gateway.records.values import FORMAT_CODES
from storage.records import Record, TopicConfig, TopicInfo, ValueFormat, unpack_records

NOW = 1_764_000_000_000
_built = built()
if _built is None:
    pytest.skip("the C fast paths are not built", allow_module_level=True)
_speedups: FastPaths = _built

texts = st.text(max_size=12)
plain_texts = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=12)
# Keys (and string values) are taken as their bytes: the fast path wants them unescaped.
key_texts = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters='"\\'), max_size=12
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(texts, c, max_size=4),
    max_leaves=12,
)
# What the fast path is for: compact values with no floats, huge ints or escapes.
plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | plain_texts,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(plain_texts, c, max_size=4),
    max_leaves=12,
)


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
    """The Python path's packed records, or None where it refuses the body."""
    try:
        bounds = Bounds(runtime.limits, runtime.max_records, limit)
        return checked(JSON, body, {}, info, bounds, runtime.round_robin, NOW)
    except GatewayError:
        return None


def fast_path(body: bytes, info: TopicInfo, runtime: Runtime, limit: int) -> Appendable | None:
    bounds = Bounds(runtime.limits, runtime.max_records, limit)
    return scanned(_speedups, body, info, bounds, runtime.round_robin, NOW)


def same(a: Appendable, b: Appendable) -> None:
    assert a.count == b.count
    assert a.order == b.order
    assert [(p, unpack_records(x)) for p, x in a.groups] == [
        (p, unpack_records(x)) for p, x in b.groups
    ]
    assert a.groups == b.groups  # the bytes too, and the timestamps of each group


def agree(body: bytes, info: TopicInfo, limit: int = 1 << 20, **kw: Any) -> Appendable | None:
    """Both paths on `body` from the same round-robin state; the fast one's answer."""
    fast_rt, slow_rt = runtime_for(**kw), runtime_for(**kw)
    fast = fast_path(body, info, fast_rt, limit)
    if fast is not None:
        slow = python_path(body, info, slow_rt, limit)
        assert slow is not None, body
        same(fast, slow)
        assert fast_rt.round_robin.peek(info.name) == slow_rt.round_robin.peek(info.name)
    return fast


records = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "key": st.none() | key_texts,
            "value": plain_values,
            "partition": st.none() | st.integers(0, 3),
            "timestamp": st.none() | st.integers(0, 2**63 - 1),
        },
    ),
    min_size=1,
    max_size=12,
)


@given(records, st.integers(1, 4))
@settings(max_examples=300)
def test_compact_bodies_take_the_fast_path_with_the_python_answer(
    objects: list[dict[str, Any]], partitions: int
) -> None:
    assume(all((o.get("partition") or 0) < partitions for o in objects))
    body = orjson.dumps({"records": objects})
    assert agree(body, topic(partitions)) is not None


@given(st.lists(st.fixed_dictionaries({"value": json_values}), min_size=1, max_size=6))
@settings(max_examples=300)
@example([{"value": 1.5}])
@example([{"value": -0.0}])
@example([{"value": 2**64}])
@example([{"value": "a\u2028\x7f\x1f\u00e9"}])
def test_any_value_agrees_or_declines(objects: list[dict[str, Any]]) -> None:
    doc = {"records": objects}
    bodies = [
        json.dumps(doc).encode(),  # spaces, \u escapes
        json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode(),  # compact
    ]
    with contextlib.suppress(TypeError):  # an integer orjson cannot write
        bodies.append(orjson.dumps(doc))
    for body in bodies:
        agree(body, topic())


@pytest.mark.parametrize(
    "body",
    [
        b'{"records":[{"value":{"a":1,"a":2}}]}',  # duplicate names collapse in Python
        b'{"records":[{"value":"\\u0041"}]}',  # escapes orjson would not write
        b'{"records":[{"value":"\\/"}]}',
        b'{"records":[{"value":-0}]}',
        b'{"records":[{"value":1.0}]}',
        b'{"records":[{"value":1e2}]}',
        b'{"records":[{"value":9223372036854775808}]}',  # past int64: left to orjson
        b'{"records":[{"value":12345678901234567890}]}',
        b'{"records":[{"value":[1, 2]}]}',  # whitespace inside a value
        b'{"records":[{"key":"\\"k","value":1}]}',  # an escaped key
        b'{"records":[{"value":1,"headers":[]}]}',
        b'{"records":[{"value":1,"value":2}]}',
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
        b'{"records":[{"timestamp":-5,"value":1}]}',
        b'{"records":[{"timestamp":1.5,"value":1}]}',
        b'{"records":[{"key":5,"value":1}]}',
        b'[{"value":1}]',
        b"",
    ],
)
def test_what_the_fast_path_declines(body: bytes) -> None:
    assert fast_path(body, topic(), runtime_for(), 1 << 20) is None
    agree(body, topic())


def test_whitespace_between_records_is_fine_but_not_inside_values() -> None:
    body = (
        b' {\n "records" : [ { "key" : "k" , "value" : {"a":[1,true,null]} } ,\n{"value":2} ] \n}\n'
    )
    assert agree(body, topic()) is not None


@given(st.integers(3, 12), st.integers(0, 14))
def test_depth_limit_is_the_python_paths(max_depth: int, nesting: int) -> None:
    value: Any = 1
    for _ in range(nesting):
        value = [value]
    body = orjson.dumps({"records": [{"value": value}]})
    limits = JsonLimits(max_depth=max_depth)
    fast = agree(body, topic(), limits=limits)
    # The body nests 3 levels above the value: within the limit, the fast path answers.
    assert (fast is not None) == (nesting + 3 <= max_depth)


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_size_item_string_and_count_limits_are_the_python_paths(delta: int) -> None:
    body = orjson.dumps({"records": [{"key": "kk", "value": "x" * 10}, {"value": [1, 2]}]})
    # record bytes: 2 + 12 for the first; its limit is exact
    assert (agree(body, topic(), limit=14 + delta) is not None) == (delta >= 0)
    # items: the body's `{`, `[` and `,`: 2 + 2 + 1 (between records) + 1 + 1 + 1 = 8
    within = agree(body, topic(), limits=JsonLimits(max_items=8 + delta))
    assert (within is not None) == (delta >= 0)
    within = agree(body, topic(), limits=JsonLimits(max_string_bytes=10 + delta))
    assert (within is not None) == (delta >= 0)
    assert (agree(body, topic(), max_records=2 + delta) is not None) == (delta >= 0)


@given(st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=20), st.integers(2, 50))
def test_keys_land_where_kafka_puts_them(keys: list[bytes], partitions: int) -> None:
    texts_ = [k.hex() for k in keys]
    body = orjson.dumps({"records": [{"key": k, "value": 1} for k in texts_]})
    fast = agree(body, topic(partitions))
    assert fast is not None
    order = fast.order or [fast.groups[0][0]] * len(texts_)
    assert order == [partition_for_key(k.encode(), partitions) for k in texts_]


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
def test_random_bytes_never_pass_unless_the_python_path_agrees(body: bytes) -> None:
    agree(b'{"records":[{"value":' + body + b"}]}", topic())


@pytest.mark.parametrize("fmt", [ValueFormat.STRING, ValueFormat.BINARY])
def test_string_topics_take_plain_strings_and_binary_topics_decline(fmt: ValueFormat) -> None:
    body = orjson.dumps({"records": [{"value": "héllo"}, {"value": None}]})
    fast = agree(body, topic(fmt=fmt))
    assert (fast is not None) == (fmt is ValueFormat.STRING)
    assert fast_path(b'{"records":[{"value":1}]}', topic(fmt=fmt), runtime_for(), 99) is None


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
@settings(max_examples=300)
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
def test_the_reply_offsets_agree_with_python(partition: int, base: int, count: int) -> None:
    expected = offsets_json((partition, o) for o in range(base, base + count))
    assert _speedups.offsets_json(partition, base, count) == expected
    if count:
        assert orjson.loads(expected)[-1] == {"partition": partition, "offset": base + count - 1}


@given(
    st.lists(stored, max_size=8),
    st.integers(0, 10_000),
    st.sampled_from(list(ValueFormat)),
    st.integers(0, 2**63 - 1),
)
@settings(max_examples=200)
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
