"""What a person sees about themselves: their items and the photos they are in,
each with its decision at the cut-off (as a build made now would hold it once
the cut-off is past), their ledger history, and a download of all of it. Decided by the same compiled SQL as `evaluate`, scoped
to the people involved so a page does not evaluate the whole platform."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..engine.compile import Compiler
from ..engine.duck import connect, load_inputs
from ..engine.rules import MEANING, Reason
from ..ledger import Ledger, StoredEvent
from ..policy import Policy, TaggedPeople
from ..sources import Export
from ..sources.store import StorePath, inside
from ..sqltext import quote
from ..timeutil import iso
from .directory import Person


#: Why an item is not used, when it is because of the reader: their own items
#: (the page speaks to them, not of "the person") and photos others posted;
#: and, under `tagged_people: blur`, that a photo of someone else is used only
#: with the reader's face blurred (`blur_faces`: kept here, where the catalog
#: check finds the phrases of this page).
ABOUT_YOU: dict[str, str] = {
    Reason.content_deleted: "it has been deleted",
    Reason.account_deleted: "you asked for erasure or deleted your account",
    Reason.age_unknown: "your age is unknown",
    Reason.minor: "you are under the minimum age",
    Reason.minor_at_posting: "you were under the minimum age when it was posted",
    Reason.no_consent: "you have not given consent",
    Reason.objected: "you objected",
    Reason.not_notified: "you were not told early enough before use",
    "blur_faces": "it may be used, with your face blurred",
}
NOT_ABOUT_YOU = "it is not used, for reasons that do not concern you"

#: The download's README.txt and decisions.json's note: msgids (scripts/extract_messages.py lists them),
#: written in the person's language by the `translate` the privacy center passes to `data_archive`.
ARCHIVE_README = (
    "Your data as held by this platform's AI-training consent system (consentry).\n"
    "\n"
    "profile.json: your account.\n"
    "items.json: what you posted.\n"
    "tagged_in.json: items of others in which you are tagged.\n"
    "ledger.json: every notice, objection and consent on record.\n"
    "decisions.json: whether each item may be used for training at the cut-off, and why.\n"
    "training_sets.json: the training sets that hold or held your items, when they were removed, and the models "
    "trained on them.\n"
)
DECISIONS_NOTE = ("For photos of others in which you are tagged, the reason (tagged_person) is given only when it "
                  "is about you, with your own rule behind it in about_you.")


@dataclass(frozen=True)
class ItemDecision:
    """One item on a person's page. For a photo someone else posted and the
    reader is tagged in, only what is the reader's to know: that it exists,
    whether it is used, and the reason only when it is about the reader
    (`reason` is then theirs, or None); never its text nor anything about
    its author."""

    item_id: str
    role: str  # author | tagged
    kind: str
    visibility: str | None  # None for tagged items: not the reader's
    created_at: datetime
    text: str | None  # None for tagged items
    eligible: bool
    reason: str | None  # tagged items: the reader's own rule, when it keeps the photo out or blurs their face
    media_path: str | None = None  # the reader's own photos only: a thumbnail is theirs to see

    @property
    def blurred(self) -> bool:
        """A photo of someone else used only with the reader's face blurred
        (`tagged_people: blur`): used, and a rule of the reader's fails."""
        return self.role == "tagged" and self.eligible and self.reason is not None

    @property
    def codes(self) -> dict[str, str | bool | None]:
        """The reason as `evaluate` and `explain` give it, and for a photo of
        someone else the reader's own failing rule behind it (`about_you`):
        the engine's code for it is `tagged_person` (rule 14), never the
        reader's rule. When a rule of the author's or the item's comes first,
        the engine gives that one; the reader is told tagged_person all the
        same, since the other is not theirs to know. Under blur their rule
        comes with `blur_faces` on a photo that is used."""
        if self.role == "author":
            return {"reason": self.reason}
        if self.blurred:
            return {"reason": None, "about_you": self.reason, "blur_faces": True}
        return {"reason": str(Reason.tagged_person) if self.reason else None, "about_you": self.reason}

    @property
    def excerpt(self) -> str | None:
        """The start of the reader's own text, enough to recognise it."""
        if not self.text:
            return None
        words = " ".join(self.text.split())
        return words if len(words) <= 90 else words[:89].rsplit(" ", 1)[0] + " …"

    @property
    def meaning(self) -> str:
        if self.role == "tagged" and self.reason is None:
            return MEANING[Reason.eligible] if self.eligible else NOT_ABOUT_YOU
        if self.blurred:
            return ABOUT_YOU["blur_faces"]
        if self.role == "tagged":
            return ABOUT_YOU[self.reason]  # type: ignore[index]
        return ABOUT_YOU.get(self.reason, MEANING[Reason(self.reason)])  # type: ignore[arg-type]

    def as_json(self) -> dict:
        out = {
            "item_id": self.item_id,
            "role": self.role,
            "kind": self.kind,
            "created_at": iso(self.created_at),
            "eligible": self.eligible,
            **self.codes,
            "meaning": self.meaning,
        }
        if self.role == "author":
            out["visibility"] = self.visibility
            out["text"] = self.text
        return out


@dataclass
class PersonView:
    person: Person
    at: datetime
    policy: Policy
    items: list[ItemDecision] = field(default_factory=list)
    history: list[StoredEvent] = field(default_factory=list)
    now: datetime | None = None  # when it was decided: after `at`, as a build made then

    @property
    def used(self) -> int:
        return sum(1 for i in self.items if i.eligible)

    @property
    def cutoff_passed(self) -> bool:
        """The cut-off is behind: what is said is what a build at it made now would hold."""
        return self.now is not None and self.now > self.at


def person_view(export: Export, ledger: Ledger, policy: Policy, at: datetime, person: Person,
                now: datetime | None = None) -> PersonView:
    """The person's items and the photos they are tagged in, as a snapshot
    built now at the cut-off `at` would hold them: the engine's decisions at
    `at`, then (as `snapshots.build` does) whoever fails a person rule now and
    the third-party objections in force now, by the engine's own SQL at
    max(at, now) (`Compiler.failing_sql`, `third_party_cte`)."""
    uid = person.user_id
    now = max(at, now or datetime.now(UTC))
    blur = policy.tagged_people is TaggedPeople.blur
    require = policy.tagged_people is TaggedPeople.require
    con = connect()
    try:
        export.register(con)
        scope = [
            r[0]
            for r in con.execute(
                """SELECT ? UNION SELECT t.tagged_user_id FROM tags t JOIN content c ON c.item_id = t.item_id
                   WHERE c.user_id = ? UNION SELECT c.user_id FROM content c JOIN tags t ON t.item_id = c.item_id
                   WHERE t.tagged_user_id = ? UNION SELECT t2.tagged_user_id FROM tags t JOIN tags t2
                   ON t2.item_id = t.item_id WHERE t.tagged_user_id = ?""",
                [uid, uid, uid, uid],
            ).fetchall()
        ]
        # The events up to now: the decisions at `at` read only theirs (every rule is cut at its T).
        load_inputs(con, export, ledger, now, users=scope)
        comp = Compiler(policy, at, scope_user=uid)
        later = Compiler(policy, now, scope_user=uid)
        con.execute(f"CREATE TEMP TABLE later_fail AS {later.failing_sql()}")
        for name, c in (("tp_at", comp), ("tp_now", later)):
            con.execute(f"CREATE TEMP TABLE {name} AS WITH {c.third_party_cte()} SELECT item_id FROM third_party"
                        if c.honours_third_parties else f"CREATE TEMP TABLE {name} (item_id VARCHAR)")
        mine = f"(c.user_id = {quote(uid)} OR c.item_id IN (SELECT item_id FROM tags WHERE tagged_user_id = {quote(uid)}))"
        # The reader's own first failing person rule at the cut-off, and now.
        me = con.execute(
            f"WITH {comp.people_ctes()} SELECT reason_a, reason_b, adult_from FROM people WHERE user_id = ?", [uid]
        ).fetchone() or (None, None, None)
        me_now = (con.execute("SELECT reason FROM later_fail WHERE user_id = ?", [uid]).fetchone() or (None,))[0]
        at_posting = "c.created_at < CAST(? AS TIMESTAMP)" if policy.minimum_age_at_posting else "false AND ? IS NULL"
        # Why a build made now leaves out an item eligible at the cut-off (the engine's one order). With no
        # image to blur, the page says whose face kept it out: the reader's, or a person's without an account.
        left = later.left_out_now_sql(d="d", c="c", lf="lf", lt="lt", tp="tpn")
        gone = f"""CASE WHEN NOT d.eligible THEN NULL WHEN {left} = 'no_image_to_blur' THEN
                          CASE WHEN lt.item_id IS NULL AND (tpa.item_id IS NOT NULL OR tpn.item_id IS NOT NULL)
                               THEN 'third_party_objected' ELSE 'tagged_person' END
                        ELSE {left} END"""
        # The reader's own failing rule, at the cut-off or now, for photos of others.
        theirs = """CASE WHEN ? IS NOT NULL THEN ? WHEN {at_posting} THEN 'minor_at_posting'
                         WHEN ? IS NOT NULL THEN ? ELSE ? END""".format(at_posting=at_posting)
        # Shown whenever it alone keeps the photo out, whatever the author's rules, so that the
        # reader cannot watch the author's state: under `require`, and under `blur` when there is
        # no image to blur. Under `blur` with an image it never keeps the photo out: the photo is
        # used with faces blurred. Under `ignore` it is never theirs to know why.
        used = "(eligible AND gone IS NULL)"
        if require:
            tagged = f"CASE WHEN {used} THEN NULL ELSE {theirs} END"
        elif blur:
            tagged = f"CASE WHEN no_image <> {used} THEN {theirs} END"
        else:
            tagged = "NULL"
        theirs_args = [me[0], me[0], me[2], me[1], me[1], me_now] if tagged != "NULL" else []
        rows = con.execute(
            f"""SELECT item_id, role, kind, visibility, created_at, text, {used},
                       CASE WHEN role = 'author' THEN COALESCE(gone, reason) ELSE {tagged} END, media_path
                FROM (
                  SELECT d.item_id, CASE WHEN c.user_id = ? THEN 'author' ELSE 'tagged' END AS role, c.kind,
                         CASE WHEN c.user_id = ? THEN c.visibility END AS visibility,
                         c.created_at, CASE WHEN c.user_id = ? THEN c.text END AS text, d.eligible, d.reason,
                         {gone} AS gone,
                         CASE WHEN c.user_id = ? THEN c.media_path END AS media_path, c.media_path IS NULL AS no_image
                  FROM ({comp.decisions_sql(where=mine)}) d JOIN content c ON c.item_id = d.item_id
                  LEFT JOIN later_fail lf ON lf.user_id = c.user_id
                  LEFT JOIN (SELECT DISTINCT t.item_id FROM tags t JOIN later_fail l ON l.user_id = t.tagged_user_id) lt
                    ON lt.item_id = c.item_id
                  LEFT JOIN tp_at tpa ON tpa.item_id = c.item_id
                  LEFT JOIN tp_now tpn ON tpn.item_id = c.item_id
                ) c
                ORDER BY created_at DESC, item_id""",
            [*theirs_args, uid, uid, uid, uid],
        ).fetchall()
    finally:
        con.close()
    return PersonView(person, at, policy, [ItemDecision(*r) for r in rows], ledger.history(uid), now)


def data_archive(view: PersonView, training: list[dict] | None = None,
                 translate: Callable[[str], str] | None = None) -> bytes:
    """A zip of JSON files: everything consentry holds about the person.

    `translate` (a gettext, e.g. `consentry.i18n.gettext(lang)`) writes the
    README, each decision's `meaning` and the decisions' note in the person's
    language; the codes (`reason`, `about_you`, ...) stay as they are. Without
    it, English."""
    _ = translate or (lambda text: text)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:

        def put(name: str, data: object) -> None:
            z.writestr(name, json.dumps(data, indent=2, ensure_ascii=False))

        put("profile.json", view.person.as_json())
        put("items.json", [{**i.as_json(), "meaning": _(i.meaning)} for i in view.items if i.role == "author"])
        put("tagged_in.json", [{**i.as_json(), "meaning": _(i.meaning)} for i in view.items if i.role == "tagged"])
        # An imported event names the file it came from, not where that file lay on the operator's server.
        put("ledger.json", [{**e.as_json(), "imported_from": Path(e.imported_from).name if e.imported_from else None}
                            for e in view.history])
        put(
            "decisions.json",
            {
                "cutoff": iso(view.at),
                # When decided: past the cut-off, as a data set with that cut-off built then would hold the items
                # (an objection after the cut-off counts), which `evaluate --at CUTOFF` alone does not say.
                "decided_at": iso(view.now) if view.now is not None else None,
                "cutoff_passed": view.cutoff_passed,
                "policy": view.policy.name,
                "policy_hash": view.policy.hash,
                "items": {i.item_id: {"eligible": i.eligible, **i.codes} for i in view.items},
                "note": _(DECISIONS_NOTE),
            },
        )
        put("training_sets.json", training or [])
        z.writestr("README.txt", _(ARCHIVE_README))
    return buf.getvalue()


def own_media(export: Export, user_id: str, item_id: str) -> Path | StorePath | None:
    """The image file of `item_id` if `user_id` posted it (nobody else's), inside the export folder
    (on disk or in a bucket; open it with `sources.store.readable`)."""
    con = connect()
    try:
        export.register(con)
        row = con.execute("SELECT media_path FROM content WHERE item_id = ? AND user_id = ? AND media_path IS NOT NULL",
                          [item_id, user_id]).fetchone()
    finally:
        con.close()
    if row is None:
        return None
    path = inside(export.folder, row[0])
    return path if path is not None and path.is_file() else None
