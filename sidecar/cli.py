"""Command line: ``python -m sidecar spec validate|show|publish|watch``, ``replay``, ``serve``.

Exit codes: 0 success; 2 invalid spec or usage error; 1 an external service failed (Redis).
This is the composition root: settings are built here and passed down.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from sidecar import __version__
from sidecar.adapters.otlp_exporter import OtlpGrpcExporter
from sidecar.adapters.redis_index import IndexWatcher, RedisIndexCache
from sidecar.compose import rate_tracker
from sidecar.decode.otlp_json import iter_documents, iter_items
from sidecar.decode.otlp_message import to_message
from sidecar.decode.problems import OtlpDecodeError
from sidecar.engine import Engine
from sidecar.errors import BehaviorError, ConfigError, SpecIndexError, SpecInvalid
from sidecar.replay import SIGNAL_ORDER, Progress, replay
from sidecar.report import DriftReport
from sidecar.serve import ServeOptions, serve
from sidecar.settings import ServerSettings, Settings
from sidecar.spec.model import Problem
from sidecar.spec.show import render_counts, render_node, render_overview
from sidecar.spec.validate import count_by_kind, suggest
from sidecar.spec_index.compile import CompiledSpec, compile_spec_tree
from sidecar.spec_index.holder import IndexHolder
from sidecar.spec_index.startup import index_from_disk, initial_index

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m sidecar",
        description="Runtime behavior correlation sidecar.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING, ERROR")
    top = parser.add_subparsers(dest="command", required=True)
    spec = top.add_parser("spec", help="load, validate, show and publish a spec tree")
    sub = spec.add_subparsers(dest="spec_command", required=True)

    v = sub.add_parser("validate", help="validate a spec tree; exit 2 listing every problem")
    v.add_argument("dir", type=Path)
    v.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also list ignored files and notes (skipped SEA syntax)",
    )
    v.add_argument("--json", action="store_true", help="machine-readable output")

    s = sub.add_parser("show", help="show a node and its chain, or an overview of the tree")
    s.add_argument("dir", type=Path)
    s.add_argument("node", nargs="?", help="node id, e.g. checkout:flow:PlaceOrder or ADR-002")

    p = sub.add_parser("publish", help="compile and publish the index to Redis")
    p.add_argument("dir", type=Path)
    p.add_argument("--redis", dest="redis_url", help="redis://host:port/db (or settings)")
    p.add_argument("--prefix", default=None, help="key prefix (default behavior:spec)")

    w = sub.add_parser("watch", help="follow the published index and print every reload")
    w.add_argument("--redis", dest="redis_url", help="redis://host:port/db (or settings)")
    w.add_argument("--specs", type=Path, default=None, help="fallback spec tree")
    w.add_argument("--prefix", default=None)
    w.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    r = top.add_parser("replay", help="annotate OTLP JSON files offline and report drift")
    r.add_argument("--specs", type=Path, required=True, help="spec root")
    r.add_argument(
        "--input",
        type=Path,
        action="append",
        required=True,
        dest="inputs",
        help="OTLP JSON file (repeatable); whole document or one per line",
    )
    r.add_argument("--output", type=Path, required=True, help="annotated OTLP JSON (JSONL)")
    r.add_argument("--report", type=Path, default=None, help="JSON drift report")
    r.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    r.add_argument(
        "--batch-rows",
        type=int,
        default=500_000,
        help="items gathered per engine batch (whole traces are checked together)",
    )
    r.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="learned baseline profile to compare windows with (baseline_shift)",
    )
    r.add_argument(
        "--learn-baseline",
        type=Path,
        default=None,
        metavar="OUT",
        help="write a baseline profile learned from these inputs",
    )
    r.add_argument(
        "--window-s",
        type=float,
        default=None,
        help="sliding window in seconds (default: settings, 300)",
    )
    r.add_argument(
        "--bucket-s",
        type=float,
        default=None,
        help="window step in seconds (default: settings, 60)",
    )
    _add_serve(top)
    snd = top.add_parser("send", help="send OTLP JSON files to a collector over OTLP/gRPC")
    snd.add_argument("--endpoint", required=True, metavar="HOST:PORT", help="OTLP/gRPC receiver")
    snd.add_argument(
        "--input",
        type=Path,
        action="append",
        required=True,
        dest="inputs",
        help="OTLP JSON file (whole document or one per line); repeatable",
    )
    snd.add_argument(
        "--max-request-bytes",
        type=int,
        default=1 << 20,
        help="split exports above this size (receivers refuse > 4 MiB by default)",
    )
    snd.add_argument(
        "--max-request-items",
        type=int,
        default=512,
        metavar="N",
        help="items per export request at most, as an SDK's batch exporter sends"
        " (default 512, the OpenTelemetry SDKs' export batch size; 0: no limit)",
    )
    snd.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="ITEMS_PER_S",
        help="pace the export like live traffic (default: as fast as accepted)",
    )
    return parser


def _add_serve(top: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``serve``: flags over the ``server`` settings section (BEHAVIOR_SERVER__*)."""
    sv = top.add_parser("serve", help="the gRPC sidecar the collector's processor calls")
    sv.add_argument(
        "--specs",
        type=Path,
        default=None,
        help="spec root (the index without Redis; the fallback with it)",
    )
    sv.add_argument(
        "--listen",
        default=None,
        metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1:50051)",
    )
    sv.add_argument(
        "--redis-url",
        dest="redis_url",
        default=None,
        help="redis://host:port/db: shared index, hot reload on publish",
    )
    sv.add_argument(
        "--redis-prefix", dest="prefix", default=None, help="key prefix (default behavior:spec)"
    )
    sv.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="learned baseline profile (replay --learn-baseline) for baseline_shift",
    )
    sv.add_argument(
        "--report",
        type=Path,
        default=None,
        help="write the drift report (JSON) here at shutdown and log its summary (--workers 1)",
    )
    sv.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes sharing the port via SO_REUSEPORT, e.g. one per core",
    )
    sv.add_argument(
        "--max-request-bytes",
        type=int,
        default=None,
        help="largest request accepted (default 16 MiB)",
    )
    sv.add_argument(
        "--grace-period-s",
        type=float,
        default=None,
        help="time in-flight requests get after SIGTERM/SIGINT (default 10)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings()
    logging.basicConfig(
        level=(args.log_level or settings.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if getattr(args, "redis_url", None):
        settings.spec.redis_url = args.redis_url
    if getattr(args, "prefix", None):
        settings.spec.redis_prefix = args.prefix
    try:
        if args.command == "replay":
            return cmd_replay(args, settings)
        if args.command == "serve":
            return cmd_serve(args, settings)
        if args.command == "send":
            return cmd_send(args)
        spec_dir = getattr(args, "dir", None)
        if spec_dir is not None and not spec_dir.is_dir():
            raise ConfigError(f"{spec_dir}: not a directory (expected a spec root)")
        if args.spec_command == "validate":
            return cmd_validate(args.dir, verbose=args.verbose, as_json=args.json)
        if args.spec_command == "show":
            return cmd_show(args.dir, args.node)
        if args.spec_command == "publish":
            return cmd_publish(args.dir, settings)
        return cmd_watch(settings, args.specs, args.duration)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except SpecInvalid as exc:
        _print_problems(exc.problems, sys.stderr)
        return EXIT_INVALID
    except BehaviorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _print_problems(problems: Sequence[Problem], out: TextIO | None = None) -> None:
    for problem in problems:
        print(problem, file=out or sys.stdout)
    files = {p.path for p in problems}
    print(f"{len(problems)} problem(s) in {len(files)} file(s)", file=out or sys.stdout)


def cmd_validate(root: Path, *, verbose: bool = False, as_json: bool = False) -> int:
    """``spec validate DIR``: counts on success, every problem and exit 2 otherwise."""
    compiled = compile_spec_tree(root)
    graph = compiled.loaded.graph
    if as_json:
        nodes, edges = count_by_kind(graph)
        print(json.dumps({
            "valid": compiled.ok, "spec_hash": compiled.loaded.content_hash,
            "files": len(compiled.loaded.files), "nodes": nodes, "edges": edges,
            "problems": [str(p) for p in compiled.problems],
        }, indent=2))  # fmt: skip
        return EXIT_OK if compiled.ok else EXIT_INVALID
    if verbose:
        for rel in compiled.loaded.ignored:
            print(f"{rel}: ignored (not a spec file)")
        for note in sorted(graph.notes):
            print(f"{note} [note]")
    if not compiled.ok:
        _print_problems(compiled.problems)
        return EXIT_INVALID
    _print_summary(root, compiled)
    return EXIT_OK


def _print_summary(root: Path, compiled: CompiledSpec) -> None:
    loaded = compiled.loaded
    print(f"{root}: valid, spec version {loaded.content_hash[:12]}")
    print(
        f"files: {len(loaded.files)} read, {len(loaded.ignored)} ignored, "
        f"{len(loaded.graph.notes)} note(s)"
    )
    for line in render_counts(loaded.graph):
        print(line)
    if compiled.index is not None:
        counts = compiled.index.counts()
        print("index: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def cmd_show(root: Path, node_id: str | None) -> int:
    """``spec show DIR [NODE]``."""
    compiled = compile_spec_tree(root)
    graph = compiled.loaded.graph
    if compiled.problems:
        print(
            f"warning: the spec has {len(compiled.problems)} problem(s); "
            "run 'spec validate' to list them",
            file=sys.stderr,
        )
    if node_id is None:
        lines = render_overview(graph)
    elif node_id in graph.nodes:
        lines = render_node(graph, node_id)
    else:
        hint = suggest(node_id, graph.nodes)
        tail = f" (did you mean '{hint}'?)" if hint else ""
        print(f"error: no spec node '{node_id}' in {root}{tail}", file=sys.stderr)
        return EXIT_INVALID
    print("\n".join(lines))
    return EXIT_OK


def _cache(settings: Settings) -> RedisIndexCache:
    if not settings.spec.redis_url:
        raise ConfigError("no Redis URL: pass --redis or set BEHAVIOR_SPEC__REDIS_URL")
    cache = RedisIndexCache.from_url(settings.spec.redis_url, settings.spec.redis_prefix)
    cache.keep = settings.spec.keep_versions
    return cache


def cmd_publish(root: Path, settings: Settings) -> int:
    """``spec publish DIR --redis URL``: refuse an invalid tree, else store and move current."""
    compiled = compile_spec_tree(root)
    if compiled.index is None:
        raise SpecInvalid(compiled.problems)
    cache = _cache(settings)
    try:
        moved = cache.publish(compiled.index)
    finally:
        cache.close()
    h = compiled.index.spec_hash
    state = "now current" if moved else "already current"
    print(f"published spec version {h[:12]} ({state}) under '{settings.spec.redis_prefix}'")
    print("index: " + ", ".join(f"{k} {v}" for k, v in compiled.index.counts().items()))
    return EXIT_OK


def cmd_watch(settings: Settings, specs: Path | None, duration: float | None) -> int:
    """``spec watch``: serve-like loop that follows the pointer and prints each reload."""
    cache = _cache(settings)
    try:
        index, origin = initial_index(cache, specs)
    except SpecIndexError:
        cache.close()
        raise
    holder = IndexHolder(index, origin)
    holder.subscribe(lambda new: print(f"reloaded: spec version {new.spec_hash[:12]}", flush=True))
    print(f"serving spec version {index.spec_hash[:12]} from {origin}", flush=True)
    watcher = IndexWatcher(cache, holder, settings.spec.poll_interval_s)
    watcher.start()
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
        cache.close()
    return EXIT_OK


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """``replay``: annotated output, a JSON report, a summary table; 1 if any input was bad."""
    if not args.specs.is_dir():
        raise ConfigError(f"{args.specs}: not a directory (expected a spec root)")
    rates = rate_tracker(settings.drift, baseline=args.baseline, learn=bool(args.learn_baseline),
                         window_s=args.window_s, bucket_s=args.bucket_s)  # fmt: skip
    engine = Engine(index_from_disk(args.specs), rates=rates)
    report = DriftReport()
    total = sum(p.stat().st_size for p in args.inputs if p.is_file())
    progress = Progress(total, enabled=args.progress)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w") as out:
        stats = replay(engine, args.inputs, out, report, batch_rows=args.batch_rows,
                       progress=progress)  # fmt: skip
    report.add_rates(engine)
    if rates.learner is not None:
        rates.learner.profile(rates.series_ids).save(args.learn_baseline)
        print(f"baseline of {len(rates.series_ids)} series written to {args.learn_baseline}")
    if args.report is not None:
        args.report.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    print("\n".join(report.summary_lines()))
    print(f"\nwrote {stats.documents} documents ({stats.items} items) to {args.output}"
          + (f", report to {args.report}" if args.report else ""))  # fmt: skip
    return EXIT_FAILED if stats.errors else EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """``serve``: run the gRPC sidecar until SIGTERM/SIGINT (exit 2 on invalid specs/usage)."""
    flags = {
        "listen": args.listen,
        "workers": args.workers,
        "max_request_bytes": args.max_request_bytes,
        "grace_period_s": args.grace_period_s,
    }
    try:
        settings.server = ServerSettings.model_validate(
            settings.server.model_dump() | {k: v for k, v in flags.items() if v is not None}
        )
    except ValidationError as exc:
        flag = "--{}".format
        problems = [f"{flag(str(e['loc'][0]).replace('_', '-'))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("; ".join(problems)) from exc
    if args.specs is None and settings.spec.root is None and not settings.spec.redis_url:
        raise ConfigError("give --specs DIR, or --redis-url with a published index")
    return serve(
        settings, ServeOptions(specs=args.specs, baseline=args.baseline, report=args.report)
    )


def cmd_send(args: argparse.Namespace) -> int:
    """``send``: spans first, then logs, then metrics (so logs find their spans); 1 on errors."""
    errors: list[str] = []
    sent = dict.fromkeys(SIGNAL_ORDER, 0)
    exporter = OtlpGrpcExporter(
        args.endpoint,
        max_request_bytes=args.max_request_bytes,
        max_request_items=args.max_request_items or None,
        rate=args.rate,
    )
    try:
        for signal in SIGNAL_ORDER:
            for path in args.inputs:
                for doc in iter_documents(path, on_error=lambda exc: errors.append(str(exc))):
                    if doc.signal != signal:
                        continue
                    try:
                        exporter.send(to_message(doc.doc, str(path), doc.line))
                    except OtlpDecodeError as exc:
                        errors.append(str(exc))
                        continue
                    sent[signal] += sum(1 for _ in iter_items(doc.doc))
    finally:
        exporter.close()
    # Each file is read once per signal; report its problems once.
    for e in dict.fromkeys(errors):
        print(e, file=sys.stderr)
    print("sent " + ", ".join(f"{n} {s.name.lower()}s" for s, n in sent.items())
          + f" to {args.endpoint}")  # fmt: skip
    return EXIT_FAILED if errors else EXIT_OK
