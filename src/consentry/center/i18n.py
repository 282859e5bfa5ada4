"""The center's languages are the library's (consentry.i18n)."""

from ..i18n import (  # noqa: F401
    DEFAULT,
    LANGUAGES,
    NAMES,
    for_person,
    gettext,
    in_time,
    instant,
    locale,
    ngettext,
    pick,
    places,
    translations,
)
