"""Benchmark: heuristic-correlation kernels (numba) against their plain-Python references.

Synthetic but realistic names: 1,000 spec operations (verb + domain nouns, with an alias and a
bound rpc name) and 2,000 renamed query shapes (snake_case, REST routes, ``...Handler``
suffixes, other packages). Both sides run on the same inputs in one run; the references are
slow, so they score the first ``BENCH_REF_ROWS`` query rows and pairs/s is compared. JIT
compile time is reported apart (fresh, uncached compiles of the same kernels), as is the
first call of this process (a cache load when ``__pycache__`` holds the kernels).

Environment: BENCH_QUERIES (2000), BENCH_CANDIDATES (1000), BENCH_REF_ROWS (200),
BENCH_REPEAT (5).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from machine_info import machine

from sidecar.correlate import kernels
from sidecar.correlate import kernels_reference as reference
from sidecar.correlate.features import CsrMatrix, NameFeatures, NameSpace

# fmt: off
VERBS = [
    "get", "list", "create", "update", "delete", "search", "add", "remove", "place", "ship",
    "send", "charge", "convert", "cancel", "refund", "validate", "reserve", "publish", "sync",
    "export",
]
NOUNS = [
    "order", "cart", "item", "product", "catalog", "currency", "payment", "invoice", "customer",
    "account", "user", "session", "shipment", "quote", "address", "coupon", "discount", "review",
    "rating", "inventory", "warehouse", "stock", "supplier", "price", "tax", "receipt",
    "notification", "email", "message", "subscription", "plan", "report", "ad", "campaign",
    "recommendation", "wishlist", "category", "brand", "store", "region", "delivery", "courier",
    "ticket", "balance", "ledger", "transfer", "card", "wallet", "loyalty", "point", "voucher",
    "gift", "return", "label", "package", "route", "slot", "booking", "table", "menu", "recipe",
    "ingredient", "kitchen", "driver", "vehicle", "fleet", "trip", "fare", "zone", "badge",
]
# fmt: on
SERVICES = [n.capitalize() for n in NOUNS[:40]]


def operations(n: int, rng: np.random.Generator) -> list[tuple[list[str], list[str]]]:
    """``n`` distinct operations: (words, document texts: name, alias, bound rpc name)."""
    seen: set[tuple[str, ...]] = set()
    out: list[tuple[list[str], list[str]]] = []
    while len(out) < n:
        words = [str(rng.choice(VERBS)), *map(str, rng.choice(NOUNS, rng.integers(1, 3)))]
        if tuple(words) in seen:
            continue
        seen.add(tuple(words))
        name = "".join(w.capitalize() for w in words)
        service = str(rng.choice(SERVICES))
        out.append((words, [name, " ".join(words), f"shop.{service}Service/{name}"]))
    return out


def renamed(words: list[str], rng: np.random.Generator) -> str:
    """One realistic renaming of an operation's words."""
    verb, nouns = words[0], words[1:]
    camel = verb + "".join(w.capitalize() for w in nouns)
    styles = [
        "_".join(words),
        "".join(w.capitalize() for w in words) + "Handler",
        f"{nouns[0]}.{camel}",
        f"POST /api/v2/{'/'.join(n + 's' for n in nouns)}/{verb}",
        f"grpc.other.{nouns[0].capitalize()}Service/{camel[0].upper()}{camel[1:]}Async",
    ]
    return styles[int(rng.integers(len(styles)))]


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall-clock seconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def lists(m: CsrMatrix, rows: int | None = None) -> reference.Csr:
    """A CSR matrix (or its first rows) as Python lists, for the references."""
    end = m.n_rows if rows is None else min(rows, m.n_rows)
    nnz = int(m.indptr[end])
    return m.indptr[: end + 1].tolist(), m.indices[:nnz].tolist(), m.data[:nnz].tolist()


def compile_seconds() -> dict[str, float]:
    """Fresh (uncached) compile + first call of each kernel on tiny inputs."""
    csr = (np.array([0, 1], np.int64), np.array([0], np.int32), np.array([1.0], np.float32))
    one = np.ones((1, 1), np.float32)
    groups = (np.zeros(1, np.int32), np.zeros(1, np.int32))
    calls: dict[str, tuple[Callable[..., None], tuple[object, ...]]] = {
        "cosine_csr": (kernels._cosine_kernel, (one.copy(), csr, csr)),
        "top2": (
            kernels._top2_kernel,
            (one, np.zeros(1, np.int32), np.zeros(1, np.float32), np.zeros(1, np.float32)),
        ),
        "combine": (kernels._combine_kernel, (one.copy(), one[np.newaxis], one[0], groups, 0.5)),
    }
    out = {}
    for name, (kernel, args) in calls.items():
        # py_func: the plain function behind the numba dispatcher (not in the typed signature).
        fresh = numba.njit(cache=False, nogil=True)(kernel.py_func)  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        fresh(*args)
        out[name] = time.perf_counter() - t0
    return out


def main() -> int:
    """Run the benchmark and print a table with ratios."""
    n_q = int(os.environ.get("BENCH_QUERIES", "2000"))
    n_c = int(os.environ.get("BENCH_CANDIDATES", "1000"))
    ref_rows = min(n_q, int(os.environ.get("BENCH_REF_ROWS", "200")))
    repeat = int(os.environ.get("BENCH_REPEAT", "5"))
    rng = np.random.default_rng(20261125)
    ops = operations(n_c, rng)
    picks = rng.integers(n_c, size=n_q)
    queries = [renamed(ops[int(i)][0], rng) for i in picks]

    t0 = time.perf_counter()
    space, cand = NameSpace.fit([doc for _, doc in ops])
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    qf = space.transform(queries)
    t_transform = time.perf_counter() - t0

    # Warm-up: the first call of this process (cache load, or compile if there is no cache).
    t0 = time.perf_counter()
    stack = np.empty((2, n_q, n_c), np.float32)
    kernels.cosine_csr(qf.tokens.arrays, cand.tokens.arrays, out=stack[0])
    kernels.cosine_csr(qf.trigrams.arrays, cand.trigrams.arrays, out=stack[1])
    scores = kernels.combine(stack, [0.5, 0.5])
    best_idx, best, second = kernels.top2(scores)
    t_first = time.perf_counter() - t0
    compiled = compile_seconds()

    ref_q = {kind: lists(getattr(qf, kind), ref_rows) for kind in ("tokens", "trigrams")}
    ref_c = {kind: lists(getattr(cand, kind)) for kind in ("tokens", "trigrams")}
    ref_stack = [stack[0, :ref_rows].tolist(), stack[1, :ref_rows].tolist()]
    ref_scores = scores[:ref_rows].tolist()
    no_group = [-1] * ref_rows
    c_group = [0] * n_c

    rows: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        (
            "cosine_csr tokens",
            lambda: kernels.cosine_csr(qf.tokens.arrays, cand.tokens.arrays, out=stack[0]),
            lambda: reference.cosine_csr(ref_q["tokens"], ref_c["tokens"]),
        ),
        (
            "cosine_csr trigrams",
            lambda: kernels.cosine_csr(qf.trigrams.arrays, cand.trigrams.arrays, out=stack[1]),
            lambda: reference.cosine_csr(ref_q["trigrams"], ref_c["trigrams"]),
        ),
        (
            "combine k=2",
            lambda: kernels.combine(stack, [0.5, 0.5], out=scores),
            lambda: reference.combine(ref_stack, [0.5, 0.5], no_group, c_group, 0.0),
        ),
        (
            "top2",
            lambda: kernels.top2(scores),
            lambda: reference.top2(ref_scores),
        ),
    ]
    pairs, ref_pairs = n_q * n_c, ref_rows * n_c
    print(f"machine: {machine()}; numba {numba.__version__}, numpy {np.__version__}")
    print(
        f"inputs: {n_q} query shapes x {n_c} candidates = {pairs:,} pairs; "
        f"nnz per row tokens q {qf.tokens.indices.size / n_q:.1f} c "
        f"{cand.tokens.indices.size / n_c:.1f}, trigrams q {qf.trigrams.indices.size / n_q:.1f} "
        f"c {cand.trigrams.indices.size / n_c:.1f}; references on the first {ref_rows} rows"
    )
    print(
        f"features (Python): fit {n_c} candidates {t_fit * 1e3:.0f} ms, "
        f"transform {n_q} queries {t_transform * 1e3:.0f} ms "
        f"({n_q / t_transform:,.0f} shapes/s)"
    )
    print(
        "JIT compile, fresh (uncached): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in compiled.items())
        + f"; total {sum(compiled.values()):.2f} s. "
        f"First call in this process (all kernels, cache load or compile): {t_first:.2f} s"
    )
    header = f"{'kernel':<22}{'numba ms':>10}{'numba pairs/s':>15}{'ref ms':>10}"
    print(header + f"{'ref pairs/s':>14}{'speed-up':>10}")
    total = 0.0
    for name, fast, slow in rows:
        t_fast = best_of(fast, repeat)
        t_slow = best_of(slow, 1)
        total += t_fast
        rate, ref_rate = pairs / t_fast, ref_pairs / t_slow
        print(
            f"{name:<22}{t_fast * 1e3:>10.2f}{rate:>15,.0f}{t_slow * 1e3:>10.1f}"
            f"{ref_rate:>14,.0f}{rate / ref_rate:>9.0f}x"
        )
    print(f"{'all four (numba)':<22}{total * 1e3:>10.2f}{pairs / total:>15,.0f}")

    threads = min(2, os.cpu_count() or 1)
    if threads > 1:
        chunks = np.array_split(np.arange(n_q), threads * 4)
        t_thread = best_of(lambda: score_threaded(qf, cand, chunks, threads), repeat)
        print(
            f"cosine x2 + combine + top2 in {len(chunks)} query chunks on {threads} threads "
            f"(nogil): {t_thread * 1e3:.2f} ms, {pairs / t_thread:,.0f} pairs/s"
        )
    hits = sum(ops[int(i)][1][0] == ops[int(b)][1][0] for i, b in zip(picks, best_idx, strict=True))
    margin = float(np.median(best - second))
    print(f"sanity: top-1 = the renamed operation for {hits / n_q:.1%}, median margin {margin:.3f}")
    return 0


def score_threaded(
    qf: NameFeatures, cand: NameFeatures, chunks: list[np.ndarray], threads: int
) -> None:
    """Score query chunks on a thread pool (the kernels release the GIL)."""

    def one(rows: np.ndarray) -> None:
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        stack = np.empty((2, hi - lo, cand.tokens.n_rows), np.float32)
        for k, kind in enumerate(("tokens", "trigrams")):
            q: CsrMatrix = getattr(qf, kind)
            a, b = int(q.indptr[lo]), int(q.indptr[hi])
            part = (q.indptr[lo : hi + 1] - a, q.indices[a:b], q.data[a:b])
            kernels.cosine_csr(part, getattr(cand, kind).arrays, out=stack[k])
        kernels.top2(kernels.combine(stack, [0.5, 0.5], out=stack[0]))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, chunks))


if __name__ == "__main__":
    sys.exit(main())
