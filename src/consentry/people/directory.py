"""Find a person in the export by e-mail address, id or handle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ..engine.duck import connect
from ..mail import deliverable
from ..sources import Export
from ..timeutil import iso

_COLS = "user_id, handle, email, birth_date, country, language, created_at, deleted_at"


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
        several (a page and a profile), and each must be reachable."""
        return self._where("lower(trim(email)) = lower(trim(?))", email)

    def by_id(self, user_id: str) -> Person | None:
        found = self._where("user_id = ?", user_id)
        return found[0] if found else None
