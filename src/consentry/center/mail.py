"""The center's mails: sign-in links, confirmations, decisions, in the person's language.

Nothing is sent from a request. A mail is queued in the durable outbox in the
same transaction as what causes it (the event, the sign-in link), and this
worker's sender thread delivers it: over SMTP, or in development (--mail-dir)
as an .eml file. When the mail server is down the mail waits and is retried
with backoff until it expires (sign-in links with the link, 15 minutes;
others after `mail_expire_hours`); expired mails are listed on /admin. So a
page can truthfully say a mail is on its way, never that it was sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Connection

from ..ledger import Ledger, StoredEvent
from ..mail import FolderTransport, Message, OutgoingMail, Sender, SmtpTransport
from ..mail import DEV_SENDER, MailForEvent, Transport, enqueue
from .settings import CenterSettings

log = logging.getLogger("consentry.center.mail")
__all__ = ["DEV_SENDER", "CenterMail"]


class CenterMail:
    """Builds the center's mails and queues them; owns this worker's sender."""

    def __init__(
        self, ledger: Ledger, settings: CenterSettings, *, transport: Transport | None = None, start: bool = True
    ) -> None:
        if transport is None:
            if settings.mail_dir is not None:  # development wins: `serve` did not check the SMTP server
                transport = FolderTransport(settings.mail_dir)
            elif settings.smtp is not None:
                transport = SmtpTransport(settings.smtp)
            else:
                raise ValueError(
                    "the privacy center needs --smtp (or --mail-dir for local development) to send sign-in links"
                )
        self.transport = transport
        self.expires_in = timedelta(hours=settings.mail_expire_hours)
        self.sender = Sender(ledger, transport)
        if start:
            self.sender.start()

    def message(
        self, to: str, subject: str, text: str, kind: str, *, expires_in: timedelta | None = None
    ) -> OutgoingMail:
        """A rendered mail, ready to queue; `kind` is its X-Consentry-Kind."""
        return OutgoingMail.of(
            Message(to=to, subject=subject, text=text, headers={"X-Consentry-Kind": kind}),
            sender=self.transport.sender, kind=kind, expires_in=expires_in or self.expires_in,
        )

    def for_event(self, build: Callable[[StoredEvent], OutgoingMail]) -> MailForEvent:
        """For `committer.record(event, mails=[...])` when the mail names the stored event."""
        return MailForEvent(build)

    def enqueue(self, conn: Connection, mail: OutgoingMail) -> str:
        """Queue in the caller's transaction; call `wake()` once it is committed."""
        return enqueue(conn, mail)

    def wake(self) -> None:
        """Something was queued and committed: deliver it now rather than at the next poll."""
        self.sender.wake()

    def close(self) -> None:
        self.sender.stop()
