"""`strbytes`' ragged ranges, against their definition written out (the span
checks of phones, cards and IBANs all walk them)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.snapshots.strbytes import owners, spread

_SIZES = st.lists(st.integers(0, 6), max_size=40)


@settings(max_examples=300, deadline=None)
@given(_SIZES, st.data())
def test_spread_is_each_range_one_after_another(sizes: list[int], data: st.DataObject) -> None:
    starts = data.draw(st.lists(st.integers(-50, 10**12), min_size=len(sizes), max_size=len(sizes)))
    size, start = np.array(sizes, dtype=np.int64), np.array(starts, dtype=np.int64)
    owner, value = spread(start, size)
    want = [(i, s + j) for i, (s, n) in enumerate(zip(starts, sizes)) for j in range(n)]
    assert list(zip(owner.tolist(), value.tolist())) == want
    assert owners(size).tolist() == [i for i, _ in want]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet="01x ９é-", max_size=12)), min_size=1, max_size=12), st.integers(0, 3))
def test_digit_groups_are_the_runs_of_ascii_digits(texts: list[str | None], skip: int) -> None:
    """`digit_groups` over `view`'s bytes (of a slice of an array too, nulls
    and empty strings among them): each string's runs of ASCII digits, in
    order, as byte ranges."""
    import re

    import pyarrow as pa

    from consentry.snapshots.strbytes import digit_groups, view

    arr = pa.array(texts, pa.string()).slice(min(skip, len(texts)))
    offsets, data = view(arr)
    g = digit_groups(offsets, data)
    got = [(int(r), bytes(data[s:e]).decode()) for r, s, e in zip(g.row, g.start, g.end)]
    want = [(r, m.group()) for r, t in enumerate(arr.to_pylist()) for m in re.finditer("[0-9]+", t or "")]
    assert got == want
    assert g.count.tolist() == [sum(1 for r, _ in want if r == i) for i in range(len(arr))]
    assert g.first.tolist() == [sum(1 for r, _ in want if r < i) for i in range(len(arr))]
