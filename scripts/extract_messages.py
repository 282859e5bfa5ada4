#!/usr/bin/env python
"""Regenerate messages.pot for the privacy center, and check the catalogs.

    .venv/bin/python scripts/extract_messages.py            # writes src/consentry/locales/messages.pot
    .venv/bin/python scripts/extract_messages.py --check    # also: every locale has every msgid, none fuzzy, placeholders match
    .venv/bin/python scripts/extract_messages.py -o FILE    # write the template elsewhere

Sources of msgids:

* the Jinja2 templates (*.html, mail/*.txt), with Jinja2's Babel extractor: `_("...")` and
  `_("... %(name)s ...", name=...)`;
* the Python files of the center (`_("...")` for mail subjects) and of the notices;
* the GDPR documents (audit/documents.py): the record of processing, the LIA and the notice's frame;
* strings that reach `_()` only at run time, so no extractor can see them: the reasons in
  `consentry.engine.rules.MEANING` (`_(i.meaning)`), the event type names (`_(e.type.value)`),
  the `LinkError` messages, the fixed error messages of the center (pages.py, app.py, security.py,
  admin.py), the `AddressError` messages of access/links.py, and the README and note of the
  "Download my data" archive (people/view.py).

Translators: every template, the mail ones included, is rendered with autoescape on, so an ASCII
apostrophe or quote in a msgstr reaches a plain-text mail as &#39; or &#34;. Use ’ “ ” „ instead.
In the GDPR documents, text in [brackets] is for the controller to complete: keep the brackets. `%(platform)s`
is the platform's name as given, else the msgid "the platform", which every catalog but English writes as a
bracketed placeholder ("[Name der Plattform]"), so that it fits whatever case the sentence puts it in.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract, extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
CENTER = SRC / "consentry" / "center"
LOCALES = SRC / "consentry" / "locales"
#: Single files whose `_()` strings are extracted (their folder holds untranslated code too).
DOCUMENTS = ("audit/documents.py",)
sys.path.insert(0, str(SRC))
from consentry.i18n import LANGUAGES  # noqa: E402 - the languages served, from their one home

LANGS = tuple(x for x in LANGUAGES if x != "en")

# Fixed English messages that pages show as `message` in error.html, passed in as plain strings.
FIXED = {
    "center/pages.py": [
        "This account no longer exists.",
        "No such photo of yours.",
        "This privacy center does not issue receipts.",
    ],
    "center/app.py": [
        "Sign in first: ask for a sign-in link on the home page.",
        "Some of the form was missing or too long.",
        "There is no page at this address.",
        "Something went wrong with this request. Go back to the start and try again.",
    ],
    "center/security.py": [
        "This form has expired or did not come from this site. Reload the page and try again.",
        "The request contains a NUL byte or other characters that are not text. Remove them and try again.",
    ],
    "center/admin.py": [
        "Administrators sign in at /admin/login.",
        "Your role may look but not decide.",
        "State the compelling grounds (at least 20 characters); the person will read them.",
    ],
}
# The `AddressError` messages (access/links.py), shown by the forms that ask for an e-mail address.
ADDRESS_ERRORS = {
    "access/links.py": [
        "Enter an e-mail address.",
        "The address contains control characters.",
        "Enter exactly one e-mail address.",
        "This is not an e-mail address.",
        "This is not a valid e-mail address: the @ is missing.",
        "This is not a valid e-mail address: it contains a space.",
        "This is not a valid e-mail address: the part after the @ needs a dot, as in example.org.",
        "This is not a valid e-mail address.",
    ],
}

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _add(catalog: Catalog, msgid: str | tuple[str, str], where: str, line: int | None = None,
         note: str | None = None) -> None:
    """One msgid, or a plural message's (singular, plural)."""
    if not msgid:
        return
    loc = (where, line or 0)
    found = catalog.get(msgid)
    if found is None:
        catalog.add(
            msgid,
            locations=[loc],
            flags=("python-format",) if PLACEHOLDER.search(_forms(msgid)[0]) else (),
            auto_comments=[note] if note else (),
        )
    else:
        if loc not in found.locations:
            found.locations.append(loc)
        if note and note not in found.auto_comments:
            found.auto_comments.append(note)


def _extract_templates(catalog: Catalog) -> None:
    method_map = [("**.html", "jinja2"), ("**.txt", "jinja2")]
    options = {"**": {"extensions": "jinja2.ext.i18n", "trimmed": "false"}}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        CENTER / "templates", method_map, options_map=options, keywords={"_": None, "ngettext": (1, 2)}
    ):
        if isinstance(message, tuple) and len(message) >= 2 and isinstance(message[1], str):
            message = (message[0], message[1])  # ngettext("%(n)s item", "%(n)s items", n): a plural message
        elif isinstance(message, tuple):  # _("...", name=...) comes back as ("...", None, ...)
            message = message[0]
        _add(catalog, message, f"center/templates/{filename}", lineno)


def _extract_python(catalog: Catalog) -> None:
    """`_("...")` in the center and the notices, and `_()` or `N_()` (a default translated later) in the
    GDPR documents; only documents.py of the audit package, whose other files speak English only."""
    method_map = [("**.py", "python")]
    keywords = {"_": None, "N_": None}
    for folder in ("center", "notices"):
        for filename, lineno, message, _comments, _context in extract_from_dir(
            SRC / "consentry" / folder, method_map, keywords=keywords
        ):
            _add(catalog, message[0] if isinstance(message, tuple) else message, f"{folder}/{filename}", lineno)
    for rel in DOCUMENTS:
        with (SRC / "consentry" / rel).open("rb") as fh:
            for lineno, message, _comments, _context in extract("python", fh, keywords=keywords):
                _add(catalog, message[0] if isinstance(message, tuple) else message, rel, lineno)


def _runtime(catalog: Catalog) -> None:
    sys.path.insert(0, str(SRC))
    from consentry.errors import LinkError
    from consentry.engine.rules import MEANING
    from consentry.ledger.events import EventType
    from consentry.people.view import ABOUT_YOU, ARCHIVE_README, DECISIONS_NOTE, NOT_ABOUT_YOU

    for reason, text in MEANING.items():
        _add(catalog, text, f"engine/rules.py:MEANING[{reason.value}]",
             note="Why an item is or is not used: a lowercase phrase in the 'Why' column of My data.")
    for reason, text in ABOUT_YOU.items():
        _add(catalog, text, f"people/view.py:ABOUT_YOU[{reason}]",
             note="Why a photo someone else posted, in which the reader is tagged, is not used: about the reader.")
    _add(catalog, NOT_ABOUT_YOU, "people/view.py:NOT_ABOUT_YOU",
         note="A photo of someone else's in which the reader is tagged is not used, for a reason that is not theirs.")
    _add(catalog, ARCHIVE_README, "people/view.py:ARCHIVE_README",
         note="README.txt of the 'Download my data' archive: keep the file names and the line breaks.")
    _add(catalog, DECISIONS_NOTE, "people/view.py:DECISIONS_NOTE",
         note="The note in decisions.json of the archive: keep tagged_person and about_you (JSON keys and codes).")
    for t in EventType:
        _add(catalog, t.value, "ledger/events.py:EventType",
             note="Event type in the history list ('<date>: <this>'): a short lowercase phrase.")
    _add(catalog, "Everywhere else", "i18n.py:places",
         note="Where a jurisdiction applies when the policy says '*': every country not named by another.")
    for reason in ("expired", "used", "invalid"):
        _add(catalog, str(LinkError(reason)), f"errors.py:LinkError({reason})",
             note="Shown on the error page when a sign-in or confirmation link fails.")
    for fixed, note in ((FIXED, "Error page message."), (ADDRESS_ERRORS, "Why an e-mail address given in a form is refused.")):
        for rel, texts in fixed.items():
            source = (SRC / "consentry" / rel).read_text(encoding="utf-8")
            for text in texts:
                if text not in source:
                    print(f"warning: {rel} no longer contains {text!r}", file=sys.stderr)
                    continue
                _add(catalog, text, rel, source[: source.index(text)].count("\n") + 1, note=note)


def build() -> Catalog:
    catalog = Catalog(project="consentry", version="0.1.0", charset="utf-8", fuzzy=False)
    _extract_templates(catalog)
    _extract_python(catalog)
    _runtime(catalog)
    return catalog


def _forms(text: str | tuple) -> tuple:
    """A message's text as a tuple: one string, or a plural message's forms."""
    return text if isinstance(text, tuple) else (text,)


def _names(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def check(template: Catalog) -> int:
    wanted = {m.id for m in template if m.id}
    problems = 0
    for lang in LANGS:
        path = LOCALES / f"{lang}.po"
        if not path.is_file():
            print(f"{lang}: {path} is missing")
            problems += 1
            continue
        with path.open("rb") as fh:
            cat = read_po(fh, locale=lang)
        have = {m.id for m in cat if m.id}
        missing, extra = sorted(wanted - have, key=str), sorted(have - wanted, key=str)  # plural ids are tuples
        untranslated = sorted(str(m.id) for m in cat if m.id and not all(_forms(m.string)))
        fuzzy = sorted(str(m.id) for m in cat if m.id and m.fuzzy)
        bad = sorted(
            str(m.id)
            for m in cat
            if m.id and any(s and _names(s) != _names(_forms(m.id)[0]) for s in _forms(m.string))
        )
        wrong_count = sorted(  # a plural message has exactly the language's number of forms
            str(m.id) for m in cat if m.id and m.pluralizable and len(_forms(m.string)) != cat.num_plurals)
        for label, items in (("missing", missing), ("extra", extra), ("untranslated", untranslated),
                             ("fuzzy", fuzzy), ("placeholders differ", bad), ("wrong number of plural forms", wrong_count)):
            for item in items:
                print(f"{lang}: {label}: {item!r}")
            problems += len(items)
        print(f"{lang}: {len(have)} messages, {len(have) - len(untranslated)} translated")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", type=Path, default=LOCALES / "messages.pot")
    ap.add_argument("--check", action="store_true", help="compare every language but English with the extracted msgids")
    args = ap.parse_args()
    catalog = build()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("wb") as fh:
        write_po(fh, catalog, width=100, omit_header=False)
    print(f"{len(catalog)} messages -> {args.output}")
    return 1 if args.check and check(catalog) else 0


if __name__ == "__main__":
    sys.exit(main())
