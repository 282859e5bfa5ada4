"""Mail to the people whose data it is: one way to build a message
(`message.render`), transports behind one small interface (SMTP, a folder of
.eml files, memory for tests), and the durable outbox with its sender.

    message.py    Message and render(): the bytes of a mail
    errors.py     MailError, TemporaryFailure, PermanentFailure
    smtp.py       SmtpSettings, Mailer/MailSession (campaigns), SmtpTransport, check_smtp,
                  is_setup_failure/how_to_fix (a failure that is the sender's, not a recipient's)
    transport.py  Transport (the seam), FolderTransport, MemoryTransport
    tables.py     the mail_outbox table
    outbox.py     enqueue() in the caller's transaction; claim, mark, report
    sender.py     Sender: delivers due mails with backoff until sent or expired
"""

from .errors import MailError, PermanentFailure, TemporaryFailure
from .message import Message, deliverable, parse_mailbox, render
from .outbox import MailForEvent, OutgoingMail, enqueue
from .outbox import counts as outbox_counts
from .outbox import undelivered as undelivered_mail
from .sender import Sender
from .smtp import (
    Mailer,
    MailSession,
    SmtpSettings,
    SmtpTransport,
    check_smtp,
    how_to_fix,
    is_setup_failure,
    parse_hostport,
)
from .transport import DEV_SENDER, FolderTransport, MemoryTransport, Transport

__all__ = [
    "DEV_SENDER",
    "FolderTransport",
    "MailError",
    "MailForEvent",
    "MailSession",
    "Mailer",
    "MemoryTransport",
    "Message",
    "OutgoingMail",
    "PermanentFailure",
    "Sender",
    "SmtpSettings",
    "SmtpTransport",
    "TemporaryFailure",
    "Transport",
    "check_smtp",
    "deliverable",
    "enqueue",
    "how_to_fix",
    "is_setup_failure",
    "outbox_counts",
    "parse_hostport",
    "parse_mailbox",
    "render",
    "undelivered_mail",
]
