"""Locust users for any Tidegate deployment: `locust -f loadtests/locustfile.py --host URL`.

The key is read from `TIDEGATE_API_KEY`. With `--tidegate-tenants N` (default
1) it must be an operator key: set-up creates N tenants (plan `unlimited`)
with a key each, and each tenant's topics; with 0 the key's own tenant is
used and only topics are created (the key needs `topics:admin`). Every name
carries a run id, and the test's end deletes what set-up created. Set-up runs
in every process that runs users (the local runner, or each worker), so a
distributed run needs nothing shared between workers.

Users (their mix is weighted by `--tidegate-*-weight`):

* `Producer`: produce batches of `--tidegate-batch-records` records and single
  records (`--tidegate-single-share` of its requests), keyed for
  `--tidegate-keyed-share` of them, with an `Idempotency-Key` for
  `--tidegate-idempotent-share`; values of about `--tidegate-record-bytes`.
  Paced at `--tidegate-producer-rate` requests/s a user (0: closed loop).
* `WebSocketSubscriber` (`websockets` client) and `SseSubscriber` (httpx-sse):
  follow a topic live from `latest`; each record is reported as
  `record latency (websocket)` / `(sse)` (type `RECV`), from its timestamp to
  its arrival, and each connection as `connect` (type `WS` / `SSE`).
* `LongPollConsumer`: long-polls one partition from its end
  (`max_wait_ms=--tidegate-wait-ms`) and reads on; besides each fetch it
  reports `record latency` (type `RECV`): the time from the newest record's
  timestamp to its arrival, as a request event, so it shows in the stats.
* `GroupConsumer`: a member of a consumer group per topic (all such users of
  a topic share it, so they rebalance as they come and go): joins, fetches
  with the previous reply's cursor (`group fetch`), reports `record latency
  (group)` like the long-poll user, commits after processing (`group
  commit`), rejoins after a rebalance (`group join`) and leaves on stop. With
  `--tidegate-tenants 0` the key needs `groups:read` too.

Every option can also be given as an environment variable
(`TIDEGATE_RECORD_BYTES`, ...). `make loadtest` starts an embedded server and
runs this headless (`loadtests/run_locust.py`).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import gevent
import httpx
from httpx_sse import connect_sse
from locust import FastHttpUser, User, constant, constant_throughput, events, task
from locust.env import Environment
from locust.runners import MasterRunner
from websockets.sync.client import connect as ws_connect

SETUP_TIMEOUT_S = 30.0


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("tidegate")
    for name, kind, default, help_text in (
        ("tenants", int, 1, "tenants to create (0: the key's own tenant)"),
        ("topics-per-tenant", int, 1, "topics each tenant gets"),
        ("partitions", int, 4, "partitions of each topic"),
        ("record-bytes", int, 100, "bytes of each record's value (about)"),
        ("batch-records", int, 100, "records a batch produce carries"),
        ("single-share", float, 0.2, "share of produce requests with one record"),
        ("keyed-share", float, 0.5, "share of produce requests whose records have keys"),
        ("idempotent-share", float, 0.1, "share of produce requests with an Idempotency-Key"),
        ("producer-rate", float, 10.0, "produce requests/s of one producer user (0: no pause)"),
        ("wait-ms", int, 5000, "max_wait_ms of a consumer's long-poll"),
        ("producer-weight", int, 3, "weight of the producer user"),
        ("consumer-weight", int, 1, "weight of the long-poll consumer user"),
        ("websocket-weight", int, 1, "weight of the WebSocket subscriber user"),
        ("sse-weight", int, 1, "weight of the SSE subscriber user"),
        ("group-weight", int, 1, "weight of the consumer-group user"),
    ):
        env = "TIDEGATE_" + name.upper().replace("-", "_")
        group.add_argument(
            f"--tidegate-{name}", type=kind, default=default, env_var=env, help=help_text
        )


@dataclass
class Tenant:
    name: str | None  # None: the key's own tenant
    key: str
    topics: list[str]


@dataclass
class Plan:
    """What set-up created, for the users and for clean-up."""

    run: str
    tenants: list[Tenant] = field(default_factory=list)
    created_tenants: list[str] = field(default_factory=list)
    assigned: itertools.count[int] = field(default_factory=itertools.count)

    def pick(self) -> tuple[Tenant, str]:
        """Tenants and topics in turn, so users spread over all of them."""
        n = next(self.assigned)
        tenant = self.tenants[n % len(self.tenants)]
        return tenant, tenant.topics[(n // len(self.tenants)) % len(tenant.topics)]


PLAN: Plan | None = None


def _options_of(environment: Environment) -> Any:
    return environment.parsed_options


def _admin(environment: Environment, key: str) -> httpx.Client:
    assert environment.host, "give --host"
    return httpx.Client(
        base_url=environment.host.rstrip("/"),
        headers={"Authorization": f"Bearer {key}"},
        timeout=SETUP_TIMEOUT_S,
    )


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise RuntimeError(
            f"set-up: {response.request.method} {response.request.url.path}"
            f" answered {response.status_code}: {response.text[:300]}"
        )
    return response.json() if response.content else {}


@events.test_start.add_listener
def _set_up(environment: Environment, **_: Any) -> None:
    global PLAN
    if isinstance(environment.runner, MasterRunner):
        return  # the workers set up their own
    options = _options_of(environment)
    key = os.environ.get("TIDEGATE_API_KEY")
    if not key:
        raise RuntimeError("set TIDEGATE_API_KEY")
    plan = Plan(run=f"lt{uuid.uuid4().hex[:8]}")
    with _admin(environment, key) as operator:
        if options.tidegate_tenants == 0:
            plan.tenants.append(Tenant(None, key, []))
        for i in range(options.tidegate_tenants):
            name = f"{plan.run}-t{i}"
            _ok(operator.post("/v1/admin/tenants", json={"name": name, "plan": "unlimited"}))
            plan.created_tenants.append(name)
            scopes = ["topics:read", "topics:write", "topics:admin", "groups:read"]
            minted = _ok(operator.post(f"/v1/admin/tenants/{name}/keys", json={"scopes": scopes}))
            plan.tenants.append(Tenant(name, minted["key"], []))
    for tenant in plan.tenants:
        with _admin(environment, tenant.key) as api:
            for t in range(options.tidegate_topics_per_tenant):
                topic = f"{plan.run}-topic{t}"
                body = {"name": topic, "partitions": options.tidegate_partitions}
                _ok(api.post("/v1/topics", json=body))
                tenant.topics.append(topic)
    PLAN = plan


@events.init.add_listener
def _weights(environment: Environment, **_: Any) -> None:
    options = _options_of(environment)
    if options is not None:
        Producer.weight = options.tidegate_producer_weight
        LongPollConsumer.weight = options.tidegate_consumer_weight
        WebSocketSubscriber.weight = options.tidegate_websocket_weight
        SseSubscriber.weight = options.tidegate_sse_weight
        GroupConsumer.weight = options.tidegate_group_weight


@events.test_stop.add_listener
def _clean_up(environment: Environment, **_: Any) -> None:
    global PLAN
    plan, PLAN = PLAN, None
    if plan is None:
        return
    key = os.environ.get("TIDEGATE_API_KEY", "")
    for tenant in plan.tenants:
        if tenant.name is None:  # the key's own tenant: only the topics are ours
            with _admin(environment, tenant.key) as api:
                for topic in tenant.topics:
                    api.delete(f"/v1/topics/{topic}")
    with _admin(environment, key) as operator:
        for name in plan.created_tenants:  # deleting a tenant deletes its topics
            operator.delete(f"/v1/admin/tenants/{name}")


def _value(size: int, n: int) -> dict[str, Any]:
    return {"n": n, "at": time.time(), "pad": "x" * max(0, size - 40)}


class Producer(FastHttpUser):
    """Batches and single records, keyed or not, some with an Idempotency-Key."""

    weight = 3

    def on_start(self) -> None:
        assert PLAN is not None, "set-up did not run"
        self.tenant, self.topic = PLAN.pick()
        options = _options_of(self.environment)
        self.options = options
        rate = options.tidegate_producer_rate
        self.pace = constant_throughput(rate) if rate > 0 else constant(0)
        self.auth = {"Authorization": f"Bearer {self.tenant.key}"}
        self.sent = 0

    def wait_time(self) -> float:
        return float(self.pace(self))

    @task
    def produce(self) -> None:
        o = self.options
        single = random.random() < o.tidegate_single_share
        keyed = random.random() < o.tidegate_keyed_share
        count = 1 if single else o.tidegate_batch_records
        records = []
        for _ in range(count):
            self.sent += 1
            record: dict[str, Any] = {"value": _value(o.tidegate_record_bytes, self.sent)}
            if keyed:
                record["key"] = f"user-{random.randrange(10_000)}"
            records.append(record)
        headers = dict(self.auth)
        name = f"produce {'single' if single else 'batch'}{' keyed' if keyed else ''}"
        if random.random() < o.tidegate_idempotent_share:
            headers["Idempotency-Key"] = uuid.uuid4().hex
            name += " idempotent"
        with self.client.post(
            f"/v1/topics/{self.topic}/records",
            data=json.dumps({"records": records}),
            headers={**headers, "Content-Type": "application/json"},
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class LongPollConsumer(FastHttpUser):
    """Long-polls one partition from its end and reads on; reports record latency."""

    weight = 1
    wait_time = constant(0)

    def on_start(self) -> None:
        assert PLAN is not None, "set-up did not run"
        tenant, self.topic = PLAN.pick()
        options = _options_of(self.environment)
        self.partition = random.randrange(options.tidegate_partitions)
        self.wait_ms = options.tidegate_wait_ms
        self.auth = {"Authorization": f"Bearer {tenant.key}"}
        self.offset = "latest"

    @task
    def poll(self) -> None:
        path = f"/v1/topics/{self.topic}/partitions/{self.partition}/records"
        query = f"?offset={self.offset}&max_wait_ms={self.wait_ms}&max_records=500"
        with self.client.get(
            path + query, headers=self.auth, name="fetch long-poll", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            reply = response.json()
        self.offset = str(reply["next_offset"])
        records = reply["records"]
        if records:
            _record_latency_of_newest(self.environment, "record latency (long-poll)", records)


class GroupConsumer(FastHttpUser):
    """A consumer-group member: join, fetch with the cursor, commit, leave on stop."""

    weight = 1
    wait_time = constant(0)

    def on_start(self) -> None:
        assert PLAN is not None, "set-up did not run"
        tenant, self.topic = PLAN.pick()
        self.wait_ms = _options_of(self.environment).tidegate_wait_ms
        self.auth = {"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"}
        self.group_path = f"/v1/groups/{PLAN.run}-{self.topic}"
        self.member_id: str | None = None
        self.generation = 0
        self.cursor: str | None = None
        self.join()

    def on_stop(self) -> None:
        if self.member_id is not None:
            self.client.delete(
                f"{self.group_path}/members/{self.member_id}", headers=self.auth, name="group leave"
            )
            self.member_id = None

    def join(self) -> None:
        body: dict[str, Any] = {"topics": [self.topic], "auto_offset_reset": "latest"}
        if self.member_id is not None:
            body["member_id"] = self.member_id
        with self.client.post(
            f"{self.group_path}/members", data=json.dumps(body), headers=self.auth,
            name="group join", catch_response=True,
        ) as response:  # fmt: skip
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            reply = response.json()
        self.member_id, self.generation = reply["member_id"], reply["generation"]
        self.cursor = None  # after a join reading starts from the commits

    def _rebalanced(self, response: Any) -> bool:
        """A 409 of a new generation: rejoin (not a failure: groups do this)."""
        if response.status_code == 409 and "rejoin" in response.text:
            response.success()
            self.join()
            return True
        return False

    @task
    def consume(self) -> None:
        if self.member_id is None:
            self.join()
            return
        query = f"?member_id={self.member_id}&max_wait_ms={self.wait_ms}&max_records=500"
        if self.cursor is not None:
            query += f"&cursor={self.cursor}"
        with self.client.get(
            f"{self.group_path}/records{query}", headers=self.auth, name="group fetch",
            catch_response=True,
        ) as response:  # fmt: skip
            if self._rebalanced(response):
                return
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            reply = response.json()
        self.cursor, self.generation = reply["cursor"], reply["generation"]
        records = reply["records"]
        if not records:
            return
        _record_latency_of_newest(self.environment, "record latency (group)", records)
        next_offsets: dict[int, int] = {}
        for record in records:  # processed: commit past each partition's last
            next_offsets[record["partition"]] = record["offset"] + 1
        body = {
            "member_id": self.member_id,
            "generation": self.generation,
            "offsets": [
                {"topic": self.topic, "partition": p, "offset": o} for p, o in next_offsets.items()
            ],
        }
        with self.client.post(
            f"{self.group_path}/offsets", data=json.dumps(body), headers=self.auth,
            name="group commit", catch_response=True,
        ) as response:  # fmt: skip
            if not self._rebalanced(response) and response.status_code != 204:
                response.failure(f"{response.status_code}: {response.text[:200]}")


def _record_latency_of_newest(
    environment: Environment, name: str, records: list[dict[str, Any]]
) -> None:
    """The newest record's age on arrival, from its timestamp, as a RECV request event."""
    environment.events.request.fire(
        request_type="RECV",
        name=name,
        response_time=max(0.0, time.time() * 1000 - records[-1]["timestamp"]),
        response_length=len(records),
        exception=None,
        context={},
    )


def _report(environment: Environment, kind: str, name: str, started: float, exc: Exception | None,
            length: int = 0) -> None:  # fmt: skip
    environment.events.request.fire(
        request_type=kind,
        name=name,
        response_time=(time.perf_counter() - started) * 1000,
        response_length=length,
        exception=exc,
        context={},
    )


def _record_latency(environment: Environment, name: str, records: list[dict[str, Any]]) -> None:
    """Each record's age on arrival, from its timestamp, as a RECV request event."""
    now_ms = time.time() * 1000
    for record in records:
        environment.events.request.fire(
            request_type="RECV",
            name=name,
            response_time=max(0.0, now_ms - record["timestamp"]),
            response_length=0,
            exception=None,
            context={},
        )


class WebSocketSubscriber(User):
    """Follows a topic over WebSocket from `latest`; reports each record's latency."""

    weight = 1
    wait_time = constant(1)

    def on_start(self) -> None:
        assert PLAN is not None, "set-up did not run"
        tenant, topic = PLAN.pick()
        host = (self.environment.host or "").rstrip("/")
        self.url = host.replace("http", "ws", 1) + f"/v1/topics/{topic}/stream?from=latest"
        self.headers = {"Authorization": f"Bearer {tenant.key}"}

    @task
    def follow(self) -> None:
        started = time.perf_counter()
        try:
            ws = ws_connect(self.url, additional_headers=self.headers, open_timeout=10)
        except Exception as exc:
            _report(self.environment, "WS", "connect", started, exc)
            return
        _report(self.environment, "WS", "connect", started, None)
        try:
            while True:  # until the test stops this user (GreenletExit) or the server closes
                document = json.loads(ws.recv())
                if document.get("type") == "records":
                    _record_latency(self.environment, "record latency (websocket)",
                                    document["records"])  # fmt: skip
        except gevent.GreenletExit:
            raise
        except Exception as exc:
            _report(self.environment, "WS", "stream", started, exc)
        finally:
            ws.close()


class SseSubscriber(User):
    """Follows a topic over Server-Sent Events from `latest`; reports each record's latency."""

    weight = 1
    wait_time = constant(1)

    def on_start(self) -> None:
        assert PLAN is not None, "set-up did not run"
        tenant, self.topic = PLAN.pick()
        self.client = _admin(self.environment, tenant.key)
        self.client.timeout = httpx.Timeout(30.0, read=None)

    def on_stop(self) -> None:
        self.client.close()

    @task
    def follow(self) -> None:
        started = time.perf_counter()
        path = f"/v1/topics/{self.topic}/events?from=latest"
        try:
            with connect_sse(self.client, "GET", path) as source:
                source.response.raise_for_status()
                _report(self.environment, "SSE", "connect", started, None)
                for event in source.iter_sse():
                    if event.event == "record":
                        _record_latency(self.environment, "record latency (sse)",
                                        [json.loads(event.data)])  # fmt: skip
        except gevent.GreenletExit:
            raise
        except Exception as exc:
            _report(self.environment, "SSE", "connect", started, exc)
