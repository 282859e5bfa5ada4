"""Languages: every official language of the EU and the EEA, through gettext
catalogs (Babel).

The .po files are compiled in memory at start-up, so the repository holds
only text that translators edit.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources

from babel import Locale, negotiate_locale
from babel.dates import format_date, format_time, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from .timeutil import utc

#: The official languages of the EU and the EEA (Norwegian as Bokmål, `no`).
LANGUAGES = ("bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr", "hu", "is", "it", "lt", "lv", "mt",
             "nl", "no", "pl", "pt", "ro", "sk", "sl", "sv")
DEFAULT = "en"
#: Other codes for a language served under one of the codes above.
ALIASES = {"nb": "no", "nn": "no"}


def _endonym(lang: str) -> str:
    name = Locale.parse(lang).get_display_name(lang) or lang
    return name[:1].upper() + name[1:]


#: Each language in its own words, as the language menu shows it.
NAMES = {lang: _endonym(lang) for lang in LANGUAGES}


def _country_languages() -> dict[str, str]:
    """Per country (ISO 3166 alpha-2), the language a notice goes in when the
    person has none of ours: the first of the country's official languages
    (CLDR, as Babel ships it, most spoken first) that is served here."""
    from babel.languages import get_official_languages

    out = {}
    for country in sorted(Locale("en").territories):
        if not (len(country) == 2 and country.isalpha()):
            continue
        for lang in get_official_languages(country, de_facto=True):
            base = ALIASES.get(lang.split("_")[0], lang.split("_")[0])
            if base in LANGUAGES:
                out[country] = base
                break
    return out


#: The language of a country, where it is one of ours.
COUNTRY_LANGUAGES = _country_languages()


def base_language(tag: str | None) -> str | None:
    """`de-AT` -> `de`, `nb` -> `no`; None unless the language is served."""
    if not tag:
        return None
    base = tag.replace("_", "-").split("-")[0].lower()
    base = ALIASES.get(base, base)
    return base if base in LANGUAGES else None


def for_person(language: str | None, country: str | None) -> str:
    """A notice's language: the person's own, else their country's, else English."""
    return base_language(language) or COUNTRY_LANGUAGES.get((country or "").upper(), DEFAULT)


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


def ngettext(lang: str):  # noqa: ANN201
    """New-style ngettext: ngettext("%(n)s item", "%(n)s items", n, n=n) picks
    the language's form for `n` (its Plural-Forms: Polish has three, Irish five),
    then fills in. A count next to a noun is always written this way, never as
    _("%(n)s items"), which read "1 items"."""
    t = translations(lang)

    def n_(singular: str, plural: str, num: int, /, **values: object) -> str:  # (placeholders may be named n)
        text = t.ngettext(singular, plural, num)
        return text % values if values else text

    return n_


def in_time(seconds: float, lang: str) -> str:
    """"in 5 minutes", "za 1 minutę", "1 perc múlva": a wait as the language's
    own CLDR data writes it, grammar included."""
    return format_timedelta(timedelta(seconds=seconds), add_direction=True, locale=lang)


def pick(*, explicit: str | None = None, person: str | None = None, accept: str | None = None) -> str:
    """The page language: an explicit choice, else the person's, else the browser's."""
    for candidate in (explicit, person):
        if base := base_language(candidate):
            return base
    if accept:
        wanted = [part.split(";")[0].strip().replace("-", "_").lower() for part in accept.split(",") if part.strip()]
        wanted = [ALIASES.get(w.split("_")[0], w) for w in wanted]
        found = negotiate_locale(wanted, list(LANGUAGES), sep="_") or negotiate_locale(
            [w.split("_")[0] for w in wanted], list(LANGUAGES)
        )
        if found:
            return found
    return DEFAULT


def locale(lang: str) -> Locale:
    return Locale.parse(lang)


def instant(dt: datetime, lang: str) -> str:
    """An instant as the language writes it (German "1. Dezember 2026"), on the
    24-hour clock, always with its zone: UTC."""
    at = utc(dt)
    return f"{format_date(at.date(), 'long', locale=lang)}, {format_time(at, 'HH:mm:ss', tzinfo=UTC, locale=lang)} UTC"


def places(countries: list[str], lang: str) -> str:
    """Where a jurisdiction applies, in the reader's words: the EU and the
    rest of the EEA by their CLDR names, other countries by theirs (Babel),
    `*` as "everywhere else"."""
    from .policy.model import EVERYWHERE_ELSE
    from .policy.regions import EU

    if list(countries) == [EVERYWHERE_ELSE]:
        return gettext(lang)("Everywhere else")
    names = Locale.parse(lang).territories
    codes = list(dict.fromkeys(countries))
    out = []
    if set(EU) <= set(codes):
        out.append(names.get("EU", "EU"))
        codes = [c for c in codes if c not in EU]
    out += sorted((names.get(c, c) for c in codes), key=str.casefold)
    return ", ".join(out)
