"""Strings as their UTF-8 bytes in NumPy, for the checks that cut runs of
digits into spans (`phones.py`, `cards.py`).

Arrow's kernels slice every string of an array at the same place, and SQL
needs a list per run (DuckDB copied those lists into every row an unnest
made). Here an array of runs is one byte buffer and its offsets: a group of
digits is a pair of byte positions, and a span of groups is cut out by
gathering its bytes. Digits, separators and letters that matter here are
ASCII; any other character is only ever carried whole between two of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

__all__ = ["Groups", "digit_groups", "owners", "row_of", "slices", "spread", "view"]


def view(arr: pa.Array, pad: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """`arr`'s offsets (int64, one more than its rows; a null row is empty)
    and its bytes, with `pad` zero bytes past the end so that a look that
    many bytes ahead stays inside."""
    arr = arr.cast(pa.large_string())
    if len(arr) == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(pad, dtype=np.uint8)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[: offsets[-1]] if arr.buffers()[2] else np.zeros(0, np.uint8)
    return offsets, np.r_[data, np.zeros(pad, np.uint8)]


def owners(size: np.ndarray) -> np.ndarray:
    """Each i, `size[i]` times, one after another: the run of each group, the
    owner of each item of a ragged range."""
    return np.repeat(np.arange(len(size)), size)


def row_of(offsets: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The string each byte position `at` lies in, by a binary search over
    `view`'s offsets: a row number for every byte (`owners`) cost a repeat
    over all of them, with Python's lock held."""
    return np.searchsorted(offsets, at, side="right") - 1


def spread(start: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each i, the integers `start[i]` .. `start[i] + size[i] - 1`, one
    after another, with i beside each: (owner, value). The ragged ranges the
    span checks walk (a span's bytes, a run's spans, a key's prefix lengths)."""
    owner = owners(size)
    # The second repeat is a gather: NumPy's repeat holds Python's lock, its gathers do not.
    return owner, (start - (np.cumsum(size) - size))[owner] + np.arange(len(owner))


def slices(data: np.ndarray, start: np.ndarray, end: np.ndarray) -> pa.Array:
    """The strings at bytes `start`..`end` of `data` (cut at character
    boundaries), as an Arrow array."""
    size = end - start
    offsets = np.zeros(len(size) + 1, dtype=np.int64)
    np.cumsum(size, out=offsets[1:])
    _, at = spread(start, size)
    return pa.LargeStringArray.from_buffers(len(size), pa.py_buffer(offsets), pa.py_buffer(data[at].tobytes()))


@dataclass(frozen=True)
class Groups:
    """The groups of ASCII digits of each string: group g is bytes
    `start[g]`..`end[g]` of string `row[g]`; a string's groups are
    `first[r]`..`first[r] + count[r] - 1`, in order."""

    start: np.ndarray
    end: np.ndarray
    row: np.ndarray
    first: np.ndarray
    count: np.ndarray

    @property
    def last(self) -> np.ndarray:
        return self.first + self.count - 1


def digit_groups(offsets: np.ndarray, data: np.ndarray) -> Groups:
    """The groups of digits of the strings `view` gave. The bytes are read as
    one slice (not gathered), and each group's string found by `row_of`."""
    rows = len(offsets) - 1
    lo, hi = int(offsets[0]), int(offsets[-1])
    digit = (data >= 48) & (data <= 57)
    edge = np.zeros(len(data) + 1, dtype=bool)
    edge[offsets] = True  # a string starts (and the one before ends) here
    d = digit[lo:hi]
    before = np.zeros(hi - lo, dtype=bool)
    before[1:] = d[:-1]
    start = np.flatnonzero(d & (edge[lo:hi] | ~before)) + lo
    end = np.flatnonzero(d & (edge[lo + 1:hi + 1] | ~digit[lo + 1:hi + 1])) + lo + 1
    row = row_of(offsets, start)
    count = np.bincount(row, minlength=rows)
    return Groups(start, end, row, np.cumsum(count) - count, count)
