"""Row kernels (hash join, grouping, key mixing, inheritance) against their plain-Python
references."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.correlate import row_kernels
from sidecar.correlate import row_kernels_reference as reference


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 40), max_size=60),
    st.lists(st.integers(0, 45), max_size=60),
)
def test_join_rows_matches_reference(keys: list[int], probes: list[int]) -> None:
    got = row_kernels.join_rows(np.array(keys, np.uint64), np.array(probes, np.uint64))
    assert got.tolist() == reference.join_rows(keys, probes)


def test_join_rows_large_random_keys() -> None:
    rng = np.random.default_rng(3)
    keys = rng.integers(1, 2**63, 50_000, dtype=np.uint64)
    probes = np.concatenate([keys[::7], rng.integers(1, 2**63, 1000, dtype=np.uint64)])
    got = row_kernels.join_rows(keys, probes)
    assert got.tolist() == reference.join_rows(keys.tolist(), probes.tolist())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 12), max_size=80))
def test_unique_rows_matches_reference(keys: list[int]) -> None:
    first, inverse = row_kernels.unique_rows(np.array(keys, np.uint64))
    assert (first.tolist(), inverse.tolist()) == reference.unique_rows(keys)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(-5, 5), max_size=80))
def test_unique_rows_orders_signed_keys(keys: list[int]) -> None:
    first, inverse = row_kernels.unique_rows(np.array(keys, np.int64))
    assert (first.tolist(), inverse.tolist()) == reference.unique_rows(keys)


def test_unique_rows_is_numpy_unique() -> None:
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 500, 20_000).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    got_first, got_inverse = row_kernels.unique_rows(keys)
    assert np.array_equal(got_first, first) and np.array_equal(got_inverse, inverse)


def test_unique_rows_many_distinct_keys() -> None:
    # Tens of thousands of groups: the table doubles many times while rows are grouped.
    rng = np.random.default_rng(11)
    keys = rng.integers(0, 2**64 - 1, 30_000, dtype=np.uint64, endpoint=True)
    keys = np.concatenate([keys, keys[::3], rng.integers(0, 40, 5000).astype(np.uint64)])
    first, inverse = row_kernels.unique_rows(keys)
    assert (first.tolist(), inverse.tolist()) == reference.unique_rows(keys.tolist())


def test_unique_rows_rejects_other_keys() -> None:
    with pytest.raises(ValueError):
        row_kernels.unique_rows(np.zeros(3, np.int32))
    with pytest.raises(ValueError):
        row_kernels.unique_rows(np.zeros((2, 2), np.uint64))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**64 - 1),
    st.integers(0, 30).flatmap(
        lambda n: st.lists(
            st.lists(st.integers(0, 2**31 - 1), min_size=n, max_size=n), max_size=5
        ).map(lambda cols: (n, cols))
    ),
)
def test_mix_columns_matches_reference(seed: int, case: tuple[int, list[list[int]]]) -> None:
    n, columns = case
    got = row_kernels.mix_columns(seed, [np.array(c, np.int32) for c in columns], n)
    assert got.tolist() == reference.mix_columns(seed, columns, n)


def test_mix_columns_takes_unsigned_64_bit_columns() -> None:
    rng = np.random.default_rng(9)
    columns = [rng.integers(0, 2**64 - 1, 100, dtype=np.uint64) for _ in range(3)]
    got = row_kernels.mix_columns(7, columns, 100)
    assert got.tolist() == reference.mix_columns(7, [c.tolist() for c in columns], 100)
    with pytest.raises(ValueError):
        row_kernels.mix_columns(7, [np.zeros(3, np.int32)], 4)


@st.composite
def inherit_case(
    draw: st.DrawFn,
) -> tuple[list[int], list[bool], list[int], list[int], list[float]]:
    n = draw(st.integers(1, 30))
    parents = draw(st.lists(st.integers(-1, n - 1), min_size=n, max_size=n))
    node = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    context = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    conf = [float(np.float32(c)) for c in draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))]
    wants = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    todo = [w and node[r] == 0 and parents[r] >= 0 for r, w in enumerate(wants)]
    return parents, todo, node, context, conf


@settings(max_examples=300, deadline=None)
@given(inherit_case(), st.integers(0, 4))
def test_inherit_nodes_matches_reference(
    case: tuple[list[int], list[bool], list[int], list[int], list[float]], depth: int
) -> None:
    parents, todo, node, context, conf = case
    cols = (np.array(node, np.int32), np.array(context, np.int32), np.array(conf, np.float32))
    done = row_kernels.inherit_nodes(np.array(parents, np.int64), np.array(todo, np.bool_), cols,
                                 factor=0.8, max_depth=depth)  # fmt: skip
    expected = reference.inherit_nodes(parents, todo, (node, context, conf), factor=0.8,
                                       max_depth=depth)  # fmt: skip
    assert done.tolist() == expected
    assert cols[0].tolist() == node and cols[1].tolist() == context
    assert cols[2].tolist() == conf


def test_inherit_nodes_rejects_rows_without_parent() -> None:
    cols = (np.zeros(2, np.int32), np.zeros(2, np.int32), np.zeros(2, np.float32))
    with pytest.raises(ValueError):
        row_kernels.inherit_nodes(np.array([-1, 0]), np.array([True, False]), cols, factor=0.8,
                              max_depth=3)  # fmt: skip
