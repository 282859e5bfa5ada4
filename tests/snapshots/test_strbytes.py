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
