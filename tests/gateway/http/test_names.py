"""Topic names: Kafka's alphabet, no traversal, and the tenant namespace."""

from __future__ import annotations

import pytest

from gateway.http.names import checked_topic_name, client_name, is_valid_topic_name, storage_name
from gateway.http.problems import GatewayError


@pytest.mark.parametrize("name", ["a", "orders.v1", "A_b-c", "x" * 249, "..."])
def test_valid_names(name: str) -> None:
    assert is_valid_topic_name(name)


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "a/b", "a~b", "x" * 250, "é", "a b", "../etc", "a\x00", "orders\n", "..\n"],
)
def test_invalid_names_are_refused(name: str) -> None:
    assert not is_valid_topic_name(name)
    with pytest.raises(GatewayError) as info:
        checked_topic_name(name)
    assert info.value.problem.type.status == 400


def test_storage_names_carry_the_tenant_and_strip_back() -> None:
    stored = storage_name("acme", "orders")
    assert stored == "acme~orders"
    assert client_name("acme", stored) == "orders"
    with pytest.raises(ValueError, match="does not belong"):
        client_name("other", stored)
