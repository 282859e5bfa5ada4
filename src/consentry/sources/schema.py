"""The platform export's tables as CONTRACT §1 fixes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnKind = Literal["string", "timestamp", "date", "country", "language"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    required: bool = False  # must be present in the file
    not_null: bool = False  # every row needs a value
    #: A key other rows and the ledger match exactly: refused with surrounding white
    #: space or control characters. (A reference to a key, such as content.user_id,
    #: that differs from it by a space already matches nothing and is refused so.)
    identifier: bool = False

    @property
    def duckdb_type(self) -> str:
        return {"timestamp": "TIMESTAMP", "date": "DATE"}.get(self.kind, "VARCHAR")


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    optional: bool = False  # a platform without tagging has no tags file

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


USERS = Table(
    "users",
    (
        Column("user_id", "string", required=True, not_null=True, identifier=True),
        Column("handle", "string", required=True, identifier=True),
        Column("email", "string", required=True),
        Column("birth_date", "date", required=True),
        Column("country", "country", required=True),
        Column("language", "language", required=True),
        Column("created_at", "timestamp", required=True, not_null=True),
        Column("deleted_at", "timestamp", required=True),
    ),
)

CONTENT = Table(
    "content",
    (
        Column("item_id", "string", required=True, not_null=True, identifier=True),
        Column("user_id", "string", required=True, not_null=True),
        Column("kind", "string", required=True, not_null=True),
        Column("visibility", "string", required=True, not_null=True),
        Column("created_at", "timestamp", required=True, not_null=True),
        Column("deleted_at", "timestamp", required=True),
        Column("text", "string", required=True),
        Column("media_path", "string", required=True),
        Column("parent_id", "string", required=True),
    ),
)

TAGS = Table(
    "tags",
    (
        Column("item_id", "string", required=True, not_null=True),
        Column("tagged_user_id", "string", required=True, not_null=True),
    ),
    optional=True,
)

TABLES: tuple[Table, ...] = (USERS, CONTENT, TAGS)
FORMATS = ("parquet", "jsonl", "csv")
