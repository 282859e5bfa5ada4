"""Languages: en, nl, de, fr through gettext catalogs (Babel).

The .po files are compiled in memory at start-up, so the repository holds
only text that translators edit.
"""

from __future__ import annotations

import io
from functools import lru_cache
from importlib import resources

from babel import Locale, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES = ("en", "nl", "de", "fr")
DEFAULT = "en"
NAMES = {"en": "English", "nl": "Nederlands", "de": "Deutsch", "fr": "Français"}


@lru_cache(maxsize=None)
def translations(lang: str) -> NullTranslations:
    if lang not in LANGUAGES:
        return NullTranslations()
    po = resources.files("consentry") / "locales" / f"{lang}.po"
    if not po.is_file():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def gettext(lang: str):  # noqa: ANN201
    """New-style gettext: _("Hello %(name)s", name=...) translates, then fills in."""
    t = translations(lang)

    def _(message: str, **values: object) -> str:
        text = t.gettext(message)
        return text % values if values else text

    _.lang = lang  # type: ignore[attr-defined]  (dates are formatted in the same language)
    return _


def pick(*, explicit: str | None = None, person: str | None = None, accept: str | None = None) -> str:
    """The page language: an explicit choice, else the person's, else the browser's."""
    for candidate in (explicit, person):
        if candidate:
            base = candidate.split("-")[0].lower()
            if base in LANGUAGES:
                return base
    if accept:
        wanted = [part.split(";")[0].strip().replace("-", "_").lower() for part in accept.split(",") if part.strip()]
        found = negotiate_locale(wanted, list(LANGUAGES), sep="_") or negotiate_locale(
            [w.split("_")[0] for w in wanted], list(LANGUAGES)
        )
        if found:
            return found
    return DEFAULT


def locale(lang: str) -> Locale:
    return Locale.parse(lang)
