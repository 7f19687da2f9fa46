"""Bytes for a runtime index: compressed JSON with a magic prefix, checked on the way in."""

from __future__ import annotations

import zlib

from pydantic import ValidationError

from sidecar.errors import IndexCorrupt
from sidecar.spec_index.index import RuntimeIndex

MAGIC = b"BIX1"
#: Refuse to inflate more than this: a corrupt or hostile payload must not exhaust memory.
MAX_INDEX_BYTES = 512 * 1024 * 1024


def encode_index(index: RuntimeIndex) -> bytes:
    """Serialise an index for the cache."""
    return MAGIC + zlib.compress(index.model_dump_json().encode(), level=6)


def decode_index(data: bytes, expected_hash: str | None = None) -> RuntimeIndex:
    """Deserialise and check an index; raises :class:`IndexCorrupt` saying what is wrong."""
    if not data.startswith(MAGIC):
        raise IndexCorrupt(f"not a runtime index payload (starts with {data[:4]!r})")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data[len(MAGIC) :], MAX_INDEX_BYTES)
    except zlib.error as exc:
        raise IndexCorrupt(f"index payload does not inflate: {exc}") from exc
    if inflater.unconsumed_tail:
        raise IndexCorrupt(f"index payload inflates past {MAX_INDEX_BYTES} bytes")
    if not inflater.eof:
        raise IndexCorrupt("index payload is truncated")
    try:
        index = RuntimeIndex.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise IndexCorrupt(
            f"index payload does not match the schema: {where}: {first['msg']}"
        ) from exc
    if expected_hash is not None and index.spec_hash != expected_hash:
        raise IndexCorrupt(
            f"index stored under {expected_hash[:12]} carries hash {index.spec_hash[:12]}"
        )
    problems = index.check()
    if problems:
        raise IndexCorrupt(f"index is inconsistent: {problems[0]} ({len(problems)} problem(s))")
    return index
