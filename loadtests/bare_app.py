"""The yardstick for the gateway benchmark: a bare Starlette app doing only the unavoidable.

It parses the produce body with orjson and answers offsets of the same shape
and size as the gateway's (one per record), and answers a fetch with a
constant body of the same size and shape as the gateway's, under the same
uvicorn settings (`loadtests.bench_gateway` starts it). The gateway's figures
divided by these say what Tidegate itself costs on top of the HTTP stack.
"""

from __future__ import annotations

from functools import cache

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def fetch_body(records: int = 100, value_bytes: int = 100) -> bytes:
    """A fetch reply shaped like the gateway's: `records` JSON values of ~`value_bytes`."""
    value = {"payload": "x" * (value_bytes - 15)}
    return orjson.dumps(
        {
            "records": [
                {
                    "partition": 0,
                    "offset": i,
                    "timestamp": 1764000000000,
                    "key": None,
                    "value": value,
                    "headers": [],
                }
                for i in range(records)
            ],
            "next_offset": records,
            "end_offset": records,
        }
    )


FETCH = fetch_body()


@cache
def offsets_body(count: int) -> bytes:
    """A produce reply for `count` records, built once per count: the reply's bytes
    are the gateway's size, their making is not what the baseline measures."""
    return orjson.dumps(
        {"offsets": [{"partition": 0, "offset": 1_000_000 + i} for i in range(count)]}
    )


async def produce(request: Request) -> Response:
    body = orjson.loads(await request.body())
    count = len(body["records"]) if isinstance(body, dict) else 1
    return Response(offsets_body(count), media_type="application/json")


async def fetch(request: Request) -> Response:
    return Response(FETCH, media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/topics/{topic}/records", produce, methods=["POST"]),
        Route("/v1/topics/{topic}/partitions/{partition}/records", fetch, methods=["GET"]),
    ]
)
