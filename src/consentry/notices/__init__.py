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
    "CHANNELS",
    "Acknowledged",
    "Campaign",
    "MailError",
    "MailSession",
    "Mailer",
    "Message",
    "PermanentFailure",
    "SmtpSettings",
    "TemporaryFailure",
    "already_told",
    "check_cutoff",
    "kind_words",
    "parse_hostport",
    "parse_mailbox",
    "pending_by_channel",
    "public_base_url",
    "read_objection_token",
    "summarize",
]

_LAZY = {"CHANNELS": ".campaign", "Acknowledged": ".campaign", "Campaign": ".campaign", "summarize": ".campaign", "check_cutoff": ".campaign",
         "pending_by_channel": ".tables", "read_objection_token": ".links", "public_base_url": ".links",
         "kind_words": ".text", "already_told": ".audience"}


def __getattr__(name: str):  # noqa: ANN202 - loaded on first use: a campaign loads the engine, which the center's mail does not need
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
