"""GDPR paperwork written from the policy that actually runs, and the ledger.

Three documents, each as Markdown and HTML: the Art. 30 record of processing,
a draft Legitimate Interest Assessment, and the notice people receive. They
are built from the same Policy object the engine compiles, so a change of
policy changes the documents; what only the controller can know is left as a
visible [placeholder] rather than invented.

Every sentence is a whole msgid with named placeholders (the catalogs in
consentry/locales), so each EU/EEA language can order its words its own way;
numbers and dates are written as the language writes them (Babel).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

from babel.dates import format_date
from babel.numbers import format_decimal
from sqlalchemy import Engine, func, select

from ..i18n import LANGUAGES, gettext, locale, places
from ..ledger.tables import head, person_state
from ..notices.text import TEMPLATE_VERSION, kind_words, render_notice
from ..policy import Basis, Jurisdiction, Policy, TaggedPeople
from ..snapshots.tables import models, snapshots
from ..sources import Export
from ..timeutil import utc
from .render import environment


class Translate(Protocol):
    """consentry.i18n.gettext: translates, fills in named placeholders, and knows its language."""

    lang: str

    def __call__(self, message: str, /, **values: object) -> str: ...


def N_(message: str) -> str:
    """Mark a msgid for the catalog whose translation is looked up later (a default value)."""
    return message


# -- a tiny document model, rendered to both Markdown and HTML -------------------------


@dataclass(frozen=True)
class Block:
    kind: str  # p | ul | table | gap | placeholder
    text: str = ""
    items: tuple[str, ...] = ()
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


def p(text: str) -> Block:
    return Block("p", text)


def ul(*items: str) -> Block:
    return Block("ul", items=tuple(items))


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> Block:
    return Block("table", header=header, rows=tuple(rows))


def gap(text: str) -> Block:
    """A weakness of the policy the DPO must see (shown as a warning)."""
    return Block("gap", text)


def todo(text: str) -> Block:
    """Something only the controller can write."""
    return Block("placeholder", text)


@dataclass(frozen=True)
class Section:
    heading: str
    blocks: tuple[Block, ...]
    anchor: str = ""


@dataclass(frozen=True)
class Doc:
    slug: str
    title: str
    intro: str
    sections: tuple[Section, ...]
    lang: str = "en"  # the language it is written in: <html lang>, and the template's own words

    def section(self, anchor: str) -> Section:
        return next(s for s in self.sections if s.anchor == anchor)


# -- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Controller:
    """Who is responsible: from CLI options; unset fields stay visible placeholders,
    written in the documents' language (the defaults are msgids)."""

    name: str = N_("[controller: legal name and address]")
    contact: str = N_("[contact for data protection questions]")
    dpo: str = N_("[data protection officer: name and contact]")
    platform: str = N_("the platform")
    privacy_center: str = N_("[web address of the privacy center]")  # never a made-up address in a real notice
    recipients: str = N_("[recipients: internal AI teams, processors (e.g. cloud and training providers)]")
    transfers: str = N_("[transfers outside the EEA: countries and safeguards, e.g. adequacy decision or SCCs; "
                        "or “none”]")
    retention: str = N_("[how long snapshots and models are kept, and when they are deleted]")

    def localized(self, _: Translate) -> Controller:
        """The placeholders left at their defaults, translated; what was given stays as given."""
        return replace(self, **{f.name: _(f.default) for f in fields(self) if getattr(self, f.name) == f.default})


@dataclass(frozen=True)
class LedgerFacts:
    watermark: int
    objecting_now: int  # latest objection event is `objected`
    consenting_now: int
    notified: int
    erasure_requests: int
    snapshots: int
    models: int
    #: The people of `objecting_now` per country in the export (None: the export gives none); None when no export
    #: was read. The ledger holds no countries, and whether a policy honours an objection depends on them.
    objecting_by_country: dict[str | None, int] | None = None


def ledger_facts(engine: Engine, *, export: Export | None = None) -> LedgerFacts:
    """The facts the documents state. With the `export`, the people whose objection is in force are
    counted per country, so that a policy that honours objections in some jurisdictions only is not
    said to honour them all (people not in the export are left out of that count)."""
    ps = person_state.c
    with engine.connect() as conn:
        def count(where) -> int:  # noqa: ANN001
            return int(conn.execute(select(func.count()).select_from(person_state).where(where)).scalar_one())

        facts = LedgerFacts(
            watermark=int(conn.execute(select(head.c.last_seq).where(head.c.id == 1)).scalar_one()),
            objecting_now=count(ps.objection == "objected"),
            consenting_now=count(ps.consent == "consent_given"),
            notified=count(ps.first_notified_us.is_not(None)),
            erasure_requests=count(ps.erasure_us.is_not(None)),
            snapshots=int(conn.execute(select(func.count()).select_from(snapshots)).scalar_one()),
            models=int(conn.execute(select(func.count()).select_from(models)).scalar_one()),
        )
        if export is None:
            return facts
        objecting = [r[0] for r in conn.execute(select(ps.user_id).where(ps.objection == "objected"))]
    return replace(facts, objecting_by_country=_countries(export, objecting))


def _countries(export: Export, user_ids: list[str]) -> dict[str | None, int]:
    """How many of `user_ids` the export's users table puts in each country (one DuckDB join)."""
    import pyarrow as pa

    from ..engine.duck import connect

    con = connect()
    try:
        export.register(con)
        con.register("objecting_ids", pa.table({"user_id": pa.array(user_ids, pa.string())}))
        rows = con.execute("SELECT u.country, count(*) FROM objecting_ids o JOIN users u ON u.user_id = o.user_id "
                           "GROUP BY u.country").fetchall()
    finally:
        con.close()
    return {country: int(n) for country, n in rows}


@dataclass
class Documents:
    policy: Policy
    generated: datetime
    docs: list[Doc] = field(default_factory=list)

    def get(self, slug: str) -> Doc:
        return next(d for d in self.docs if d.slug == slug)


# -- the documents -------------------------------------------------------------------------


def build_documents(
    policy: Policy,
    facts: LedgerFacts,
    controller: Controller | None = None,
    *,
    cutoff: datetime | None = None,
    language: str = "en",
) -> Documents:
    """The three documents for `policy`, in `language`. `cutoff` is the date the notice
    announces (default: today plus the longest notice period, the earliest lawful start)."""
    controller = controller or Controller()
    lang = _served(language)
    now = datetime.now(UTC)
    if cutoff is None:
        days = max((j.notice_days or 0 for j in policy.jurisdictions), default=0)
        cutoff = (now + timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    docs = [
        record_of_processing(policy, facts, controller, lang, generated=now),
        legitimate_interest_assessment(policy, facts, controller, lang, generated=now),
        notice(policy, controller, cutoff, lang),
    ]
    return Documents(policy, now, docs)


def _served(language: str) -> str:
    return language if language in LANGUAGES else "en"


# -- words shared by the documents ----------------------------------------------------------


def _number(n: int, lang: str) -> str:
    return format_decimal(n, locale=lang)


def _date(d: date, lang: str) -> str:
    return format_date(d, "long", locale=lang)


def _kinds(policy: Policy, _: Translate) -> str:
    """The content kinds in short words, as the notice says them, for lists after a colon."""
    return kind_words(policy.kinds, _)


def _kind_description(kind: str, _: Translate) -> str:
    """One category of personal data, described for the record."""
    known = {
        "post": _("Public posts (text, and any images or links in them)"),
        "photo": _("Public photos (images, which may show faces and places)"),
        "caption": _("Public captions of photos (text)"),
        "comment": _("Public comments on posts (text)"),
        "story": _("Public stories (short-lived posts: text, images, video)"),
        "video": _("Public videos"),
        "reel": _("Public reels (short videos)"),
    }
    return known.get(kind) or _("Public content of the kind “%(kind)s”", kind=kind)


def _basis(j: Jurisdiction, _: Translate) -> str:
    return _("consent (opt-in)") if j.basis is Basis.consent else _("legitimate interest (Art. 6(1)(f) GDPR)")


def _age_rule(policy: Policy, _: Translate) -> str:
    """Who is old enough: a phrase that follows a colon or stands in brackets."""
    if policy.minimum_age_at_posting:
        return _("%(age)s or older at the cut-off, and already when they posted", age=policy.minimum_age)
    return _("%(age)s or older at the cut-off", age=policy.minimum_age)


def _since(policy: Policy, _: Translate) -> str:
    if policy.content_since is None:
        return _("Content of any age is used.")
    return _("Only content created on or after %(date)s is used.", date=_date(policy.content_since, _.lang))


def _policy(policy: Policy) -> dict[str, str]:
    """The placeholders that name the policy a document was built from."""
    return {"policy": policy.name, "hash": policy.hash}


def _jurisdiction_table(policy: Policy, _: Translate) -> Block:
    return table(
        (_("jurisdiction"), _("where"), _("legal basis"), _("objections honoured"), _("notice (days before use)")),
        [(j.name, places(j.countries, _.lang), _basis(j, _), _("yes") if j.honour_objections else _("NO"),
          _("none") if j.notice_days is None else _number(j.notice_days, _.lang))
         for j in policy.jurisdictions],
    )


def _unknown_country(policy: Policy, _: Translate) -> Block:
    """Where people whose country is unknown fall (CONTRACT §3): the policy's `unknown_country`, else its "*" one."""
    j = policy.unknown_country_jurisdiction
    if j.is_default:
        return p(_("People whose country is unknown fall under %(jurisdiction)s, the jurisdiction for everywhere else.",
                   jurisdiction=j.name))
    return p(_("People whose country is unknown fall under %(jurisdiction)s (%(places)s), as the policy specifies.",
               jurisdiction=j.name, places=places(j.countries, _.lang)))


def _generated_on(generated: datetime | None, lang: str) -> str:
    """The day a document was generated (UTC), as the language writes dates."""
    return _date(utc(generated or datetime.now(UTC)).date(), lang)


def _objection_rows(policy: Policy, facts: LedgerFacts, _: Translate) -> list[tuple[str, int]]:
    """The people whose objection is in force, as the policy treats them: honoured, or recorded but not
    honoured, by the country the export gives each (none: the policy's unknown_country, CONTRACT §3).
    Where that cannot be told (no export read, or a person not in it), they are counted as such."""
    honouring = [j.honour_objections for j in policy.jurisdictions]
    if all(honouring):
        return [(_("people whose objection is in force"), facts.objecting_now)]
    honoured_label = _("people whose objection is honoured under this policy")
    ignored_label = _("people whose objection is recorded but not honoured under this policy")
    if not any(honouring):
        return [(honoured_label, 0), (ignored_label, facts.objecting_now)]
    unknown_label = _("people whose objection is recorded, in a jurisdiction this document cannot tell")
    if facts.objecting_by_country is None:
        return [(unknown_label, facts.objecting_now)]
    honoured = sum(n for c, n in facts.objecting_by_country.items() if policy.jurisdiction_for(c).honour_objections)
    found = sum(facts.objecting_by_country.values())
    rows = [(honoured_label, honoured), (ignored_label, found - honoured)]
    return rows + ([(unknown_label, facts.objecting_now - found)] if facts.objecting_now > found else [])


def _facts_section(facts: LedgerFacts, policy: Policy, lang: str = "en") -> Section:
    _ = gettext(lang)
    rows = [
        (_("people told (at least one notice)"), facts.notified),
        *_objection_rows(policy, facts, _),
        (_("people whose consent is in force"), facts.consenting_now),
        (_("people who asked for erasure"), facts.erasure_requests),
        (_("training snapshots recorded"), facts.snapshots),
        (_("models registered"), facts.models),
    ]
    blocks = [
        p(_("Read from the consent ledger up to event #%(event)s, when this document was generated.",
            event=facts.watermark)),
        table((_("fact"), _("people or items")), [(label, _number(n, lang)) for label, n in rows]),
    ]
    honoured = [j.name for j in policy.jurisdictions if j.honour_objections]
    if facts.objecting_by_country is None and 0 < len(honoured) < len(policy.jurisdictions):
        blocks.append(p(_("The ledger holds no countries: without the platform export this document cannot tell "
                          "which objections the policy honours, as it honours them in %(jurisdictions)s only.",
                          jurisdictions=", ".join(honoured))))
    return Section(_("Facts from the ledger"), tuple(blocks), "ledger")


# -- the record of processing (Art. 30) --------------------------------------------------------


def _data_subjects(policy: Policy, _: Translate) -> list[str]:
    items = [_("Users of the platform whose content is public and who meet the age rule: %(age_rule)s.",
               age_rule=_age_rule(policy, _))]
    if "photo" in policy.kinds:
        items.append({
            TaggedPeople.require: _("People tagged in photos: a photo is used only if every tagged person could be "
                                    "used too."),
            TaggedPeople.blur: _("People tagged in photos: their faces are blurred when they could not be used "
                                 "themselves."),
            TaggedPeople.ignore: _("People tagged in photos: they are NOT checked; photos of them are used whatever "
                                   "they said."),
        }[policy.tagged_people])
    items.append(_("People who appear or are named in public content without being tagged (see the LIA)."))
    return items


def _objections_take_effect(policy: Policy, _: Translate) -> str:
    """When an objection takes effect: at once, where the policy honours objections; elsewhere never."""
    honoured = [j.name for j in policy.jurisdictions if j.honour_objections]
    ignored = [j.name for j in policy.jurisdictions if not j.honour_objections]
    if not ignored:
        return _("Objections need no reason and take effect the moment they are received.")
    if not honoured:
        return _("Objections are recorded but not honoured: this policy honours them in no jurisdiction.")
    return _("Objections need no reason and take effect the moment they are received in %(jurisdictions)s; in "
             "%(others)s they are recorded but not honoured.",
             jurisdictions=", ".join(honoured), others=", ".join(ignored))


def _purged(policy: Policy, _: Translate) -> str:
    """Who is taken out of existing snapshots (a purge applies the policy): objectors only where it honours them."""
    honoured = [j.name for j in policy.jurisdictions if j.honour_objections]
    if len(honoured) == len(policy.jurisdictions):
        return _("The consent ledger is kept for as long as any snapshot or model built under it exists: it is the "
                 "proof of what each person said and when. People who object or ask for erasure are purged from "
                 "existing training snapshots.")
    if not honoured:
        return _("The consent ledger is kept for as long as any snapshot or model built under it exists: it is the "
                 "proof of what each person said and when. People who ask for erasure are purged from existing "
                 "training snapshots.")
    return _("The consent ledger is kept for as long as any snapshot or model built under it exists: it is the "
             "proof of what each person said and when. People who ask for erasure, and people in "
             "%(jurisdictions)s who object, are purged from existing training snapshots.",
             jurisdictions=", ".join(honoured))


def _security_measures(policy: Policy, _: Translate) -> Block:
    return ul(
        _("Every decision records the policy hash and the ledger position it was made against, and can be re-run."),
        _("The ledger is append-only, with gap-free sequence numbers; a person’s current state is updated in the "
          "same transaction."),
        _objections_take_effect(policy, _),
        _("Sign-in and one-click objection links are signed and expire; sessions use signed cookies."),
        _("API keys of platform clients are stored hashed and checked on every request; revoking one takes effect "
          "at once."),
        _("Passwords are never printed (database URLs are shown without them)."),
        _("Private messages can never be selected: a policy that lists them is refused."),
    )


def record_of_processing(policy: Policy, facts: LedgerFacts, c: Controller, lang: str = "en", *,
                         generated: datetime | None = None) -> Doc:
    _ = gettext(_served(lang))
    c = c.localized(_)
    sections = (
        Section(_("Controller"), (table(("", ""), [(_("controller"), c.name), (_("contact"), c.contact),
                                                   (_("data protection officer"), c.dpo)]),), "controller"),
        Section(
            _("Purpose of the processing"),
            (
                p(_("Training AI systems: %(platform)s uses the public content of its users to train and improve AI "
                    "models.", platform=c.platform)),
                p(_("Which content may be used, whose, and on which legal basis is fixed by the policy "
                    "“%(policy)s” (%(hash)s), which consentry applies to every item at each training cut-off.",
                    **_policy(policy))),
                _jurisdiction_table(policy, _),
                _unknown_country(policy, _),
            ),
            "purpose",
        ),
        Section(_("Categories of data subjects"), (ul(*_data_subjects(policy, _)),), "subjects"),
        Section(
            _("Categories of personal data"),
            (
                ul(*[_kind_description(k, _) for k in policy.kinds]),
                p(" ".join((
                    _("Only content whose visibility is public is used."),
                    _since(policy, _),
                    _("Private messages and anything not public are never used."),
                    _("Each item keeps its author’s id, its creation time and tags, so it can be removed later."),
                ))),
                todo(_("[assess: public content can reveal special categories of personal data (health, religion, "
                       "politics, sexual orientation; Art. 9 GDPR). Record how this is handled.]")),
            ),
            "data",
        ),
        Section(_("Recipients"), (p(c.recipients),), "recipients"),
        Section(_("Transfers to third countries"), (p(c.transfers),), "transfers"),
        Section(
            _("Retention"),
            (
                p(c.retention),
                p(_purged(policy, _)),
            ),
            "retention",
        ),
        Section(
            _("Technical and organisational security measures"),
            (
                _security_measures(policy, _),
                todo(_("[add the platform’s own measures: access control to snapshots, encryption at rest, "
                       "logging]")),
            ),
            "security",
        ),
        _facts_section(facts, policy, _.lang),
    )
    return Doc(
        "record-of-processing",
        _("Record of processing activities (Art. 30 GDPR): training AI systems"),
        " ".join((_("Generated on %(date)s (UTC) from the policy “%(policy)s” (%(hash)s).",
                    date=_generated_on(generated, _.lang), **_policy(policy)),
                  _("Text in [brackets] must be completed by the controller."))),
        sections,
        _.lang,
    )


# -- the legitimate interest assessment -----------------------------------------------------------


def _objection_gap(j: Jurisdiction, _: Translate) -> Block:
    where = {"jurisdiction": j.name, "places": places(j.countries, _.lang)}
    if j.basis is Basis.legitimate_interest:
        return gap(_("Objections are NOT honoured in %(jurisdiction)s (%(places)s): people there cannot stop the use "
                     "of their content. Under legitimate interest this is hard to defend (Art. 21 GDPR).", **where))
    return gap(_("Objections are NOT honoured in %(jurisdiction)s (%(places)s); withdrawal of consent still applies.",
                 **where))


def _tagged_rules(policy: Policy, j: Jurisdiction, _: Translate) -> str:
    """The person rules (CONTRACT §3, 6-12) a tagged person in `j` must pass for a photo of them to be used, in the
    engine's terms: age (and age when the photo was posted, where the policy checks it), consent where `j` uses it,
    notice where `j` has a notice period, no objection where `j` honours them, no erasure."""
    age = (_("%(age)s or older at the cut-off, and already when the photo was posted", age=policy.minimum_age)
           if policy.minimum_age_at_posting else _("%(age)s or older at the cut-off", age=policy.minimum_age))
    rules = [age]
    if j.basis is Basis.consent:
        rules.append(_("consenting"))
    if j.notice_days is not None:
        rules.append(_("told"))
    if j.honour_objections:
        rules.append(_("not objecting"))
    rules.append(_("not erased"))
    return ", ".join(rules)


def _tagged_safeguard(policy: Policy, _: Translate) -> str:
    if policy.tagged_people is TaggedPeople.require:
        per = {j.name: _tagged_rules(policy, j, _) for j in policy.jurisdictions}
        rules = (next(iter(per.values())) if len(set(per.values())) == 1
                 else "; ".join(f"{name}: {text}" for name, text in per.items()))
        return _("Tagged people: a photo is used only if every person tagged in it could be used too (%(rules)s).",
                 rules=rules)
    return {
        TaggedPeople.blur: _("Tagged people: a photo of someone who could not be used is kept only with their face "
                             "blurred (transform: blur_faces)."),
        TaggedPeople.ignore: _("Tagged people: not checked."),
    }[policy.tagged_people]


def _third_party(policy: Policy, _: Translate) -> str:
    """Rule 15: what happens when someone without an account objects to a photo that shows them."""
    if not policy.honour_third_party_objections:
        return _("Objections from people without an account who appear in someone else’s photos are NOT honoured: "
                 "their objection is recorded, but the photos are still used.")
    if policy.tagged_people is TaggedPeople.blur:
        return _("Objections from people without an account: someone who appears in another person’s photo can object "
                 "in the privacy center. From the moment they confirm their request, every face in the photo is "
                 "blurred (transform: blur_faces) in training sets built from then on; copies whose faces were not "
                 "blurred are removed from training sets built before, at their next purge.")
    return _("Objections from people without an account: someone who appears in another person’s photo can object in "
             "the privacy center. From the moment they confirm their request, the photo is left out of training sets "
             "built from then on, and removed from training sets built before, at their next purge.")


def _notice_safeguard(policy: Policy, j: Jurisdiction, _: Translate) -> str:
    """Who is told in `j`, as the notice audience has it (notices/audience.py): the people whose own content may
    be used, and the people in others' photos only where the policy checks them (`require`, `blur`); under
    `ignore` a photo of them is used whatever they do, so they are not told."""
    where = {"jurisdiction": j.name, "days": _number(j.notice_days or 0, _.lang)}
    if policy.tagged_people is TaggedPeople.ignore:
        return _("Notice in %(jurisdiction)s: every affected person is told before their content is first used, "
                 "except people who are only tagged in others’ photos: they are NOT told. Minimum notice period in "
                 "days: %(days)s.", **where)
    return _("Notice in %(jurisdiction)s: every affected person is told before their content is first used, "
             "including people tagged in photos. Minimum notice period in days: %(days)s.", **where)


def _jurisdiction_safeguards(policy: Policy, _: Translate) -> tuple[list[str], list[Block]]:
    """Per jurisdiction: what protects people there, and the gaps where nothing does."""
    items: list[str] = []
    gaps: list[Block] = []
    if honoured := [j.name for j in policy.jurisdictions if j.honour_objections]:
        items.append(" ".join((
            _("Right to object: honoured in %(jurisdictions)s.", jurisdictions=", ".join(honoured)),
            _("No reason is asked; the objection applies from the moment it is received, to everything the person "
              "ever posted, and they are purged from existing snapshots."),
        )))
    gaps += [_objection_gap(j, _) for j in policy.jurisdictions if not j.honour_objections]
    for j in policy.jurisdictions:
        if j.basis is Basis.consent:
            items.append(_("%(jurisdiction)s: nothing is used without the person’s recorded consent; withdrawing it "
                           "stops use.", jurisdiction=j.name))
        if j.notice_days is not None:
            items.append(_notice_safeguard(policy, j, _))
        elif j.basis is Basis.legitimate_interest:
            gaps.append(gap(_("No notice is given in %(jurisdiction)s (%(places)s): people there are not told before "
                              "their content is used, so they cannot object in time.",
                              jurisdiction=j.name, places=places(j.countries, _.lang))))
    return items, gaps


def _transform_list(policy: Policy, _: Translate) -> list[tuple[str, bool, str]]:
    """The policy's transforms (policy.Transforms): setting, whether it is on, what it does to a kept item."""
    t = policy.transforms
    return [
        ("redact_emails", t.redact_emails, _("e-mail addresses replaced by [email]")),
        ("redact_phones", t.redact_phones, _("phone numbers replaced by [phone]")),
        ("redact_ibans", t.redact_ibans, _("bank account numbers (IBAN) replaced by [iban]")),
        ("redact_cards", t.redact_cards, _("payment card numbers replaced by [card]")),
        ("mentions", t.mentions, _("@mentions of people who may not be used hidden")),
        ("strip_exif", t.strip_exif, _("photos re-encoded without their metadata (EXIF, GPS, comments)")),
    ]


def _transforms(policy: Policy, _: Translate) -> str:
    """What a snapshot build does to the items it keeps, from the policy's transforms (the manifest records the
    same), so that the LIA never says "none" of a policy that redacts."""
    done = [text for _setting, on, text in _transform_list(policy, _) if on]
    if policy.tagged_people is TaggedPeople.blur:
        done.append(_("faces of tagged people who could not be used blurred"))
    if not done:
        return _("Transforms applied to kept items: none (no redaction or blurring is configured in this policy).")
    return _("Transforms applied to kept items: %(transforms)s.", transforms="; ".join(done))


def _transform_gaps(policy: Policy, _: Translate) -> list[Block]:
    """Each transform the policy turns off, named as a gap: consentry's recommended safeguards turn them all on."""
    return [gap(_("Not applied to kept items, because the policy turns it off (%(setting)s: false): %(transform)s.",
                  setting=setting, transform=text))
            for setting, on, text in _transform_list(policy, _) if not on]


def _content_safeguards(policy: Policy, _: Translate) -> tuple[list[str], list[Block]]:
    """Age, tagged people, objections of people without an account (rule 15), transforms and kinds: the same
    everywhere."""
    items = [_("Minimum age: %(age_rule)s.", age_rule=_age_rule(policy, _)), _tagged_safeguard(policy, _)]
    if policy.honour_third_party_objections:
        items.append(_third_party(policy, _))
    gaps: list[Block] = []
    if not policy.minimum_age_at_posting:
        gaps.append(gap(_("Age at posting is not checked: content posted as a child by someone now %(age)s or older "
                          "is used.", age=policy.minimum_age)))
    if policy.tagged_people is TaggedPeople.ignore and "photo" in policy.kinds:
        gaps.append(gap(_("People tagged in photos are not checked: a photo of a child, or of someone who objected, "
                          "is used.")))
    if not policy.honour_third_party_objections:
        gaps.append(gap(_third_party(policy, _)))
    items.append(_transforms(policy, _))
    gaps += _transform_gaps(policy, _)
    items.append(" ".join((_("Content: only public content of these kinds: %(kinds)s; private messages never.",
                             kinds=_kinds(policy, _)), _since(policy, _))))
    return items, gaps


def safeguards(policy: Policy, lang: str = "en") -> Section:
    """What the policy ACTUALLY does to protect people, jurisdiction by jurisdiction, with its gaps."""
    _ = gettext(_served(lang))
    items, gaps = _jurisdiction_safeguards(policy, _)
    more_items, more_gaps = _content_safeguards(policy, _)
    blocks = [
        p(_("This is what the policy “%(policy)s” (%(hash)s) enforces, for every item at every cut-off.",
            **_policy(policy))),
        _jurisdiction_table(policy, _),
        _unknown_country(policy, _),
        ul(*items, *more_items),
    ]
    if gaps := gaps + more_gaps:
        blocks += [p(_("Gaps in this policy (%(count)s):", count=_number(len(gaps), _.lang))), *gaps]
    else:
        blocks.append(p(_("No gaps found against consentry’s recommended safeguards.")))
    return Section(_("Safeguards enabled in the policy"), tuple(blocks), "safeguards")


def _not_tagged(policy: Policy, _: Translate) -> Section:
    """The people the record of processing sends to the LIA: in content without being tagged, or without an
    account. What the policy does for them is only rule 15."""
    return Section(
        _("People in content who are not tagged or have no account"),
        (
            p(_("People who appear or are named in public content without being tagged, and people without an "
                "account, are not checked by the person rules (age, notice, objection), which apply only to people "
                "with an account.")),
            p(_third_party(policy, _)),
        ),
        "others",
    )


def _purpose(c: Controller, _: Translate) -> str:
    """The LIA's purpose sentence; it may open with the default platform placeholder, which then takes a capital
    (past a leading [). A platform's own name is written as given."""
    text = _("%(platform)s wants to train AI models on the public content its users share.", platform=c.platform)
    if c.platform != _(Controller.platform):
        return text
    i = next((n for n, ch in enumerate(text) if ch.isalpha()), 0)
    return text[:i] + text[i:i + 1].upper() + text[i + 1:]


def legitimate_interest_assessment(policy: Policy, facts: LedgerFacts, c: Controller, lang: str = "en", *,
                                   generated: datetime | None = None) -> Doc:
    _ = gettext(_served(lang))
    c = c.localized(_)
    li = [j.name for j in policy.jurisdictions if j.basis is Basis.legitimate_interest]
    sections = (
        Section(
            _("Scope"),
            (p(_("Legitimate interest is the legal basis in: %(jurisdictions)s.", jurisdictions=", ".join(li)) if li
               else _("This policy relies on consent everywhere: no legitimate interest assessment is needed, but one "
                      "is kept here for the record.")),),
            "scope",
        ),
        Section(
            _("1. Purpose test"),
            (
                p(_purpose(c, _)),
                todo(_("[the interest pursued: which models, which features, who benefits, and why that interest is "
                       "legitimate]")),
            ),
            "purpose",
        ),
        Section(
            _("2. Necessity test"),
            (
                p(_("Only what the policy lists is used. Kinds of public content: %(kinds)s. Age rule: %(age_rule)s.",
                    kinds=_kinds(policy, _), age_rule=_age_rule(policy, _))),
                todo(_("[why this content is needed, and why less of it, synthetic data or licensed data would not "
                       "do]")),
            ),
            "necessity",
        ),
        Section(
            _("3. Balancing test"),
            (
                p(_("Public posts were shared to be seen by other people, not necessarily to train AI systems; many "
                    "users posted before such use was announced. Models may memorise and reproduce text and faces.")),
                todo(_("[reasonable expectations of users in each jurisdiction, the impact on them, and on people who "
                       "appear in content]")),
            ),
            "balancing",
        ),
        safeguards(policy, _.lang),
        _not_tagged(policy, _),
        _facts_section(facts, policy, _.lang),
        Section(_("Conclusion"), (todo(_("[the DPO’s conclusion: does the interest outweigh the impact, given the "
                                         "safeguards and gaps above?]")),), "conclusion"),
    )
    return Doc(
        "legitimate-interest-assessment",
        _("Legitimate Interest Assessment (draft): training AI systems"),
        " ".join((_("A draft generated on %(date)s (UTC) from the policy “%(policy)s” (%(hash)s).",
                    date=_generated_on(generated, _.lang), **_policy(policy)),
                  _("The safeguards section is exactly what the policy enforces; text in [brackets] is for the "
                    "controller to write."))),
        sections,
        _.lang,
    )


# -- the notice ---------------------------------------------------------------------------------------


def _notice_section(policy: Policy, j: Jurisdiction, c: Controller, cutoff: datetime, link: str,
                    _: Translate) -> Section:
    where = {"jurisdiction": j.name, "places": places(j.countries, _.lang)}
    if j.notice_days is None:
        return Section(_("%(jurisdiction)s: no notice", jurisdiction=j.name),
                       (p(_("This policy sends no notice in %(jurisdiction)s (%(places)s).", **where)),), j.name)
    subject, text, _html = render_notice(_, policy, cutoff, link, c.platform, j.name)
    blocks = [p(_("Subject: %(subject)s", subject=subject)), *(p(para) for para in text.strip().split("\n\n"))]
    if not j.honour_objections:
        blocks.append(gap(_("This notice promises a right to object that the policy does not honour in "
                            "%(jurisdiction)s: fix the policy or the notice before sending it.", jurisdiction=j.name)))
    heading = _("%(jurisdiction)s (%(places)s), notice period in days: %(days)s",
                days=_number(j.notice_days, _.lang), **where)
    return Section(heading, tuple(blocks), j.name)


def _notice_intro(policy: Policy, cutoff: datetime, marker: str, _: Translate) -> str:
    language = locale(_.lang).get_display_name(_.lang)
    return " ".join((
        _("The text consentry sends (template version %(version)s; language: %(language)s) for a cut-off on "
          "%(date)s, under the policy “%(policy)s” (%(hash)s).", version=TEMPLATE_VERSION, language=language,
          date=_date(utc(cutoff).date(), _.lang), **_policy(policy)),
        _("%(marker)s is each person’s one-click objection link.", marker=marker),
    ))


def notice(policy: Policy, c: Controller, cutoff: datetime, language: str) -> Doc:
    _ = gettext(_served(language))
    c = c.localized(_)
    marker = _("[personal-link]")
    link = f"{c.privacy_center.rstrip('/')}/o/{marker}"
    return Doc(
        "notice",
        _("Notice to people: how their public content will be used to train AI"),
        _notice_intro(policy, cutoff, marker, _),
        tuple(_notice_section(policy, j, c, cutoff, link, _) for j in policy.jurisdictions),
        _.lang,
    )


# -- writing -----------------------------------------------------------------------------------


def render(doc: Doc, fmt: str) -> str:
    _ = gettext(doc.lang)
    env = environment(html=fmt == "html")
    return env.get_template(f"document.{fmt}.j2").render(doc=doc, gap_label=_("Gap:"))


def write_documents(docs: Documents, out_dir: Path) -> list[Path]:
    """NAME.md and NAME.html for each document; each file replaced atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for doc in docs.docs:
        for fmt in ("md", "html"):
            path = out_dir / f"{doc.slug}.{fmt}"
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(render(doc, fmt), encoding="utf-8")
            os.replace(tmp, path)
            written.append(path)
    return written
