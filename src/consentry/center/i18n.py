"""The center's languages are the library's (consentry.i18n)."""

from ..i18n import DEFAULT, LANGUAGES, NAMES, gettext, instant, locale, pick, places, translations  # noqa: F401
