"""The shared index cache against a real Redis: publish, load by hash, hot reload, last good."""

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sidecar.adapters.redis_index import IndexWatcher, RedisIndexCache
from sidecar.cli import main
from sidecar.errors import IndexCacheUnavailable, IndexCorrupt, IndexNotFound
from sidecar.spec_index.codec import encode_index
from sidecar.spec_index.holder import IndexHolder
from sidecar.spec_index.startup import index_from_disk, initial_index

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "online-boutique" / "specs"


@pytest.fixture
def cache(redis_url: str) -> Iterator[RedisIndexCache]:
    prefix = f"test:{uuid.uuid4().hex[:8]}:spec"
    c = RedisIndexCache.from_url(redis_url, prefix)
    yield c
    for key in c.client.scan_iter(f"{prefix}:*"):
        c.client.delete(key)
    c.close()


@pytest.fixture
def spec_copy(tmp_path: Path) -> Path:
    root = tmp_path / "specs"
    shutil.copytree(EXAMPLE, root)
    return root


def wait_for(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def add_decision(root: Path) -> None:
    """A valid spec change (a new ADR), so the content hash moves."""
    n = len(list((root / "adr").glob("*.md")))
    (root / "adr" / f"9{n:02d}-new-decision.md").write_text(
        f"# ADR-9{n:02d}: A new decision\n\n**Status**: Proposed\n"
    )


def test_publish_and_load_by_hash(cache: RedisIndexCache, spec_copy: Path) -> None:
    index = index_from_disk(spec_copy)
    assert cache.publish(index) is True
    assert cache.current_hash() == index.spec_hash
    assert cache.load(index.spec_hash) == index
    assert cache.load_current() == index
    assert cache.publish(index) is False  # same content: pointer does not move
    with pytest.raises(IndexNotFound):
        cache.load("0" * 64)


def test_cli_publish_then_sidecar_starts_from_redis(
    cache: RedisIndexCache, spec_copy: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["spec", "publish", str(spec_copy), "--redis", redis_url, "--prefix", cache.prefix])
        == 0
    )
    out = capsys.readouterr().out
    h = cache.current_hash()
    assert h is not None and f"published spec version {h[:12]} (now current)" in out
    index, origin = initial_index(cache, None)
    assert index.spec_hash == h and origin == f"redis:{h[:12]}"


def test_startup_falls_back_to_disk_when_cache_is_empty(
    cache: RedisIndexCache, spec_copy: Path
) -> None:
    index, origin = initial_index(cache, spec_copy)
    assert origin == str(spec_copy)
    assert index.spec_hash == index_from_disk(spec_copy).spec_hash


def test_hot_reload_on_pointer_move(cache: RedisIndexCache, spec_copy: Path) -> None:
    first = index_from_disk(spec_copy)
    cache.publish(first)
    holder = IndexHolder(cache.load_current())
    watcher = IndexWatcher(cache, holder, poll_interval_s=60.0)  # pub/sub, not polling
    watcher.start()
    try:
        add_decision(spec_copy)
        second = index_from_disk(spec_copy)
        assert second.spec_hash != first.spec_hash
        time.sleep(0.3)  # let the watcher subscribe
        cache.publish(second)
        assert wait_for(lambda: holder.current.spec_hash == second.spec_hash)
        assert holder.reloads == 1
    finally:
        watcher.stop()


def test_last_good_index_kept_when_update_is_invalid(
    cache: RedisIndexCache, spec_copy: Path
) -> None:
    good = index_from_disk(spec_copy)
    cache.publish(good)
    holder = IndexHolder(cache.load_current())
    watcher = IndexWatcher(cache, holder, poll_interval_s=60.0)
    watcher.start()
    try:
        time.sleep(0.3)
        # An index whose bindings point at nodes it does not contain: decodes, fails check().
        bad = good.model_copy(update={"spec_hash": "b" * 64, "nodes": {}})
        cache.client.set(f"{cache.prefix}:index:{bad.spec_hash}", encode_index(bad))
        cache.client.set(f"{cache.prefix}:current", bad.spec_hash)
        cache.client.publish(cache.channel, bad.spec_hash)
        assert wait_for(lambda: holder.reload_failures == 1)
        assert holder.current.spec_hash == good.spec_hash
        assert holder.last_error is not None and "inconsistent" in holder.last_error
        # Garbage bytes under the next pointer: also refused, the good index stays.
        cache.client.set(f"{cache.prefix}:index:{'c' * 64}", b"garbage")
        cache.client.set(f"{cache.prefix}:current", "c" * 64)
        cache.client.publish(cache.channel, "c" * 64)
        assert wait_for(lambda: holder.reload_failures == 2)
        assert holder.current.spec_hash == good.spec_hash
        with pytest.raises(IndexCorrupt):
            cache.load("c" * 64)
        # A valid publish afterwards is picked up again.
        add_decision(spec_copy)
        fixed = index_from_disk(spec_copy)
        cache.publish(fixed)
        assert wait_for(lambda: holder.current.spec_hash == fixed.spec_hash)
    finally:
        watcher.stop()


def test_poll_catches_a_missed_announcement(cache: RedisIndexCache, spec_copy: Path) -> None:
    first = index_from_disk(spec_copy)
    cache.publish(first)
    holder = IndexHolder(first)
    watcher = IndexWatcher(cache, holder, poll_interval_s=1.0)
    add_decision(spec_copy)
    second = index_from_disk(spec_copy)
    # Store and move the pointer without announcing it (as if the message were lost).
    cache.client.set(f"{cache.prefix}:index:{second.spec_hash}", encode_index(second))
    cache.client.set(f"{cache.prefix}:current", second.spec_hash)
    watcher.start()
    try:
        assert wait_for(lambda: holder.current.spec_hash == second.spec_hash)
    finally:
        watcher.stop()


def test_history_is_bounded(cache: RedisIndexCache, spec_copy: Path) -> None:
    cache.keep = 2
    base = index_from_disk(spec_copy)
    hashes = [f"{i:064x}" for i in range(4)]
    for h in hashes:
        cache.publish(base.model_copy(update={"spec_hash": h}))
    assert cache.client.lrange(f"{cache.prefix}:history", 0, -1) == [
        hashes[3].encode(),
        hashes[2].encode(),
    ]
    assert cache.client.exists(f"{cache.prefix}:index:{hashes[0]}") == 0
    assert cache.load(hashes[2]).spec_hash == hashes[2]


def test_unreachable_redis_is_a_clear_error() -> None:
    c = RedisIndexCache(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5))
    with pytest.raises(IndexCacheUnavailable, match="redis read current pointer"):
        c.current_hash()
    c.close()
