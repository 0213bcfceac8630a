"""The wrk benchmark's machinery, run for a second a phase against real servers.

`make bench` is a measurement, not a test, so nothing else would notice when
a Lua script, the summary it prints, the CPU accounting or a long-poll phase
stops working. These run every phase script with `wrk -d1` against the real
gateway (one phase against the bare endpoint too, as the bench compares
them), the partition-scaling and long-poll phases in miniature, and check
that a phase with error responses fails instead of reporting figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest

from loadtests import bench_gateway as bench
from loadtests import longpoll, wrk_runner
from loadtests.wrk_runner import WrkError

TINY = replace(
    bench.FULL,
    slice_seconds=1,
    rounds=1,
    warmup_seconds=0,
    scaling_partitions=(1, 8),
    scaling_rounds=1,
    longpoll_seconds=1.0,
    longpoll_rate=200.0,
    waiters=50,
    waiter_rounds=1,
)
PHASES = {phase.name: phase for phase in bench.PHASES}


@pytest.fixture(scope="module")
def servers() -> Iterator[bench.Servers]:
    with bench.servers(TINY) as started:
        yield started


def test_the_slices_alternate_bare_gateway_gateway_bare() -> None:
    assert bench.abba(4) == ["bare", "gateway", "gateway", "bare"] * 2


def test_a_phase_measures_both_servers(servers: bench.Servers) -> None:
    c = bench.compare(servers, bench.PHASES[0], TINY)
    for side in (c.bare, c.gateway):
        assert len(side.slices) == 1
        assert side.requests > 0
        assert side.server_cpu_us_per_request > 0
        assert side.client_cpu_us_per_request > 0
        assert 0 < side.percentile_ms(0.5) <= side.percentile_ms(0.99)
    assert c.ratio == pytest.approx(c.gateway.rps / c.bare.rps)
    assert list(c.spread) == pytest.approx([c.ratio, c.ratio])  # one round: one pair


@pytest.mark.parametrize(
    "name",
    [
        "keyed + 2 headers, 8 partitions, 64 conns",
        "single record, 1 partition, 16 conns",
        "fetch 100 rec, 16 conns",
    ],
)
def test_every_phase_script_gets_only_successes_from_the_gateway(  # keyed: in scaling below
    servers: bench.Servers, name: str
) -> None:
    phase = PHASES[name]
    measured = bench.drive(servers.gateway, phase, servers.key, 1, 1)
    assert measured.requests > 0
    assert measured.bytes > measured.requests * (100 if phase.records == 100 else 10)


def test_error_responses_fail_the_phase(servers: bench.Servers) -> None:
    missing = replace(bench.PHASES[0], topic="no-such-topic")
    with pytest.raises(WrkError, match="status"):
        bench.drive(servers.gateway, missing, servers.key, 1, 1)


def test_partition_scaling_reports_each_count_and_the_open_files(
    servers: bench.Servers,
) -> None:
    result = bench.scaling(servers, TINY)
    assert set(result.totals) == {1, 8}
    assert result.relative(8) == pytest.approx(1.0)
    assert result.relative(1) > 0
    assert result.files[8] >= result.files[1] >= result.files_before > 0


def test_long_poll_phases_time_every_record_and_every_waiter(servers: bench.Servers) -> None:
    port, key = servers.gateway.port, servers.key
    latencies, rate = asyncio.run(
        longpoll.produce_to_longpoll(port, key, bench.LONGPOLL_TOPIC, 1.0, 200.0)
    )
    assert len(latencies) >= 100
    assert rate > 100
    woken = asyncio.run(
        longpoll.fanout(port, key, bench.FANOUT_TOPIC, 50, 1, server_pid=servers.gateway.pid)
    )
    assert len(woken.latencies) == 50
    assert all(latency > 0 for latency in woken.latencies)


def test_a_missing_wrk_is_an_error_not_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(WrkError, match="not installed"):
        wrk_runner.wrk_binary()


def test_slices_merge_by_weight() -> None:
    summary = wrk_runner.parse(
        "Running 1s test\n"
        'WRK_JSON {"requests":300,"duration_us":1000000,"bytes":9000,'
        '"errors":{"connect":0,"read":0,"write":0,"status":0,"timeout":0},'
        '"quantiles":[[25.0,50.0,100],[75.0,50.0,300]]}\n'
    )
    few = wrk_runner.slice_of(summary, 0.03, 0.003)
    assert few.rps == 300
    many = wrk_runner.Slice(900, 1.0, 0, 0.0, 0.0, [(1000.0, 900.0)])
    totals = wrk_runner.Totals([few, many])
    assert totals.rps == 600
    assert totals.server_cpu_us_per_request == pytest.approx(25.0)
    assert totals.percentile_ms(0.1) == pytest.approx(0.1)
    assert totals.percentile_ms(0.5) == pytest.approx(1.0)


def test_a_summary_with_errors_is_refused() -> None:
    summary = wrk_runner.parse(
        'WRK_JSON {"requests":10,"duration_us":1000000,"bytes":0,'
        '"errors":{"connect":0,"read":0,"write":0,"status":3,"timeout":0},"quantiles":[]}'
    )
    with pytest.raises(WrkError, match="'status': 3"):
        wrk_runner.slice_of(summary, 0.0, 0.0)
