"""libphonenumber's number patterns as tables of prefixes, so that a number is
checked by looking up keys instead of by a regular expression.

A pattern of libphonenumber describes digit strings of a few lengths, and its
constraints sit near the start of the number ("2[0-35-9]\\d{7}"). For each
length, the strings a pattern (or two patterns at once) accepts are exactly
those that start with one of a few prefixes: `cover` finds the shortest such
prefixes by walking the patterns' automaton digit by digit, stopping where
every continuation of the right length is accepted. All 215 country codes'
valid numbers fit in some 58,000 (length, prefix) rows, no prefix longer than
8 digits (Colombia's, +57; `phones._key` refuses longer ones).

Why: DuckDB compiles every constant regular expression once per query and
thread. The 19 regions a national number is tried in came to some 23,000
characters of patterns, about 30 ms of every redaction call on each core
before a single text was read; a table is built once per process.
"""

from __future__ import annotations

from re import _constants as _c
from re import _parser

__all__ = ["cover"]

_DIGITS = "0123456789"


class _NFA:
    """A Thompson automaton over the ten digits: per state, (digits, target) edges and empty moves."""

    def __init__(self, pattern: str) -> None:
        self.edges: list[list[tuple[frozenset[str], int]]] = []
        self.empty: list[list[int]] = []
        self.start = self._new()
        self.end = self._seq(_parser.parse(pattern), self.start)

    def _new(self) -> int:
        self.edges.append([])
        self.empty.append([])
        return len(self.edges) - 1

    def _seq(self, items, s: int) -> int:  # noqa: ANN001 - a parsed pattern
        for op, av in items:
            s = self._one(str(op), av, s)
        return s

    def _one(self, op: str, av, s: int) -> int:  # noqa: ANN001
        digits = _digits_of(op, av)
        if digits is not None:
            e = self._new()
            self.edges[s].append((digits, e))
            return e
        if op == "SUBPATTERN":
            return self._seq(av[-1], s)
        if op == "BRANCH":
            e = self._new()
            for branch in av[1]:
                self.empty[self._seq(branch, s)].append(e)
            return e
        if op in ("MAX_REPEAT", "MIN_REPEAT"):
            lo, hi, item = av
            for _ in range(lo):
                s = self._seq(item, s)
            if hi == _c.MAXREPEAT:
                self.empty[self._seq(item, s)].append(s)
                return s
            e = self._new()
            self.empty[s].append(e)
            for _ in range(hi - lo):
                s = self._seq(item, s)
                self.empty[s].append(e)
            return e
        raise ValueError(f"a phone number pattern with {op}, which this reader does not know")


def _digits_of(op: str, av) -> frozenset[str] | None:  # noqa: ANN001
    """The digits one parsed item matches, or None if it is not a single character."""
    if op == "LITERAL":
        return frozenset(chr(av)) & frozenset(_DIGITS)
    if op == "ANY":
        return frozenset(_DIGITS)
    if op != "IN":
        return None
    out: set[str] = set()
    negate = False
    for o, a in av:
        o = str(o)
        if o == "LITERAL":
            out.add(chr(a))
        elif o == "RANGE":
            out |= {chr(c) for c in range(a[0], a[1] + 1)}
        elif o == "CATEGORY" and str(a) == "CATEGORY_DIGIT":
            out |= set(_DIGITS)
        elif o == "NEGATE":
            negate = True
        else:
            raise ValueError(f"a phone number pattern with a class item {o}, which this reader does not know")
    out &= set(_DIGITS)
    return frozenset(set(_DIGITS) - out) if negate else frozenset(out)


class _DFA:
    """The NFA's subsets, made on demand and numbered; state 0 accepts nothing."""

    def __init__(self, pattern: str) -> None:
        self.nfa = _NFA(pattern)
        self.ids: dict[frozenset[int], int] = {frozenset(): 0}
        self.sets: list[frozenset[int]] = [frozenset()]
        self.moves: list[list[int] | None] = [[0] * 10]
        self.start = self._id(self._closure({self.nfa.start}))

    def _closure(self, states: set[int]) -> frozenset[int]:
        stack, seen = list(states), set(states)
        while stack:
            for t in self.nfa.empty[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)

    def _id(self, s: frozenset[int]) -> int:
        i = self.ids.get(s)
        if i is None:
            i = self.ids[s] = len(self.sets)
            self.sets.append(s)
            self.moves.append(None)
        return i

    def next(self, i: int) -> list[int]:
        """The state after each digit, 0 to 9."""
        m = self.moves[i]
        if m is None:
            edges = [e for s in self.sets[i] for e in self.nfa.edges[s]]
            m = self.moves[i] = [self._id(self._closure({t for ds, t in edges if d in ds})) for d in _DIGITS]
        return m

    def accepts(self, i: int) -> bool:
        return self.nfa.end in self.sets[i]


def cover(*patterns: str, lengths: range = range(1, 18)) -> list[tuple[int, str]]:
    """(length, prefix) for every digit string that fully matches all of
    `patterns`: a string of that length is matched if and only if it starts
    with one of the prefixes of its length. No prefix has another of the same
    length as its own prefix."""
    import numpy as np

    dfas = [_DFA(p) for p in patterns]
    ids: dict[tuple[int, ...], int] = {}
    states: list[tuple[int, ...]] = []

    def pid(s: tuple[int, ...]) -> int:
        i = ids.get(s)
        if i is None:
            i = ids[s] = len(states)
            states.append(s)
        return i

    # Every state within the longest length of the start, breadth first (a
    # state is first met at its least depth, so one met last is only ever
    # asked about strings of no digits).
    start = pid(tuple(d.start for d in dfas))
    moves: list[list[int]] = []
    depth_max = max(lengths, default=0)
    frontier = [start]
    for _ in range(depth_max):
        new: list[int] = []
        for i in frontier:  # numbered in the order met: moves[i] is state i's
            nexts = [d.next(s) for d, s in zip(dfas, states[i], strict=True)]
            before = len(states)
            moves.append([pid(tuple(n[k] for n in nexts)) for k in range(10)])
            new.extend(range(before, len(states)))
        frontier = new
    dead = np.array([0 in s for s in states])
    count = [np.array([not d and all(f.accepts(x) for f, x in zip(dfas, s, strict=True))
                       for s, d in zip(states, dead, strict=True)], dtype=np.int64)]
    table = np.array(moves + [[0] * 10] * (len(states) - len(moves)), dtype=np.int64).reshape(len(states), 10)
    for _ in range(depth_max):  # how many strings of r digits lead from each state to acceptance
        c = count[-1][table].sum(axis=1)
        c[dead] = 0
        c[len(moves):] = 0  # never asked: met only at the longest depth
        count.append(c)
    counts = [c.tolist() for c in count]
    out: list[tuple[int, str]] = []

    def walk(i: int, prefix: str, length: int) -> None:
        r = length - len(prefix)
        c = counts[r][i]
        if c == 0:
            return
        if c == 10**r:
            out.append((length, prefix))
            return
        for d, j in zip(_DIGITS, moves[i], strict=True):
            walk(j, prefix + d, length)

    for length in lengths:
        walk(start, "", length)
    return out
