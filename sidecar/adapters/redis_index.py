"""The shared index cache in Redis, and the watcher that hot-reloads a running sidecar.

Keys (``prefix`` defaults to ``behavior:spec``)::

    {prefix}:index:<hash>   compiled index payload (codec.encode_index)
    {prefix}:current        hash of the index every replica should serve
    {prefix}:history        recent hashes, newest first; older payloads are deleted
    {prefix}:updates        pub/sub channel; message = the new current hash

Publishing stores the payload and moves the pointer in one MULTI/EXEC, then announces it.
Replicas react to the announcement and also poll the pointer, because pub/sub drops messages
while a subscriber is disconnected.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from sidecar.errors import IndexCacheUnavailable, IndexNotFound
from sidecar.spec_index.codec import decode_index, encode_index
from sidecar.spec_index.holder import IndexHolder
from sidecar.spec_index.index import RuntimeIndex

log = logging.getLogger(__name__)


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn driver errors into the sidecar's own (the core never sees redis exceptions)."""
    try:
        yield
    except redis.RedisError as exc:
        raise IndexCacheUnavailable(f"redis {action}: {exc}") from exc


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


class RedisIndexCache:
    """Stores compiled indexes by content hash and the pointer to the current one."""

    def __init__(self, client: redis.Redis, prefix: str = "behavior:spec", keep: int = 10) -> None:
        self.client = client
        self.prefix = prefix
        self.keep = max(1, keep)
        self.channel = f"{prefix}:updates"

    @classmethod
    def from_url(cls, url: str, prefix: str = "behavior:spec") -> RedisIndexCache:
        """Connect lazily to the Redis at ``url``."""
        return cls(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5), prefix)

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()

    def _key(self, spec_hash: str) -> str:
        return f"{self.prefix}:index:{spec_hash}"

    def publish(self, index: RuntimeIndex) -> bool:
        """Store ``index`` and make it current; returns False if it already was current."""
        payload = encode_index(index)
        h = index.spec_hash
        with _translated("publish"):
            previous = self.client.get(f"{self.prefix}:current")
            pipe = self.client.pipeline(transaction=True)
            pipe.set(self._key(h), payload)
            pipe.set(f"{self.prefix}:current", h)
            pipe.lrem(f"{self.prefix}:history", 0, h)
            pipe.lpush(f"{self.prefix}:history", h)
            pipe.lrange(f"{self.prefix}:history", self.keep, -1)
            results = pipe.execute()
            evicted = [_text(e) for e in results[-1]]
            if evicted:
                pipe = self.client.pipeline(transaction=True)
                pipe.delete(*(self._key(e) for e in evicted))
                pipe.ltrim(f"{self.prefix}:history", 0, self.keep - 1)
                pipe.execute()
            self.client.publish(self.channel, h)
        return previous is None or _text(previous) != h

    def current_hash(self) -> str | None:
        """The hash replicas should serve, or None if nothing was published."""
        with _translated("read current pointer"):
            value = self.client.get(f"{self.prefix}:current")
        return _text(value) if value is not None else None

    def load(self, spec_hash: str) -> RuntimeIndex:
        """The index stored under ``spec_hash`` (decoded and checked)."""
        with _translated(f"load index {spec_hash[:12]}"):
            payload = self.client.get(self._key(spec_hash))
        if payload is None:
            raise IndexNotFound(f"no index stored under {spec_hash[:12]} in redis")
        return decode_index(_raw(payload), expected_hash=spec_hash)

    def load_current(self) -> RuntimeIndex:
        """The index the current pointer names."""
        h = self.current_hash()
        if h is None:
            raise IndexNotFound(f"no current index published under '{self.prefix}'")
        return self.load(h)


class IndexWatcher:
    """Background thread keeping an :class:`IndexHolder` on the cache's current index."""

    def __init__(
        self, cache: RedisIndexCache, holder: IndexHolder, poll_interval_s: float = 30.0
    ) -> None:
        self.cache = cache
        self.holder = holder
        self.poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: A hash that failed to load is not retried until the pointer moves again.
        self._rejected: str | None = None

    def start(self) -> None:
        """Start following the pointer."""
        self._thread = threading.Thread(target=self._run, name="index-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def check_now(self, announced: str | None = None) -> bool:
        """Load the announced (or current) hash if it differs from what is served."""
        spec_hash = announced or self.cache.current_hash()
        if spec_hash is None or spec_hash == self.holder.current.spec_hash:
            return False
        if spec_hash == self._rejected:
            return False
        swapped = self.holder.offer(lambda: self.cache.load(spec_hash), f"redis:{spec_hash[:12]}")
        self._rejected = None if swapped else spec_hash
        return swapped

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            pubsub = self.cache.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self.cache.channel)
                self.check_now()  # catch up on anything published while not subscribed
                backoff = 0.5
                self._listen(pubsub)
            except (redis.RedisError, IndexCacheUnavailable) as exc:
                log.warning(
                    "index watcher: redis unavailable (%s); retrying in %.1fs", exc, backoff
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                pubsub.close()

    def _listen(self, pubsub: redis.client.PubSub) -> None:
        waited = 0.0
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=0.5)
            if message is not None and message.get("type") == "message":
                self.check_now(_text(message["data"]))
                continue
            waited += 0.5
            if waited >= self.poll_interval_s:
                waited = 0.0
                self.check_now()
