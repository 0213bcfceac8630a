"""The server-side filter: a stream of one key's records, or of one header value's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http.problems import GatewayError
from gateway.streams.filters import RecordFilter, filter_of
from storage.records import Record

keys = st.one_of(st.none(), st.sampled_from([b"a", b"b"]))
headers = st.lists(
    st.tuples(st.sampled_from(["t", "u"]), st.sampled_from([b"1", b"2"])), max_size=3
)
records = st.lists(
    st.builds(lambda k, h: Record(0, 0, k, b"1", tuple(h)), keys, headers), max_size=20
)


@given(records, keys, st.one_of(st.none(), st.tuples(st.just("t"), st.just(b"1"))))
def test_a_filter_keeps_exactly_the_matching_records_in_order(
    run: list[Record], key: bytes | None, header: tuple[str, bytes] | None
) -> None:
    only = RecordFilter(key, header)
    kept = only.apply(run)
    expected = [
        r for r in run if (key is None or r.key == key) and (header is None or header in r.headers)
    ]
    assert list(kept) == expected


def test_the_query_spells_a_filter() -> None:
    assert filter_of({}) is None
    assert filter_of({"key": "user-1"}) == RecordFilter(b"user-1")
    assert filter_of({"header": "trace:a:b"}) == RecordFilter(None, ("trace", b"a:b"))
    for bad in ({"header": "novalue"}, {"header": ":x"}, {"key": "k" * 2000}):
        with pytest.raises(GatewayError):
            filter_of(bad)
