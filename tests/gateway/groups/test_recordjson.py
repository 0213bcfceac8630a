"""A group fetch's records: rendered in C (the records feature's renderer, one call a
batch, cut into records) they are the reference's bytes exactly, and the API's
record shape."""

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


@given(st.data(), st.sampled_from(list(ValueFormat)), texts, st.integers(0, 1000))
def test_c_rendering_is_the_reference(
    data: st.DataObject, fmt: ValueFormat, topic: str, partition: int
) -> None:
    batch = data.draw(st.lists(records(fmt), max_size=5))
    reference = topic_records_json(topic, batch, partition, fmt)
    assert topic_records_json(topic, batch, partition, fmt, renderer) == reference
    for record, rendered in zip(batch, reference, strict=True):
        shown = orjson.loads(rendered)
        assert list(shown)[:3] == ["topic", "partition", "offset"]
        assert (shown["topic"], shown["partition"], shown["offset"]) == (
            topic,
            partition,
            record.offset,
        )
        if fmt is ValueFormat.BINARY and record.value is not None:
            assert base64.b64decode(shown["value"]) == record.value


def test_a_json_value_that_looks_like_a_record_is_not_cut_into_two() -> None:
    """`,{"partition":` is where two rendered records meet, and a json value may hold
    it too: the batch is then rendered record by record, the same bytes."""
    tricky = b'[1,{"partition":0,"offset":1,"timestamp":2,"key":null,"value":3,"headers":[]}]'
    batch = [
        Record(0, 10, None, b"{}"),
        Record(1, 11, b"k", tricky),
        Record(2, 12, None, b'{"partition":5}'),
    ]
    rendered = topic_records_json("t", batch, 0, ValueFormat.JSON, renderer)
    assert rendered == topic_records_json("t", batch, 0, ValueFormat.JSON)
    assert [orjson.loads(r)["value"] for r in rendered] == [
        {},
        orjson.loads(tricky),
        {"partition": 5},
    ]
