"""A realistic 15-field order event: its JSON Schema, the equivalent Avro schema, values.

The benchmarks of schema validation (bench_validators, bench_schemas) use it,
so that both measure the same shape: strings with formats and patterns, an
enum, integers and numbers with bounds, a boolean, a nullable field, an array
of objects and a nested object, about 400 bytes a value.
"""

from __future__ import annotations

from typing import Any

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "order_id",
        "customer_id",
        "status",
        "created_ms",
        "currency",
        "total_cents",
        "items",
        "shipping",
    ],
    "properties": {
        "order_id": {"type": "string", "pattern": "^ord-[0-9]+$"},
        "customer_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "status": {"enum": ["created", "paid", "shipped", "delivered", "cancelled"]},
        "created_ms": {"type": "integer", "minimum": 0},
        "currency": {"type": "string", "minLength": 3, "maxLength": 3},
        "total_cents": {"type": "integer", "minimum": 0},
        "tax_rate": {"type": "number", "minimum": 0, "maximum": 1},
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["sku", "quantity", "price_cents"],
                "properties": {
                    "sku": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 1},
                    "price_cents": {"type": "integer", "minimum": 0},
                },
            },
        },
        "shipping": {
            "type": "object",
            "additionalProperties": False,
            "required": ["country", "postcode"],
            "properties": {
                "country": {"type": "string", "minLength": 2, "maxLength": 2},
                "postcode": {"type": "string"},
                "city": {"type": "string"},
            },
        },
        "gift": {"type": "boolean"},
        "coupon": {"type": ["string", "null"]},
        "channel": {"enum": ["web", "ios", "android", "store"]},
        "email": {"type": "string"},
        "notes": {"type": "string", "maxLength": 500},
        "priority": {"type": "integer", "minimum": 0, "maximum": 9},
    },
}

AVRO_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Order",
    "namespace": "shop.events",
    "fields": [
        {"name": "order_id", "type": "string"},
        {"name": "customer_id", "type": "string"},
        {
            "name": "status",
            "type": {
                "type": "enum",
                "name": "Status",
                "symbols": ["created", "paid", "shipped", "delivered", "cancelled"],
            },
        },
        {"name": "created_ms", "type": "long"},
        {"name": "currency", "type": "string"},
        {"name": "total_cents", "type": "long"},
        {"name": "tax_rate", "type": "double", "default": 0.0},
        {
            "name": "items",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Item",
                    "fields": [
                        {"name": "sku", "type": "string"},
                        {"name": "quantity", "type": "int"},
                        {"name": "price_cents", "type": "long"},
                    ],
                },
            },
        },
        {
            "name": "shipping",
            "type": {
                "type": "record",
                "name": "Shipping",
                "fields": [
                    {"name": "country", "type": "string"},
                    {"name": "postcode", "type": "string"},
                    {"name": "city", "type": "string", "default": ""},
                ],
            },
        },
        {"name": "gift", "type": "boolean", "default": False},
        {"name": "coupon", "type": ["null", "string"], "default": None},
        {
            "name": "channel",
            "type": {
                "type": "enum",
                "name": "Channel",
                "symbols": ["web", "ios", "android", "store"],
            },
            "default": "web",
        },
        {"name": "email", "type": "string", "default": ""},
        {"name": "notes", "type": "string", "default": ""},
        {"name": "priority", "type": "int", "default": 0},
    ],
}


def order(i: int) -> dict[str, Any]:
    """The i-th order: valid against both schemas, every field present."""
    return {
        "order_id": f"ord-{i}",
        "customer_id": f"cust-{i % 977}",
        "status": ("created", "paid", "shipped")[i % 3],
        "created_ms": 1_764_000_000_000 + i,
        "currency": "EUR",
        "total_cents": 1000 + i,
        "tax_rate": 0.19,
        "items": [
            {"sku": f"sku-{i % 31}", "quantity": 1 + i % 3, "price_cents": 500},
            {"sku": "sku-gift-wrap", "quantity": 1, "price_cents": 0},
        ],
        "shipping": {"country": "DE", "postcode": "10115", "city": "Berlin"},
        "gift": i % 2 == 0,
        "coupon": None if i % 4 else "SPRING",
        "channel": "web",
        "email": f"user{i}@example.com",
        "notes": "leave at the door",
        "priority": i % 10,
    }
