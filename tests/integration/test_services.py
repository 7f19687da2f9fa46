"""Smoke tests against real Redis / PostgreSQL / Neo4j servers (see docs/services.md)."""

from __future__ import annotations

import time
from typing import Any

import neo4j
import psycopg
import pytest
import redis

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------- Redis


def test_redis_set_get_roundtrip(redis_client: redis.Redis, redis_prefix: str) -> None:
    key = f"{redis_prefix}greeting"
    assert redis_client.get(key) is None
    assert redis_client.set(key, "héllo", ex=60) is True
    assert redis_client.get(key) == "héllo".encode()
    assert 0 < redis_client.ttl(key) <= 60
    assert redis_client.incr(f"{redis_prefix}counter") == 1
    assert redis_client.incr(f"{redis_prefix}counter", 41) == 42
    found = {k.decode() for k in redis_client.scan_iter(match=f"{redis_prefix}*")}
    assert found == {key, f"{redis_prefix}counter"}


def test_redis_publish_subscribe_roundtrip(redis_client: redis.Redis, redis_prefix: str) -> None:
    channel = f"{redis_prefix}events"
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(channel)
        # Wait for the subscription to be active before publishing (Redis drops messages to
        # channels nobody listens on): PUBLISH returns the number of receivers.
        deadline = time.monotonic() + 5
        receivers = 0
        while receivers == 0 and time.monotonic() < deadline:
            pubsub.get_message(timeout=0.05)  # consumes the subscribe confirmation
            receivers = redis_client.publish(channel, b"ping-1")
        assert receivers == 1

        message = None
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
        assert message is not None, "no message received within 5 s"
        assert message["type"] == "message"
        assert message["channel"] == channel.encode()
        assert message["data"] == b"ping-1"
    finally:
        pubsub.close()


# ---------------------------------------------------------------- PostgreSQL


def test_postgres_create_insert_select(postgres_conn: psycopg.Connection[Any]) -> None:
    conn = postgres_conn
    schema = conn.execute("SELECT current_schema()").fetchone()
    assert schema is not None
    assert schema[0].startswith("test_")

    conn.execute(
        "CREATE TABLE span_event (id bigserial PRIMARY KEY, name text NOT NULL, "
        "duration_ms double precision NOT NULL, attrs jsonb NOT NULL DEFAULT '{}')"
    )
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO span_event (name, duration_ms, attrs) VALUES (%s, %s, %s::jsonb)",
            [("checkout", 12.5, '{"http.status": 200}'), ("login", 3.0, "{}")],
        )
    rows = conn.execute("SELECT name, duration_ms, attrs FROM span_event ORDER BY id").fetchall()
    assert rows == [("checkout", 12.5, {"http.status": 200}), ("login", 3.0, {})]

    # A rolled-back transaction leaves nothing behind.
    with pytest.raises(psycopg.errors.NotNullViolation), conn.transaction():
        conn.execute("INSERT INTO span_event (name, duration_ms) VALUES ('ok', 1)")
        conn.execute("INSERT INTO span_event (name, duration_ms) VALUES (NULL, 1)")
    count = conn.execute("SELECT count(*) FROM span_event").fetchone()
    assert count == (2,)


# ---------------------------------------------------------------- Neo4j


def test_neo4j_create_and_match(neo4j_driver: neo4j.Driver) -> None:
    records, _, _ = neo4j_driver.execute_query("MATCH (n) RETURN count(n) AS n")
    assert records[0]["n"] == 0, "fixture must hand over an empty graph"

    summary = neo4j_driver.execute_query(
        "CREATE (s:Spec {id: $spec})-[:REQUIRES]->(:Behavior {name: $name, latency_ms: $ms})",
        spec="SPEC-1",
        name="checkout",
        ms=250,
    ).summary
    assert summary.counters.nodes_created == 2
    assert summary.counters.relationships_created == 1

    records, _, _ = neo4j_driver.execute_query(
        "MATCH (s:Spec {id: $spec})-[r:REQUIRES]->(b:Behavior) "
        "RETURN s.id AS spec, type(r) AS rel, b.name AS name, b.latency_ms AS ms",
        spec="SPEC-1",
    )
    assert [r.data() for r in records] == [
        {"spec": "SPEC-1", "rel": "REQUIRES", "name": "checkout", "ms": 250}
    ]
    server = neo4j_driver.get_server_info()
    assert server.agent.startswith("Neo4j/5.26")
