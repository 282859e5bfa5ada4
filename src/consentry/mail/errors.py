"""The mail errors live with every other error in `consentry.errors`; this
module keeps their old import path."""

from consentry.errors import MailError, PermanentFailure, TemporaryFailure

__all__ = ["MailError", "PermanentFailure", "TemporaryFailure"]
