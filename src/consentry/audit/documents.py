"""GDPR paperwork written from the policy that actually runs, and the ledger.

Three documents, each as Markdown and HTML: the Art. 30 record of processing,
a draft Legitimate Interest Assessment, and the notice people receive. They
are built from the same Policy object the engine compiles, so a change of
policy changes the documents; what only the controller can know is left as a
visible [placeholder] rather than invented.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from ..i18n import LANGUAGES, gettext
from ..ledger.tables import head, person_state
from ..notices.text import TEMPLATE_VERSION, render_notice
from ..policy import Basis, Jurisdiction, Policy, TaggedPeople
from ..policy.model import EVERYWHERE_ELSE
from ..policy.regions import EEA
from ..snapshots.tables import models, snapshots
from ..timeutil import iso
from .render import environment

KIND_WORDS = {
    "post": "posts (text, and any images or links in them)",
    "photo": "photos (images, which may show faces and places)",
    "caption": "captions of photos (text)",
    "comment": "comments on posts (text)",
    "story": "stories (short-lived posts: text, images, video)",
    "video": "videos",
    "reel": "reels (short videos)",
}


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

    def section(self, anchor: str) -> Section:
        return next(s for s in self.sections if s.anchor == anchor)


# -- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Controller:
    """Who is responsible: from CLI options; unset fields stay visible placeholders."""

    name: str = "[controller: legal name and address]"
    contact: str = "[contact for data protection questions]"
    dpo: str = "[data protection officer: name and contact]"
    platform: str = "the platform"
    privacy_center: str = "https://privacy.example.org"
    recipients: str = "[recipients: internal AI teams, processors (e.g. cloud and training providers)]"
    transfers: str = "[transfers outside the EEA: countries and safeguards, e.g. adequacy decision or SCCs; or 'none']"
    retention: str = "[how long snapshots and models are kept, and when they are deleted]"


@dataclass(frozen=True)
class LedgerFacts:
    watermark: int
    objecting_now: int  # latest objection event is `objected`
    consenting_now: int
    notified: int
    erasure_requests: int
    snapshots: int
    models: int


def ledger_facts(engine: Engine) -> LedgerFacts:
    ps = person_state.c
    with engine.connect() as conn:
        def count(where) -> int:  # noqa: ANN001
            return int(conn.execute(select(func.count()).select_from(person_state).where(where)).scalar_one())

        return LedgerFacts(
            watermark=int(conn.execute(select(head.c.last_seq).where(head.c.id == 1)).scalar_one()),
            objecting_now=count(ps.objection == "objected"),
            consenting_now=count(ps.consent == "consent_given"),
            notified=count(ps.first_notified_us.is_not(None)),
            erasure_requests=count(ps.erasure_us.is_not(None)),
            snapshots=int(conn.execute(select(func.count()).select_from(snapshots)).scalar_one()),
            models=int(conn.execute(select(func.count()).select_from(models)).scalar_one()),
        )


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
    """The three documents for `policy`. `cutoff` is the date the notice announces
    (default: today plus the longest notice period, the earliest lawful start)."""
    controller = controller or Controller()
    now = datetime.now(UTC)
    if cutoff is None:
        days = max((j.notice_days or 0 for j in policy.jurisdictions), default=0)
        cutoff = (now + timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    docs = [
        record_of_processing(policy, facts, controller),
        legitimate_interest_assessment(policy, facts, controller),
        notice(policy, controller, cutoff, language),
    ]
    return Documents(policy, now, docs)


def _where(j: Jurisdiction) -> str:
    if j.countries == [EVERYWHERE_ELSE]:
        return "everywhere else, and people whose country is unknown"
    codes = set(j.countries)
    parts = []
    if set(EEA) <= codes:
        parts.append("EU/EEA")
        codes -= set(EEA)
    parts.extend(sorted(codes))
    return ", ".join(parts)


def _basis(j: Jurisdiction) -> str:
    return "consent (opt-in)" if j.basis is Basis.consent else "legitimate interest (Art. 6(1)(f))"


def _notice(j: Jurisdiction) -> str:
    return f"{j.notice_days} days before use" if j.notice_days is not None else "none"


def _age_rule(policy: Policy) -> str:
    rule = f"{policy.minimum_age} or older at the cut-off"
    return rule + (", and already when they posted" if policy.minimum_age_at_posting else "")


def _policy_line(policy: Policy) -> str:
    return f"Policy '{policy.name}' ({policy.hash})"


def _jurisdiction_table(policy: Policy) -> Block:
    return table(
        ("jurisdiction", "where", "legal basis", "objections honoured", "notice"),
        [(j.name, _where(j), _basis(j), "yes" if j.honour_objections else "NO", _notice(j)) for j in policy.jurisdictions],
    )


def _facts_section(facts: LedgerFacts) -> Section:
    return Section(
        "Facts from the ledger",
        (
            p(f"Read from the consent ledger up to event #{facts.watermark}, when this document was generated."),
            table(
                ("fact", "people or items"),
                [
                    ("people told (at least one notice)", f"{facts.notified:,}"),
                    ("people whose objection is in force", f"{facts.objecting_now:,}"),
                    ("people whose consent is in force", f"{facts.consenting_now:,}"),
                    ("people who asked for erasure", f"{facts.erasure_requests:,}"),
                    ("training snapshots recorded", f"{facts.snapshots:,}"),
                    ("models registered", f"{facts.models:,}"),
                ],
            ),
        ),
        "ledger",
    )


def _data_subjects(policy: Policy) -> list[str]:
    items = [f"Users of {{platform}} aged {_age_rule(policy)}, whose content is public."]
    if "photo" in policy.kinds:
        items.append({
            TaggedPeople.require: "People tagged in photos: a photo is used only if every tagged person could be used too.",
            TaggedPeople.blur: "People tagged in photos: their faces are blurred when they could not be used themselves.",
            TaggedPeople.ignore: "People tagged in photos: they are NOT checked; photos of them are used whatever they said.",
        }[policy.tagged_people])
    items.append("People who appear or are named in public content without being tagged (see the LIA).")
    return items


def record_of_processing(policy: Policy, facts: LedgerFacts, c: Controller) -> Doc:
    kinds = [KIND_WORDS.get(k, k) for k in policy.kinds]
    window = f"created on or after {policy.content_since.isoformat()}" if policy.content_since else "of any age"
    sections = (
        Section("Controller", (table(("", ""), [("controller", c.name), ("contact", c.contact), ("data protection officer", c.dpo)]),), "controller"),
        Section(
            "Purpose of the processing",
            (
                p(f"Training AI systems: using public content of {c.platform}'s users to train and improve AI models."),
                p(f"Which content may be used, whose, and on which legal basis is fixed by {_policy_line(policy)}, "
                  "applied to every item by consentry at each training cut-off."),
                _jurisdiction_table(policy),
            ),
            "purpose",
        ),
        Section("Categories of data subjects", (ul(*[x.replace("{platform}", c.platform) for x in _data_subjects(policy)]),), "subjects"),
        Section(
            "Categories of personal data",
            (
                ul(*[f"Public {k}" for k in kinds]),
                p(f"Only content whose visibility is public, {window}. Private messages and anything not public are never used. "
                  "Each item keeps its author's id, its creation time and tags, so it can be removed later."),
                todo("[assess: public content can reveal special categories of data (health, religion, politics, sexual "
                     "orientation; Art. 9). Record how this is handled.]"),
            ),
            "data",
        ),
        Section("Recipients", (p(c.recipients),), "recipients"),
        Section("Transfers to third countries", (p(c.transfers),), "transfers"),
        Section(
            "Retention",
            (
                p(c.retention),
                p("The consent ledger is kept for as long as any snapshot or model built under it exists: it is the proof "
                  "of what each person said and when. People who object or ask for erasure are purged from existing "
                  "training snapshots."),
            ),
            "retention",
        ),
        Section(
            "Technical and organisational security measures",
            (
                ul(
                    "Every decision records the policy hash and the ledger position it was made against, and can be re-run.",
                    "The ledger is append-only, with gap-free sequence numbers; a person's current state is updated in the same transaction.",
                    "Objections need no reason and take effect the moment they are received.",
                    "Sign-in and one-click objection links are signed and expire; sessions use signed cookies.",
                    "API keys of platform clients are stored hashed and checked on every request; revoking one takes effect at once.",
                    "Passwords are never printed (database URLs are shown without them).",
                    "Private messages can never be selected: a policy that lists them is refused.",
                ),
                todo("[add the platform's own measures: access control to snapshots, encryption at rest, logging]"),
            ),
            "security",
        ),
        _facts_section(facts),
    )
    return Doc(
        "record-of-processing",
        "Record of processing activities (GDPR Art. 30): training AI systems",
        f"Generated from {_policy_line(policy)}. Text in [brackets] must be completed by the controller.",
        sections,
    )


def safeguards(policy: Policy) -> Section:
    """What the policy ACTUALLY does to protect people, jurisdiction by jurisdiction, with its gaps."""
    blocks: list[Block] = [p(f"As enforced by {_policy_line(policy)} for every item at every cut-off."), _jurisdiction_table(policy)]
    items: list[str] = []
    gaps: list[Block] = []
    honoured = [j.name for j in policy.jurisdictions if j.honour_objections]
    not_honoured = [j for j in policy.jurisdictions if not j.honour_objections]
    if honoured:
        items.append(
            "Right to object: honoured in " + ", ".join(honoured) + ". No reason is asked; the objection applies from "
            "the moment it is received, to everything the person ever posted, and they are purged from existing snapshots."
        )
    for j in not_honoured:
        gaps.append(gap(f"Objections are NOT honoured in {j.name} ({_where(j)}): people there cannot stop the use of "
                        "their content. Under legitimate interest this is hard to defend (Art. 21)."
                        if j.basis is Basis.legitimate_interest else
                        f"Objections are NOT honoured in {j.name} ({_where(j)}); consent withdrawal still applies."))
    for j in policy.jurisdictions:
        if j.basis is Basis.consent:
            items.append(f"{j.name}: nothing is used without the person's recorded consent; withdrawing it stops use.")
        if j.notice_days is not None:
            items.append(f"Notice in {j.name}: every affected person is told at least {j.notice_days} days before their "
                         "content is first used, including people tagged in photos.")
        elif j.basis is Basis.legitimate_interest:
            gaps.append(gap(f"No notice is given in {j.name} ({_where(j)}): people there are not told before their "
                            "content is used, so they cannot object in time."))
    items.append(f"Minimum age: {_age_rule(policy)}.")
    if not policy.minimum_age_at_posting:
        gaps.append(gap(f"Age at posting is not checked: content posted as a child by someone now {policy.minimum_age} "
                        "or older is used."))
    items.append({
        TaggedPeople.require: "Tagged people: a photo is used only if every person tagged in it could be used too "
                              "(adult, told, not objecting, not erased).",
        TaggedPeople.blur: "Tagged people: a photo of someone who could not be used is kept only with their face "
                           "blurred (transform: blur_faces).",
        TaggedPeople.ignore: "Tagged people: not checked.",
    }[policy.tagged_people])
    if policy.tagged_people is TaggedPeople.ignore and "photo" in policy.kinds:
        gaps.append(gap("People tagged in photos are not checked: a photo of a child, or of someone who objected, is used."))
    transforms = ["face blurring of tagged people who could not be used"] if policy.tagged_people is TaggedPeople.blur else []
    items.append("Transforms applied to kept items: " + (", ".join(transforms) if transforms else
                                                          "none (no redaction or blurring is configured in this policy)") + ".")
    items.append("Content: public " + ", ".join(policy.kinds) + " only; private messages never"
                 + (f"; only content created on or after {policy.content_since.isoformat()}" if policy.content_since else "") + ".")
    blocks.append(ul(*items))
    if gaps:
        blocks.append(p(f"Gaps in this policy ({len(gaps)}):"))
        blocks.extend(gaps)
    else:
        blocks.append(p("No gaps found against consentry's recommended safeguards."))
    return Section("Safeguards enabled in the policy", tuple(blocks), "safeguards")


def legitimate_interest_assessment(policy: Policy, facts: LedgerFacts, c: Controller) -> Doc:
    li = [j.name for j in policy.jurisdictions if j.basis is Basis.legitimate_interest]
    sections = (
        Section(
            "Scope",
            (p(f"Legitimate interest is the legal basis in: {', '.join(li)}." if li else
               "This policy relies on consent everywhere: no legitimate interest assessment is needed, but one is kept "
               "here for the record."),),
            "scope",
        ),
        Section(
            "1. Purpose test",
            (
                p(f"{c.platform[:1].upper()}{c.platform[1:]} wants to train AI models on the public content its users share."),
                todo("[the interest pursued: which models, which features, who benefits, and why that interest is legitimate]"),
            ),
            "purpose",
        ),
        Section(
            "2. Necessity test",
            (
                p("Only what the policy lists is used: public " + ", ".join(policy.kinds) + f", of people aged {_age_rule(policy)}."),
                todo("[why this content is needed, and why less of it, synthetic data or licensed data would not do]"),
            ),
            "necessity",
        ),
        Section(
            "3. Balancing test",
            (
                p("Public posts were shared to be seen by other people, not necessarily to train AI systems; many users "
                  "posted before such use was announced. Models may memorise and reproduce text and faces."),
                todo("[reasonable expectations of users in each jurisdiction, the impact on them, and on people who appear in content]"),
            ),
            "balancing",
        ),
        safeguards(policy),
        _facts_section(facts),
        Section("Conclusion", (todo("[the DPO's conclusion: does the interest outweigh the impact, given the safeguards and gaps above?]"),), "conclusion"),
    )
    return Doc(
        "legitimate-interest-assessment",
        "Legitimate Interest Assessment (draft): training AI systems",
        f"A draft generated from {_policy_line(policy)}. The safeguards section is exactly what the policy enforces; "
        "text in [brackets] is for the controller to write.",
        sections,
    )


def notice(policy: Policy, c: Controller, cutoff: datetime, language: str) -> Doc:
    lang = language if language in LANGUAGES else "en"
    _ = gettext(lang)
    link = f"{c.privacy_center.rstrip('/')}/o/[personal-link]"
    sections = []
    for j in policy.jurisdictions:
        if j.notice_days is None:
            sections.append(Section(
                f"{j.name}: no notice",
                (p(f"This policy sends no notice in {j.name} ({_where(j)})."),),
                j.name,
            ))
            continue
        subject, text, _html = render_notice(_, policy, cutoff, link, c.platform, j.name)
        blocks: list[Block] = [p(f"Subject: {subject}")]
        blocks.extend(p(para) for para in text.strip().split("\n\n"))
        if not j.honour_objections:
            blocks.append(gap(f"This notice promises a right to object that the policy does not honour in {j.name}: "
                              "fix the policy or the notice before sending it."))
        sections.append(Section(f"{j.name} ({_where(j)}), sent {j.notice_days} days before use", tuple(blocks), j.name))
    return Doc(
        "notice",
        "Notice to people: how their public content will be used to train AI",
        f"The text consentry sends (template version {TEMPLATE_VERSION}, language '{lang}'), for a cut-off on "
        f"{iso(cutoff)[:10]}, under {_policy_line(policy)}. [personal-link] is each person's one-click objection link.",
        tuple(sections),
    )


# -- writing -----------------------------------------------------------------------------------


def render(doc: Doc, fmt: str) -> str:
    env = environment(html=fmt == "html")
    return env.get_template(f"document.{fmt}.j2").render(doc=doc)


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
