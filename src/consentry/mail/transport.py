"""The seam between the outbox and the world: a transport hands the bytes of
one mail to one recipient, or raises TemporaryFailure (try later) or
PermanentFailure (never). SMTP is in smtp.py; here are the two others."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Protocol

from .errors import MailError

DEV_SENDER = "Privacy center <privacy@localhost>"


class Transport(Protocol):
    sender: str  # the From of the mails built for this transport

    def deliver(self, recipient: str, raw: bytes) -> None: ...

    def close(self) -> None: ...


class FolderTransport:
    """Development (`serve --mail-dir`): each mail is an .eml file. Written to a
    temporary name and renamed, so a reader never sees half a mail."""

    def __init__(self, folder: Path, sender: str = DEV_SENDER) -> None:
        self.folder = Path(folder)
        self.sender = sender

    def __repr__(self) -> str:
        return f"FolderTransport({str(self.folder)!r})"

    def deliver(self, recipient: str, raw: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{os.getpid()}-{threading.get_ident()}"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(raw)
        tmp.rename(self.folder / f"{name}.eml")

    def close(self) -> None:
        pass


class MemoryTransport:
    """For tests: keeps (recipient, bytes). `failure`, when set, is raised by
    every delivery instead (a TemporaryFailure is an outage)."""

    def __init__(self, sender: str = DEV_SENDER) -> None:
        self.sender = sender
        self.delivered: list[tuple[str, bytes]] = []
        self.failure: MailError | None = None
        self.attempts = 0
        self._lock = threading.Lock()

    def deliver(self, recipient: str, raw: bytes) -> None:
        with self._lock:
            self.attempts += 1
            if self.failure is not None:
                raise self.failure
            self.delivered.append((recipient, raw))

    def close(self) -> None:
        pass
