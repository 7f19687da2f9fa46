"""Real Redis / PostgreSQL / Neo4j servers for integration tests (see docs/services.md).

Each service is resolved once per session, in this order:

1. its URL in the environment (``REDIS_URL``, ``POSTGRES_URL``, ``NEO4J_URL`` with optional
   ``NEO4J_USER``/``NEO4J_PASSWORD``) -> used as is;
2. a Docker engine answers -> a testcontainers container for the session;
3. ``CI`` is set -> the test FAILS (never skips) with instructions;
4. otherwise -> ``scripts/services/run.sh start <name>`` starts a local server (stopped again
   at the end of the session unless it was already running or ``SIDECAR_KEEP_SERVICES=1``).

Function-scoped fixtures isolate tests: ``redis_client`` (unique key prefix, cleaned up),
``postgres_conn`` (a fresh schema on the search path, dropped afterwards) and ``neo4j_driver``
(graph emptied before and after the test).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shlex
import socket
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import neo4j
import psycopg
import pytest
import redis
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_SH = REPO_ROOT / "scripts" / "services" / "run.sh"

URL_VARS = {"redis": "REDIS_URL", "postgres": "POSTGRES_URL", "neo4j": "NEO4J_URL"}
# Images for the Docker path; versions match what scripts/services/ runs locally.
REDIS_IMAGE = "redis:7"
POSTGRES_IMAGE = "postgres:15"
NEO4J_IMAGE = "neo4j:5.26"
# First local start may build the Neo4j launcher (downloads from Maven Central).
LOCAL_START_TIMEOUT_S = 1800


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def _is_ci() -> bool:
    return _truthy(os.environ.get("CI"))


def _docker_available() -> bool:
    """Does a Docker engine answer /_ping within a second? (No docker SDK: it leaks sockets.)"""
    if not _truthy(os.environ.get("SIDECAR_TEST_DOCKER", "1")):
        return False
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    parsed = urlparse(host)
    try:
        if parsed.scheme == "unix":
            if not Path(parsed.path).exists():
                return False
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = parsed.path
        elif parsed.scheme == "tcp" and parsed.hostname:
            conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (parsed.hostname, parsed.port or 2375)
        else:
            return False
        with conn:
            conn.settimeout(1.0)
            conn.connect(address)
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = conn.recv(256)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]


def _missing_service_message(name: str) -> str:
    var = URL_VARS[name]
    return (
        f"{var} is not set and no Docker engine answers. Under CI the integration tests neither "
        f"start services themselves nor skip. Start the service before pytest:\n"
        f"    scripts/services/run.sh start {name}\n"
        f'    eval "$(scripts/services/run.sh env {name})"\n'
        f"or set {var} to a running server (see docs/services.md)."
    )


def _run_services(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUN_SH), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=LOCAL_START_TIMEOUT_S,
        check=False,
    )


def _parse_exports(text: str) -> dict[str, str]:
    """Parse `export NAME=value` lines as printed by `run.sh env`."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            env[key] = value
    return env


@dataclass(frozen=True)
class ServiceEndpoint:
    """Where a service is: its URL, and credentials for Neo4j when it uses auth."""

    url: str
    user: str | None = None
    password: str | None = None


class ServiceProvider:
    """Resolves each service once per session; owns whatever it had to start."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._cache: dict[str, ServiceEndpoint] = {}
        self._docker: bool | None = None

    def close(self) -> None:
        self._stack.close()

    def get(self, name: str) -> ServiceEndpoint:
        if name not in self._cache:
            self._cache[name] = self._resolve(name)
        return self._cache[name]

    def _resolve(self, name: str) -> ServiceEndpoint:
        url = os.environ.get(URL_VARS[name])
        if url:
            if name == "neo4j":
                return ServiceEndpoint(
                    url, os.environ.get("NEO4J_USER"), os.environ.get("NEO4J_PASSWORD")
                )
            return ServiceEndpoint(url)
        if self._docker is None:
            self._docker = _docker_available()
        if self._docker:
            return self._start_container(name)
        if _is_ci():
            pytest.fail(_missing_service_message(name), pytrace=False)
        return self._start_local(name)

    def _start_local(self, name: str) -> ServiceEndpoint:
        already_running = _run_services("status", name).returncode == 0
        started = _run_services("start", name)
        if started.returncode != 0:
            pytest.fail(
                f"`scripts/services/run.sh start {name}` failed (exit {started.returncode}):\n"
                f"{started.stderr[-4000:]}",
                pytrace=False,
            )
        if not already_running and not _truthy(os.environ.get("SIDECAR_KEEP_SERVICES")):
            self._stack.callback(_run_services, "stop", name)
        env = _parse_exports(_run_services("env", name).stdout)
        return ServiceEndpoint(
            env[URL_VARS[name]], env.get("NEO4J_USER"), env.get("NEO4J_PASSWORD")
        )

    def _start_container(self, name: str) -> ServiceEndpoint:
        if name == "redis":
            redis_container = self._stack.enter_context(
                _container_class("redis", "RedisContainer")(REDIS_IMAGE)
            )
            host = redis_container.get_container_host_ip()
            return ServiceEndpoint(f"redis://{host}:{redis_container.get_exposed_port(6379)}/0")
        if name == "postgres":
            pg = self._stack.enter_context(
                _container_class("postgres", "PostgresContainer")(
                    POSTGRES_IMAGE,
                    username="behavior",
                    password="behavior",
                    dbname="behavior",
                    driver=None,
                )
            )
            return ServiceEndpoint(pg.get_connection_url())
        graph = self._stack.enter_context(
            _container_class("neo4j", "Neo4jContainer")(
                NEO4J_IMAGE, username="neo4j", password="test-password"
            )
        )
        return ServiceEndpoint(graph.get_connection_url(), graph.username, graph.password)


def _container_class(module: str, cls: str) -> Any:
    """A testcontainers class, imported only when Docker is used (the import is slow)."""
    with warnings.catch_warnings():
        # testcontainers < 4.13 has no `community` package; newer ones warn on the old paths.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            mod = importlib.import_module(f"testcontainers.community.{module}")
        except ImportError:
            mod = importlib.import_module(f"testcontainers.{module}")
    return getattr(mod, cls)


@pytest.fixture(scope="session")
def service_provider() -> Iterator[ServiceProvider]:
    provider = ServiceProvider()
    try:
        yield provider
    finally:
        provider.close()


# ---------------------------------------------------------------- connection targets (session)


@pytest.fixture(scope="session")
def redis_url(service_provider: ServiceProvider) -> str:
    """URL of a real Redis, e.g. ``redis://127.0.0.1:16379/0``."""
    return service_provider.get("redis").url


@pytest.fixture(scope="session")
def postgres_url(service_provider: ServiceProvider) -> str:
    """libpq URL of a real PostgreSQL database, e.g. ``postgresql://u:p@127.0.0.1:15432/db``."""
    return service_provider.get("postgres").url


@pytest.fixture(scope="session")
def neo4j_url(service_provider: ServiceProvider) -> str:
    """Bolt URL of a real Neo4j 5.26, e.g. ``bolt://127.0.0.1:17687``."""
    return service_provider.get("neo4j").url


@pytest.fixture(scope="session")
def neo4j_auth(service_provider: ServiceProvider) -> tuple[str, str] | None:
    """(user, password) for Neo4j, or None when the server has auth disabled (the local one)."""
    endpoint = service_provider.get("neo4j")
    if endpoint.user is None:
        return None
    return (endpoint.user, endpoint.password or "")


# ---------------------------------------------------------------- isolated clients (per test)


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to this test; keys under it are deleted after the test."""
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def redis_client(redis_url: str, redis_prefix: str) -> Iterator[redis.Redis]:
    """A Redis client (bytes in, bytes out). Use `redis_prefix` for every key you write."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        try:
            keys = list(client.scan_iter(match=f"{redis_prefix}*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.fixture
def postgres_conn(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection whose search_path is a fresh schema, dropped after the test.

    Use ``with conn.transaction():`` for transactional blocks.
    """
    schema = f"test_{uuid.uuid4().hex[:12]}"
    conn = psycopg.connect(postgres_url, autocommit=True)
    try:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        yield conn
    finally:
        conn.close()
        # A fresh connection: the test may have left its own one broken.
        with psycopg.connect(postgres_url, autocommit=True) as cleanup:
            cleanup.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


@pytest.fixture(scope="session")
def _neo4j_session_driver(
    neo4j_url: str, neo4j_auth: tuple[str, str] | None
) -> Iterator[neo4j.Driver]:
    driver = neo4j.GraphDatabase.driver(neo4j_url, auth=neo4j_auth)
    try:
        driver.verify_connectivity()
        yield driver
    finally:
        driver.close()


def _neo4j_wipe(driver: neo4j.Driver) -> None:
    driver.execute_query("MATCH (n) DETACH DELETE n")


@pytest.fixture
def neo4j_driver(_neo4j_session_driver: neo4j.Driver) -> Iterator[neo4j.Driver]:
    """The session's Neo4j driver, with an empty graph before and after this test.

    Tests share one database (community edition has one), so do not run them in parallel
    against the same server.
    """
    _neo4j_wipe(_neo4j_session_driver)
    try:
        yield _neo4j_session_driver
    finally:
        _neo4j_wipe(_neo4j_session_driver)
