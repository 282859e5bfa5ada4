"""Mail to the people whose content we hold: sign-in links, objection confirmations, notices."""

from consentry.notices.mailer import (
    Mailer,
    MailError,
    MailSession,
    Message,
    PermanentFailure,
    SmtpSettings,
    TemporaryFailure,
    parse_hostport,
    parse_mailbox,
)

__all__ = [
    "MailError",
    "MailSession",
    "Mailer",
    "Message",
    "PermanentFailure",
    "SmtpSettings",
    "TemporaryFailure",
    "parse_hostport",
    "parse_mailbox",
]
