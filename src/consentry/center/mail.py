"""The center's mails: sign-in links and confirmations, in the person's language.

Sent over real SMTP; in development (--mail-dir) written as .eml files. A
failure is logged without the link or any secret, and never undoes what the
person did: the ledger already holds it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..notices.mailer import Mailer, MailError, Message, SmtpSettings

log = logging.getLogger("consentry.center.mail")
DEV_SENDER = "Privacy center <privacy@localhost>"


class Outbox:
    def __init__(self, smtp: SmtpSettings | None, mail_dir: Path | None) -> None:
        if smtp is None and mail_dir is None:
            raise ValueError("the privacy center needs --smtp (or --mail-dir for local development) to send sign-in links")
        self.mailer = Mailer(smtp) if smtp else None
        self.mail_dir = mail_dir

    def send(self, message: Message) -> bool:
        try:
            if self.mailer is not None:
                self.mailer.send_with_retry(message)
            else:
                assert self.mail_dir is not None
                self.mail_dir.mkdir(parents=True, exist_ok=True)
                builder = Mailer(SmtpSettings(host="localhost", port=25, security="none", sender=DEV_SENDER))
                (self.mail_dir / f"{time.time_ns()}.eml").write_bytes(builder.build(message).as_bytes())
            return True
        except (MailError, OSError) as exc:
            # The recipient and the link are not logged: the address is personal data,
            # the link would let a log reader sign in.
            log.warning("a %s mail could not be sent: %s", message.headers.get("X-Consentry-Kind", "center"), type(exc).__name__)
            return False
