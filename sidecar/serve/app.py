"""``serve``: the sidecar process(es) the collector's processor calls over gRPC.

Composition: the initial index (Redis when configured, else the spec tree; invalid specs stop
the start with their ``path:line`` problems), an engine with its rate windows, the pipeline on
one engine thread, the servicer and the standard health service on a ``grpc.aio`` server,
and, with Redis, the watcher that hot-reloads the index (swapped on the engine thread, so a
batch never sees half of it). SIGTERM/SIGINT start a graceful shutdown: health turns
NOT_SERVING, new requests are refused, in-flight ones get ``grace_period_s`` to finish.

``workers > 1`` runs that many processes that all listen on the port (SO_REUSEPORT, the
kernel spreads connections): one process per core, since one process correlates on one core.
The parent only validates the specs, starts the workers, forwards signals and waits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc

from sidecar.adapters.redis_index import IndexWatcher, RedisIndexCache
from sidecar.compose import rate_tracker
from sidecar.engine import Engine
from sidecar.errors import ConfigError
from sidecar.evidence.batch import BatchBuilder, Signal, SpanKind
from sidecar.report import DriftReport
from sidecar.serve.health import add_health
from sidecar.serve.metrics import ServerMetrics
from sidecar.serve.pipeline import Pipeline
from sidecar.serve.server import CorrelationServicer, add_correlation
from sidecar.serve.sink import ReportSink
from sidecar.settings import Settings
from sidecar.spec_index.holder import IndexHolder
from sidecar.spec_index.index import RuntimeIndex
from sidecar.spec_index.startup import initial_index

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What ``serve`` was asked beyond the settings (files named on the command line)."""

    specs: Path | None = None
    baseline: Path | None = None
    #: Write the drift report (JSON) here at shutdown and log its summary table.
    report: Path | None = None


def serve(settings: Settings, options: ServeOptions) -> int:
    """Run the server (or its worker processes) until SIGTERM/SIGINT; the exit code."""
    if options.report is not None and settings.server.workers != 1:
        raise ConfigError("--report needs --workers 1 (each worker would see part of the traffic)")
    index, origin = _first_index(settings, options)
    log.info("spec version %s from %s", index.spec_hash[:12], origin)
    if settings.server.workers == 1:
        return asyncio.run(run_worker(settings, options, index, origin))
    return _run_workers(settings, options, index, origin)


def _first_index(settings: Settings, options: ServeOptions) -> tuple[RuntimeIndex, str]:
    """The index to start with; raises SpecInvalid (exit 2) for a bad spec tree."""
    root = options.specs if options.specs is not None else settings.spec.root
    if root is not None and not root.is_dir():
        raise ConfigError(f"{root}: not a directory (expected a spec root)")
    cache = _cache(settings)
    try:
        return initial_index(cache, root)
    finally:
        if cache is not None:
            cache.close()


def _cache(settings: Settings) -> RedisIndexCache | None:
    if not settings.spec.redis_url:
        return None
    cache = RedisIndexCache.from_url(settings.spec.redis_url, settings.spec.redis_prefix)
    cache.keep = settings.spec.keep_versions
    return cache


def build_engine(settings: Settings, index: RuntimeIndex, baseline: Path | None) -> Engine:
    """An engine with the configured rate windows (and baseline profile)."""
    rates = rate_tracker(settings.drift, baseline=baseline)
    return Engine(index, rates=rates)


async def run_worker(
    settings: Settings,
    options: ServeOptions,
    index: RuntimeIndex,
    origin: str,
    metrics: ServerMetrics | None = None,
) -> int:
    """One serving process: returns 0 after a graceful shutdown."""
    cfg = settings.server
    engine_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
    report = DriftReport() if options.report is not None else None
    pipeline = Pipeline(
        build_engine(settings, index, options.baseline),
        all_attributes=settings.privacy.scan_all_attributes,
        sink=ReportSink(report) if report is not None else None,
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(engine_thread, _warm_up, index)
    holder = IndexHolder(index, origin)
    # Swaps go through the engine thread, between batches.
    holder.subscribe(lambda new: engine_thread.submit(pipeline.set_index, new).result())
    cache = _cache(settings)
    watcher = IndexWatcher(cache, holder, settings.spec.poll_interval_s) if cache else None
    server = grpc.aio.server(
        maximum_concurrent_rpcs=cfg.max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", cfg.max_request_bytes),
            # Several workers share the port; a lone one must not share it by accident.
            ("grpc.so_reuseport", 1 if cfg.workers > 1 else 0),
        ],
    )
    servicer = CorrelationServicer(
        pipeline, engine_thread, max_request_bytes=cfg.max_request_bytes, metrics=metrics
    )
    add_correlation(server, servicer)
    health = await add_health(server)
    try:
        port = server.add_insecure_port(cfg.listen)
    except RuntimeError as exc:
        port = 0
        log.debug("bind failed: %s", exc)
    if port == 0:
        raise ConfigError(f"cannot listen on {cfg.listen} (address in use or not local?)")
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    if watcher is not None:
        watcher.start()
    log.info(
        "serving spec version %s on %s (pid %d)", index.spec_hash[:12], cfg.listen, os.getpid()
    )
    try:
        await stop.wait()
        log.info("shutting down: %.1fs for in-flight requests", cfg.grace_period_s)
        await health.enter_graceful_shutdown()
        await server.stop(cfg.grace_period_s)
    finally:
        if watcher is not None:
            watcher.stop()
        if cache is not None:
            cache.close()
        if report is not None and options.report is not None:
            engine_thread.submit(_write_report, report, pipeline, options.report).result()
        engine_thread.shutdown(wait=True)
    log.info("stopped")
    return 0


def _write_report(report: DriftReport, pipeline: Pipeline, path: Path) -> None:
    """Finish the report with the rate windows' findings, write it, log its summary."""
    report.add_rates(pipeline.engine)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    log.info("drift report written to %s\n%s", path, "\n".join(report.summary_lines()))


def _warm_up(index: RuntimeIndex) -> None:
    """Load the numba kernels before serving (a cold first batch takes ~0.5 s, beyond the
    processor's timeout). The probe has what real batches have: a server span of a bound
    operation and an unknown one (heuristics), a child span (parent join), a log record in
    the span (log join) and a metric point with an exemplar. A throwaway engine, so no rate
    window sees the probe."""
    probe = BatchBuilder(index.attribute_keys)
    code = probe.pool.code
    names = [op_id.rsplit(":", 1)[-1] for op_id in list(index.operations)[:1]]
    span = {"signal": Signal.SPAN, "trace_lo": 1, "kind": SpanKind.SERVER, "start_ns": 1,
            "end_ns": 2_000_000}  # fmt: skip
    for i, name in enumerate([*names, "sidecar warm-up probe"], start=1):
        probe.add({**span, "span_id": i, "name": code(name)}, {})
    probe.add({**span, "span_id": 9, "parent_id": 1, "kind": SpanKind.CLIENT,
               "name": code("warm-up child")}, {})  # fmt: skip
    probe.add({"signal": Signal.LOG, "trace_lo": 1, "span_id": 1, "start_ns": 1,
               "body": code("warm-up log")}, {})  # fmt: skip
    probe.add({"signal": Signal.METRIC, "start_ns": 1, "name": code("warm.up"),
               "ex_trace_lo": 1, "ex_span_id": 1}, {}, value=1.0)  # fmt: skip
    engine = Engine(index)
    for _ in range(2):
        engine.process(probe.build())


def _run_workers(
    settings: Settings, options: ServeOptions, index: RuntimeIndex, origin: str
) -> int:
    """Start ``workers`` serving processes and wait; signals are passed on to them."""
    ctx = multiprocessing.get_context("spawn")  # fork would copy the parent's threads
    workers = [
        ctx.Process(
            target=_worker_main, args=(settings, options, index, origin), name=f"sidecar-worker-{i}"
        )
        for i in range(settings.server.workers)
    ]
    stopping = threading.Event()

    def forward(_signum: int, _frame: object) -> None:
        stopping.set()
        for w in workers:
            if w.pid is not None and w.exitcode is None:
                os.kill(w.pid, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    for w in workers:
        w.start()
    log.info(
        "%d workers on %s: %s",
        len(workers),
        settings.server.listen,
        ", ".join(str(w.pid) for w in workers),
    )
    pending = list(workers)
    while pending:
        multiprocessing.connection.wait([w.sentinel for w in pending])
        done = [w for w in pending if w.exitcode is not None]
        pending = [w for w in pending if w.exitcode is None]
        if not stopping.is_set() and any(w.exitcode for w in done):
            log.error("a worker exited with %s; stopping the others", done[0].exitcode)
            forward(signal.SIGTERM, None)
    for w in workers:
        w.join()
    return 0 if all(w.exitcode == 0 for w in workers) else 1


def _worker_main(
    settings: Settings, options: ServeOptions, index: RuntimeIndex, origin: str
) -> None:
    """Entry point of a worker process."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s",
    )
    raise SystemExit(asyncio.run(run_worker(settings, options, index, origin)))
