"""SSE event runs rendered once for every stream at the same positions, and exactly what
each stream would have rendered alone."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.streams.follower import RenderedEvents, SharedFrames
from gateway.streams.frames import sse_context, sse_records
from storage.records import Record, ValueFormat

positions_of = st.dictionaries(st.integers(0, 5), st.integers(0, 1000), min_size=1, max_size=4)


def run(start: int, count: int) -> list[Record]:
    return [Record(start + i, 1_700_000_000_000, None, b"%d" % i) for i in range(count)]


@given(positions_of, st.integers(0, 5), st.integers(1, 5))
def test_a_shared_run_is_what_the_stream_would_render_alone(
    positions: dict[int, int], partition: int, count: int
) -> None:
    positions = {**positions, partition: positions.get(partition, 0)}
    shared = SharedFrames(1 << 20)
    records = run(positions[partition], count)
    alone = sse_records(records, partition, ValueFormat.JSON, sse_context(partition, positions))
    assert shared.sse(records, partition, ValueFormat.JSON, positions) == alone
    # The id of each event names every partition's position right after it.
    ids = [line[4:] for line in alone.split(b"\n") if line.startswith(b"id: ")]
    assert ids[-1].decode() == ",".join(
        f"{p}:{o + count if p == partition else o}" for p, o in sorted(positions.items())
    )


def test_streams_at_the_same_positions_share_one_rendering_and_others_get_their_own() -> None:
    shared = SharedFrames(1 << 20)
    records = run(10, 3)
    first = shared.sse(records, 0, ValueFormat.JSON, {0: 10, 1: 4})
    assert shared.sse(records, 0, ValueFormat.JSON, {0: 10, 1: 4}) is first
    assert shared.events.hits == 1
    other = shared.sse(records, 0, ValueFormat.JSON, {0: 10, 1: 5})  # further in partition 1
    assert b"id: 0:11,1:5\n" in other
    assert b"id: 0:11,1:4\n" in first
    # A filtered run is never shared (two filters may keep different records).
    assert shared.sse(records, 0, ValueFormat.JSON, {0: 10, 1: 4}, filtered=True) is not first
    # The same offsets read again are other record objects: rendered anew, not mistaken.
    assert shared.sse(run(10, 3), 0, ValueFormat.JSON, {0: 10, 1: 4}) == first


def test_what_is_kept_stays_within_its_count_and_bytes() -> None:
    events = RenderedEvents(held=4, budget_bytes=2_000)
    kept = [run(i * 10, 3) for i in range(10)]  # about 330 bytes a run
    for records in kept:
        events.get(records, 0, ValueFormat.JSON, (b"0:", b""))
        assert len(events._entries) <= 4
        assert events.held_bytes <= 2_000
    big = run(0, 50)  # past the budget on its own: rendered, not kept
    events.get(big, 0, ValueFormat.JSON, (b"0:", b""))
    assert events.held_bytes <= 2_000
