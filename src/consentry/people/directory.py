"""Find a person in the export by e-mail address, id or handle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ..access import AddressError, normalise_address, same_address
from ..engine.duck import connect
from ..mail import deliverable
from ..sources import Export
from ..timeutil import iso

_COLS = "user_id, handle, email, birth_date, country, language, created_at, deleted_at"


def _key(sql: str) -> str:
    """A DuckDB expression, equal for any two addresses `normalise_address` makes
    equal (it may be equal for more): the look-up's coarse, set-based half.
    DuckDB's lower() is not Python's: it writes `İ` as `i` where Python writes
    `i̇` (a dot, U+0307, is dropped), and a final `Σ` as `σ` where Python writes
    `ς`; NFC before and after, as email-validator composes."""
    return f"replace(replace(nfc_normalize(lower(nfc_normalize(trim({sql})))), 'ς', 'σ'), chr(775), '')"


@dataclass(frozen=True)
class Person:
    user_id: str
    handle: str | None
    email: str | None
    birth_date: date | None
    country: str | None
    language: str | None
    created_at: datetime | None
    deleted_at: datetime | None

    @property
    def mailable(self) -> bool:
        """Their address is one a mail can be sent to (an export's may be two, or none)."""
        return deliverable(self.email)

    def as_json(self) -> dict:
        """The account as the person downloads it: instants in UTC with their zone (an export's naive
        timestamps are UTC: CONTRACT), dates as dates."""
        return {k: iso(v) if isinstance(v, datetime) else v.isoformat() if isinstance(v, date) else v
                for k, v in self.__dict__.items()}


class Directory:
    def __init__(self, export: Export) -> None:
        self.export = export

    def _where(self, where: str, value: str) -> list[Person]:
        con = connect()
        try:
            self.export.register(con)
            rows = con.execute(f"SELECT {_COLS} FROM users WHERE {where} ORDER BY user_id", [value]).fetchall()
        finally:
            con.close()
        return [Person(*row) for row in rows]

    def by_email(self, email: str) -> list[Person]:
        """Every account with this address, in id order: one person may have
        several (a page and a profile), and each must be reachable. Only
        accounts whose own address is that one (`same_address`: normalised,
        the same text), so a link for an account goes only to its own address:
        never `strasse@`'s to whoever typed `straße@`, nor `alice@`'s to
        `alİce@`. Found in one query (a coarse key), then held to the rule."""
        try:
            address = normalise_address(email)
        except AddressError:
            return []
        return [p for p in self._where(f"{_key('email')} = {_key('?')}", address) if same_address(p.email, address)]

    def by_id(self, user_id: str) -> Person | None:
        found = self._where("user_id = ?", user_id)
        return found[0] if found else None
