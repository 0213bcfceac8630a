"""A group fetch's records: rendered in C (the records feature's renderer, one call a
partition, the topic written before each record) they are the reference's bytes
exactly, and the API's record shape. Runs under `make sanitize` too."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http.recordjson import topic_records_json
from gateway.records.fastpath import built
from storage.records import Record, ValueFormat

renderer = built()
pytestmark = pytest.mark.skipif(renderer is None, reason="the C extension is not built")

texts = st.text(st.characters(codec="utf-8"), max_size=8)
json_texts = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # what orjson writes
    | st.floats(allow_nan=False)
    | texts,
    # "partition" as a key: values that look like the records around them
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(texts | st.just("partition"), inner, max_size=3)
    ),
    max_leaves=8,
).map(lambda v: orjson.dumps(v))


@st.composite
def records(draw: st.DrawFn, fmt: ValueFormat) -> Record:
    if fmt is ValueFormat.JSON:
        value = draw(st.none() | json_texts)
    elif fmt is ValueFormat.STRING:
        value = draw(st.none() | texts.map(str.encode))
    else:
        value = draw(st.none() | st.binary(max_size=16))
    key = draw(st.none() | texts.map(str.encode))
    headers = draw(st.lists(st.tuples(texts, texts.map(str.encode)), max_size=3))
    return Record(
        draw(st.integers(0, 2**40)), draw(st.integers(0, 2**42)), key, value, tuple(headers)
    )


@given(st.data(), st.sampled_from(list(ValueFormat)), texts, st.integers(0, 2**31))
def test_c_rendering_is_the_reference(
    data: st.DataObject, fmt: ValueFormat, topic: str, partition: int
) -> None:
    batch = data.draw(st.lists(records(fmt), max_size=5))
    reference = topic_records_json(topic, batch, partition, fmt)
    assert topic_records_json(topic, batch, partition, fmt, renderer) == reference
    shown = orjson.loads(b"[" + reference + b"]")
    assert len(shown) == len(batch)
    for record, one in zip(batch, shown, strict=True):
        assert list(one)[:3] == ["topic", "partition", "offset"]
        assert (one["topic"], one["partition"], one["offset"]) == (topic, partition, record.offset)
        if fmt is ValueFormat.BINARY and record.value is not None:
            assert base64.b64decode(one["value"]) == record.value


def test_a_long_topic_name_and_many_records_are_rendered_whole() -> None:
    """The longest topic name (249 characters) before each of many records: past
    any fixed buffer the renderer starts from."""
    topic = "t" * 249
    batch = [Record(i, 1_700_000_000_000 + i, b"k%d" % i, b'{"n":%d}' % i) for i in range(500)]
    rendered = topic_records_json(topic, batch, 7, ValueFormat.JSON, renderer)
    assert rendered == topic_records_json(topic, batch, 7, ValueFormat.JSON)
    shown = orjson.loads(b"[" + rendered + b"]")
    assert [(r["topic"], r["offset"], r["value"]) for r in shown] == [
        (topic, i, {"n": i}) for i in range(500)
    ]
