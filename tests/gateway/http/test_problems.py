"""One table maps every storage error to a stable problem type, status and headers."""

from __future__ import annotations

import orjson
import pytest

from gateway.http.problems import GatewayError, ProblemType, problem_for
from storage import errors as se
from tenants import errors as te


@pytest.mark.parametrize(
    ("exc", "status", "slug", "retry_after"),
    [
        (se.TopicNotFound("acme~orders"), 404, "topic-not-found", None),
        (se.TopicExists("acme~orders"), 409, "topic-exists", None),
        (se.InvalidTopicName("acme~.."), 400, "invalid-name", None),
        (se.InvalidConfig("bad"), 422, "invalid-config", None),
        (se.PartitionNotFound("acme~orders", 9, 3), 404, "partition-not-found", None),
        (se.OffsetOutOfRange(0, 99, 0, 10), 416, "offset-out-of-range", None),
        (se.RecordTooLarge(2000, 1000, 4), 413, "record-too-large", None),
        (se.CorruptData(0, 10, 20, "crc"), 503, "data-unavailable", None),
        (se.PartitionFenced("acme~orders", 0, "fsync failed"), 503, "partition-read-only", "30"),
        (se.DiskFull(), 507, "disk-full", "5"),
        (te.DirectoryFull(), 507, "disk-full", "5"),
        (se.PartitionsCannotShrink("acme~orders", 4, 2), 422, "invalid-config", None),
        (se.BackendUnavailable(), 503, "backend-unavailable", "1"),
        (se.StoreClosed(), 503, "shutting-down", "1"),
        (RuntimeError("boom /secret/path"), 500, "internal-error", None),
    ],
)
def test_storage_errors_map_to_problems(
    exc: BaseException, status: int, slug: str, retry_after: str | None
) -> None:
    problem = problem_for(exc)
    response = problem.response()
    body = orjson.loads(bytes(response.body))
    assert response.status_code == status == body["status"]
    assert body["type"] == f"https://tidegate.dev/problems/{slug}"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers.get("retry-after") == retry_after
    # Clients see their own topic names, never the tenant prefix or internals.
    assert "acme~" not in body["detail"]
    assert "/secret/path" not in body["detail"]


def test_offset_out_of_range_carries_the_valid_range() -> None:
    body = problem_for(se.OffsetOutOfRange(1, 99, 5, 10)).to_dict()
    assert (body["start_offset"], body["end_offset"], body["requested"]) == (5, 10, 99)


def test_record_too_large_names_the_record() -> None:
    body = problem_for(se.RecordTooLarge(2000, 1000, 4)).to_dict()
    assert body["errors"][0]["record"] == 4
    assert body["errors"][0]["pointer"] == "/records/4"


def test_gateway_errors_carry_their_extensions_and_headers() -> None:
    exc = GatewayError(ProblemType.TOO_MANY_WAITERS, "busy", headers={"Retry-After": "1"}, cap=5)
    response = problem_for(exc).response()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert orjson.loads(bytes(response.body))["cap"] == 5
