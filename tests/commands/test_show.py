"""The CLI's tables: nothing shown is ever cut short, at any width."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from consentry.commands._common import show

_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789:./-_", min_size=1, max_size=40)
_cell = st.lists(_word, min_size=0, max_size=4).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(
    headers=st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=12), min_size=1, max_size=9),
    data=st.data(),
    width=st.integers(min_value=30, max_value=160),
    title=st.one_of(st.none(), st.just("a title")),
)
def test_every_word_of_every_cell_is_shown_whole(headers, data, width, title) -> None:
    rows = data.draw(st.lists(st.lists(_cell, min_size=len(headers), max_size=len(headers)), max_size=4))
    table = Table(*headers, title=title)
    for row in rows:
        table.add_row(*row)
    buf = io.StringIO()
    show(table, Console(file=buf, width=width, color_system=None, markup=False, emoji=False))  # as the CLI's consoles
    printed = buf.getvalue()
    assert "…" not in printed
    for row in rows:
        for cell in row:
            for word in cell.split():
                assert word in printed, (word, printed)


def test_a_table_that_fits_is_printed_as_a_table_and_one_that_cannot_as_blocks() -> None:
    def shown(width: int) -> str:
        table = Table("name", "where")
        table.add_row("s1", "/a/path/" + "x" * 60)
        buf = io.StringIO()
        show(table, Console(file=buf, width=width, color_system=None, markup=False, emoji=False))  # as the CLI's consoles
        return buf.getvalue()

    assert "┃ name ┃" in shown(120)
    assert shown(40).splitlines() == ["name   s1", "where  /a/path/" + "x" * 60]


def test_a_column_of_counts_is_aligned_on_the_right_and_words_stay_on_the_left() -> None:
    """`validate`'s rows and the dry run's people were printed flush left
    ("7", "168", "1,649" under each other), unlike every other count."""
    table = Table("jurisdiction", "people", "share")
    for row in (("europe", "7", "0.4%"), ("rest_of_world", "1,649", "99.6%")):
        table.add_row(*row)
    buf = io.StringIO()
    show(table, Console(file=buf, width=80, color_system=None))
    lines = [line for line in buf.getvalue().splitlines() if "europe" in line or "rest_of_world" in line]
    assert lines[0].index("7 ") == lines[1].index("1,649 ") + len("1,64"), lines
    assert lines[0].index("0.4%") > lines[1].index("99.6%"), lines
    assert lines[0].index("europe") == lines[1].index("rest_of_world"), lines
