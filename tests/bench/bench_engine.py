"""Benchmark: engine spans/s per core from a columnar batch on known shapes (goal >= 1,000,000).

A realistic checkout trace (Online Boutique example spec: PlaceOrder and its eight calls,
client and server spans, internal spans) is tiled into a large batch with distinct trace and
span ids. The shape cache is warmed by one run; the measured runs are what a long-running
sidecar sees. One thread, so the number is per core.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from sidecar.decode.otlp_json import decode_document, iter_documents
from sidecar.engine import Engine
from sidecar.evidence.batch import BatchBuilder, EvidenceBatch, Signal, SpanKind
from sidecar.replay import replay
from sidecar.report import DriftReport
from sidecar.spec_index.index import RuntimeIndex
from sidecar.spec_index.startup import index_from_disk

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "online-boutique" / "specs"
CALLS = [("CartService", "GetCart"), ("ProductCatalogService", "GetProduct"),
         ("CurrencyService", "Convert"), ("ShippingService", "GetQuote"),
         ("PaymentService", "Charge"), ("ShippingService", "ShipOrder"),
         ("CartService", "EmptyCart"), ("EmailService", "SendOrderConfirmation")]  # fmt: skip


def one_trace(keys: tuple[str, ...]) -> EvidenceBatch:
    """A checkout trace: root, internal step, client and server span per call."""
    b = BatchBuilder(keys)
    code = b.pool.code
    sid = 0

    def add(service: str, name: str, kind: int, parent: int, attrs: dict[str, object]) -> int:
        nonlocal sid
        sid += 1
        b.add({"signal": Signal.SPAN, "trace_hi": 1, "trace_lo": 1, "span_id": sid,
               "parent_id": parent, "start_ns": sid * 1000, "end_ns": sid * 1000 + 800,
               "kind": kind, "service": code(service), "name": code(name)}, attrs)  # fmt: skip
        return sid

    attrs = {"app.user.id": "u", "app.order.id": "o", "app.user.currency": "USD",
             "app.order.items.count": 2}  # fmt: skip
    root = add("checkoutservice", "hipstershop.CheckoutService/PlaceOrder", SpanKind.SERVER, 0,
               attrs)  # fmt: skip
    for svc, method in CALLS:
        step = add("checkoutservice", f"hipstershop.CheckoutService/Do{method}",
                   SpanKind.INTERNAL, root, {})  # fmt: skip
        client = add("checkoutservice", f"hipstershop.{svc}/{method}", SpanKind.CLIENT, step, {})
        add(svc.lower(), f"hipstershop.{svc}/{method}", SpanKind.SERVER, client, {})
    return b.build()


def tile(batch: EvidenceBatch, times: int) -> EvidenceBatch:
    """``times`` copies of a batch, each with its own trace id (same pool, same shapes)."""
    n = len(batch)
    out = {}
    for f in fields(EvidenceBatch):
        value = getattr(batch, f.name)
        if isinstance(value, np.ndarray) and len(value) == n:
            out[f.name] = np.tile(value, times)
    out["trace_lo"] = np.repeat(np.arange(1, times + 1, dtype=np.uint64), n)
    out["attr"] = {k: np.tile(v, times) for k, v in batch.attr.items()}
    per = np.diff(batch.attr_offsets)
    out["attr_offsets"] = np.concatenate([[0], np.cumsum(np.tile(per, times))]).astype(np.int64)
    for name in ("attr_keys", "attr_values", "attr_numbers"):
        out[name] = np.tile(getattr(batch, name), times)
    return replace(batch, **out)


def main() -> int:
    """Print spans/s of the engine on known shapes, and the cold first batch for contrast."""
    rows = int(os.environ.get("BENCH_ENGINE_ROWS", "1000000"))
    index = index_from_disk(EXAMPLE)
    base = one_trace(index.attribute_keys)
    batch = tile(base, max(1, rows // len(base)))
    engine = Engine(index)
    t0 = time.perf_counter()
    engine.process(batch)
    cold = time.perf_counter() - t0
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        engine.process(batch)
        runs.append(time.perf_counter() - t0)
    med = statistics.median(runs)
    print(f"engine: {len(batch):,} spans per batch, {len(base)} shapes, 1 thread")
    print(
        f"  first batch (cold shape cache, JIT):  {cold:7.3f} s  {len(batch) / cold:12,.0f} spans/s"
    )
    print(
        f"  known shapes (median of 5):            {med:7.3f} s  {len(batch) / med:12,.0f} spans/s"
    )
    print(
        f"  goal >= 1,000,000 spans/s per core: {'met' if len(batch) / med >= 1e6 else 'NOT met'}"
    )
    replay_throughput(index)
    return 0


def replay_throughput(index: RuntimeIndex) -> None:
    """OTLP JSON replay of the recorded baseline traces: decode only, and decode+engine+write."""
    traces = ROOT.parent / "shared" / "data" / "online-boutique" / "baseline" / "traces.json"
    keys = index.attribute_keys
    spans = 0
    t0 = time.perf_counter()
    for doc in iter_documents(traces):
        spans += len(decode_document(doc.doc, keys))
    decode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    replay(Engine(index), [traces], io.StringIO(), DriftReport())
    replay_s = time.perf_counter() - t0
    print(f"OTLP JSON replay ({traces.name}, {spans:,} spans of the Online Boutique recording):")
    print(f"  read + parse + decode:    {decode_s:7.3f} s  {spans / decode_s:12,.0f} spans/s")
    print(f"  decode+engine+annotate+write: {replay_s:7.3f} s  {spans / replay_s:12,.0f} spans/s")


if __name__ == "__main__":
    sys.exit(main())
