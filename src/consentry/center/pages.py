"""Pages for the people whose data it is: sign in, object in one step, see and
download their data, ask for erasure. Every state change is a ledger event,
committed before the page answers."""

from __future__ import annotations

import json

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Connection
from fastapi.responses import RedirectResponse, Response

from ..access import LinkError, bucket
from ..access import AddressError, normalise_address
from ..people import ThirdParties, ThirdPartyError, named_tokens
from ..snapshots import impact
from ..ledger import Channel, EventType, NewEvent, PersonState, StoredEvent
from ..ledger import action_id
from ..mail import OutgoingMail
from ..people import Person, data_archive, person_view
from ..timeutil import from_micros, iso
from . import i18n
from .context import Center
from .metrics import count_recorded
from .security import client_ip, require_csrf

router = APIRouter()


async def center(request: Request) -> Center:
    return request.app.state.center


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _client_ip(request: Request) -> str:
    return client_ip(request)  # X-Forwarded-For only from `serve --trusted-proxy`


def _within_limits(request: Request, c: Center, email: str, kind: str = "email", conn: Connection | None = None) -> bool:
    """Mails we send on someone's behalf. Per IP a hard hourly limit: it carries
    the weight. Per address (normalised) spacing, not a cap: the 2nd mail after
    a minute, each next one after twice as long, at most 10 minutes, shorter than
    a link's life. So a stranger cannot flood a mailbox, and whoever is refused
    already has a live link in it. `kind` keeps each kind of mail apart: when
    /others and sign-in shared one spacing, a stranger's /others requests kept
    the owner from signing in. The wait is left in request.state.retry_after."""
    try:
        address = normalise_address(email)
    except AddressError:
        address = email.strip().casefold()
    request.state.retry_after, request.state.recent_link = 3600, False
    if not c.limiter.allow(bucket("ip", _client_ip(request)), limit=c.settings.signin_per_ip_per_hour, window_s=3600,
                           conn=conn):
        return False
    wait = c.limiter.backoff(bucket(kind, address), free=1, base_s=c.settings.signin_mail_spacing_s,
                             cap_s=c.settings.signin_mail_spacing_max_s, window_s=3600, conn=conn)
    request.state.retry_after, request.state.recent_link = wait, True
    return wait == 0


def _limited(request: Request, c: Center, *, third_party: bool = False) -> Response:
    """The 429 page with the real wait, in words and in Retry-After; `third_party`:
    the link asked for confirms an objection on /others (no account involved)."""
    wait = int(getattr(request.state, "retry_after", 3600))
    page = c.render(request, "check_mail.html", {
        "limited": True, "recent_link": getattr(request.state, "recent_link", False), "third_party": third_party,
        "wait_s": 60 * max(1, -(-wait // 60)),  # whole minutes, as "in 2 minutes"
    }, status=429)
    page.headers["Retry-After"] = str(wait)
    return page


# -- public -------------------------------------------------------------------------------


@router.get("/")
def home(request: Request, c: Center = Depends(center)) -> Response:
    return c.render(request, "home.html", {"cutoff": c.cutoff()}, person=c.signed_in(request))


@router.get("/notice")
def notice(request: Request, c: Center = Depends(center)) -> Response:
    cutoff = c.cutoff()  # a configured cut-off that has passed is not "the next" build
    return c.render(request, "notice.html", {"cutoff": cutoff, "passed": cutoff <= datetime.now(UTC)},
                    person=c.signed_in(request))


@router.post("/signin", dependencies=[Depends(require_csrf)])
def signin(request: Request, email: str = Form("", max_length=2000), c: Center = Depends(center)) -> Response:
    """Always the same answer for a well-formed address, known or not: no one
    learns who has an account. A malformed one is refused with the reason."""
    try:
        address = normalise_address(email)
    except AddressError as exc:
        return c.render(request, "home.html", {"cutoff": c.cutoff(), "email": email, "email_error": str(exc)},
                        status=400, person=c.signed_in(request))
    accounts = c.directory.by_email(address)  # only accounts whose own address is this one (`same_address`)
    # Before the answer: "check your mail" is a promise. Written after it (a background task), a
    # kill -9 lost links the page had announced, and the spacing then said one was on its way. The
    # spacing is recorded with the link and its mail, all or none: recorded alone, a failure in
    # between made the next request say a link "is on its way" when none was.
    with c.ledger.engine.begin() as conn:
        if not _within_limits(request, c, address, conn=conn):
            limited = True
        else:
            limited = False
            _mail_signin_link(c, address, accounts, conn)
    if limited:
        return _limited(request, c)
    if accounts:
        c.outbox.wake()
    return c.render(request, "check_mail.html", {"limited": False})


#: The subject and purpose of the link written for an address without an account: no address is
#: kept, and no link of this purpose is ever accepted (`Links.use` checks the purpose it is given).
_NOBODY, _UNUSED = "", "unused"


def _mail_signin_link(c: Center, address: str, accounts: list[Person], conn: Connection) -> None:
    """The links and the mail carrying them, in the caller's transaction, if the
    address is the `accounts`': one link per account with it, each opening only
    its own. An address without an account costs the same work, so that the
    answer's timing does not tell who has one (done only for a known address,
    it was 61 against 41 ms): a link is issued, a mail built and a transaction
    committed, but the link names no one, is never mailed and can open nothing."""
    if accounts:
        links = [(p, c.links.issue(p.email or "", account=p.user_id, conn=conn)) for p in accounts]
        c.outbox.enqueue(conn, _signin_mail(c, links))
    else:
        nobody = Person(user_id="", handle=None, email=address, birth_date=None, country=None, language=None,
                        created_at=None, deleted_at=None)
        _signin_mail(c, [(nobody, c.links.issue(_NOBODY, _UNUSED, conn=conn))])  # built, never queued


def _signin_mail(c: Center, links: list[tuple[Person, str]]) -> OutgoingMail:
    """The sign-in mail for the links' transaction; it expires with them."""
    first = links[0][0]
    lang = i18n.for_person(first.language, first.country)  # as the notices: else the country's language
    _ = c.gettext(lang)
    text = c.mail_templates.get_template("mail/signin.txt").render(
        _=_, platform=c.platform(lang),
        links=[(f"@{p.handle}" if p.handle else p.user_id, f"{c.settings.base_url}/signin/{token}") for p, token in links],
    )
    assert first.email
    return c.outbox.message(
        first.email, _("Your sign-in link"), text, "signin", expires_in=timedelta(seconds=c.links.max_age_s)
    )


@router.get("/signin/{token}")
def signin_confirm(request: Request, token: str, c: Center = Depends(center)) -> Response:
    """A page with a button, not an instant sign-in: mail scanners that open
    links must not use up the person's link."""
    return c.render(request, "signin_confirm.html", {"token": token})


@router.post("/signin/{token}", dependencies=[Depends(require_csrf)])
def signin_finish(request: Request, token: str, c: Center = Depends(center)) -> Response:
    try:
        link = c.links.use(token)
    except LinkError as exc:
        return c.render(request, "error.html", {"message": c.gettext(c.lang(request))(str(exc))}, status=400)
    # The account the link's row names (every sign-in link is issued with one; tokens from before are refused).
    person = c.directory.by_id(link.account) if link.account is not None else None
    if person is None:
        return c.render(request, "error.html", {"message": "This account no longer exists."}, status=400)
    if (person.email or "").strip().lower() != link.subject:  # the account's address changed since the mail
        return c.render(request, "error.html", {"message": "This link is not valid. Ask for a new one."}, status=400)
    lang = request.session.get("lang")
    request.session.clear()  # a fresh session: nothing carried over from before sign-in
    request.session["user_id"] = person.user_id
    if lang:
        request.session["lang"] = lang
    return _see_other("/me")


@router.post("/signout", dependencies=[Depends(require_csrf)])
def signout(request: Request) -> Response:
    request.session.clear()  # the server-side session is deleted: a copied cookie is worth nothing
    return _see_other("/")


# -- signed in -----------------------------------------------------------------------------


def me_required(request: Request, c: Center = Depends(center)) -> Person:
    person = c.signed_in(request)
    if person is None:
        from fastapi import HTTPException

        raise HTTPException(status_code=401, detail="Sign in first.")
    return person


#: Items per page of "My data": the page says which ones of how many it shows.
PAGE_SIZE = 50


@router.get("/me")
def me(request: Request, page: int = 1, c: Center = Depends(center), person: Person = Depends(me_required)) -> Response:
    view = person_view(c.export, c.ledger, c.policy, c.cutoff(), person)
    state = c.ledger.state(person.user_id)
    j = c.policy.jurisdiction_for(person.country)
    pages = max(1, -(-len(view.items) // PAGE_SIZE))
    page = min(max(1, page), pages)
    first = (page - 1) * PAGE_SIZE
    shown = view.items[first:first + PAGE_SIZE]
    training = impact(c.ledger, person.user_id)
    # While a training set still holds their rows after an objection or erasure, the page repeats
    # the promise the confirmation made: when they are taken out (it said only how many are in it now).
    honoured = c.honours_objection_of(person)
    since = [us for us in ((state.objection_us if state.objects and honoured else None), state.erasure_us)
             if us is not None] if state else []
    leaving = since and any(s.rows_now or s.tagged_now for s in training)
    return c.render(
        request,
        "me.html",
        {"view": view, "state": state, "jurisdiction": j, "cutoff": c.cutoff(), "items": shown,
         "paging": {"page": page, "pages": pages, "first": first + 1 if shown else 0, "last": first + len(shown),
                    "total": len(view.items)},
         "training": training, "receipts": c.settings.receipt_key is not None,
         "leaving": bool(leaving), "purged_by": c.purged_by(from_micros(min(since))) if leaving else None,
         "honoured": honoured},
        person=person,
    )


def _record(
    c: Center, person: Person, type_: EventType, note: str | None = None, *, channel: Channel = Channel.web,
    actor: str | None = None, state: PersonState | None = None,
) -> object:
    """Record the event with its confirmation mail queued in the same
    transaction, once: its id comes from the person's state, so a double
    press or two racing requests store (and mail) one event. `state` is the
    one the caller checked (`_in_force`): read again here, a racing request's
    event could have moved it in between, and a second id would record twice."""
    state = state if state is not None else c.ledger.state(person.user_id)
    event = c.committer.record(
        NewEvent(event_id=action_id(person.user_id, type_.value, state), user_id=person.user_id, type=type_,
                 at=datetime.now(UTC), channel=channel, note=note or None, actor=actor),
        mails=_send_confirmation(c, person, type_.value),
    )
    c.outbox.wake()
    return event


def _in_force(c: Center, person: Person, type_: EventType, state: PersonState | None = None) -> StoredEvent | None:
    """The event that already did what this action asks (`Ledger.in_force`)."""
    return c.ledger.in_force(person.user_id, type_, state)


def _confirm(
    request: Request, c: Center, background: BackgroundTasks, person: Person, event, kind: str,  # noqa: ANN001
    *, already: bool = False, speak_to: Person | None = None,
) -> Response:
    """The page after an action; `already`: nothing new was recorded (and no mail sent)."""
    return c.render(request, "done.html", {"event": event, "kind": kind, "cutoff": c.cutoff(), "already": already,
                                           "mailed": person.mailable and not already,
                                           "purged_by": c.purged_by(event.at), "honoured": c.honours_objection_of(person)},
                    person=None if speak_to else person, speak_to=speak_to)


def _send_confirmation(c: Center, person: Person, kind: str) -> list:
    """The confirmation to queue with the event (none without one address to
    send it to: built in the event's transaction, where its seq, the reference,
    is known, a mail that cannot be built would lose the event with it)."""
    if not person.mailable:
        return []
    return [c.outbox.for_event(lambda event: _confirmation(c, person, event, kind))]


def _confirmation(c: Center, person: Person, event, kind: str):  # noqa: ANN001, ANN202
    assert person.email
    lang = i18n.for_person(person.language, person.country)  # as the notices: else the country's language
    _ = c.gettext(lang)
    text = c.mail_templates.get_template("mail/confirmation.txt").render(
        _=_, kind=kind, when=c.when(event.at, lang), event=event, platform=c.platform(lang),
        purged_by=c.when(by, lang) if (by := c.purged_by(event.at)) else None,
        base_url=c.settings.base_url, honoured=c.honours_objection_of(person),
    )
    subjects = {
        "objected": _("We received your objection"),
        "objection_withdrawn": _("You withdrew your objection"),
        "consent_given": _("We recorded your consent"),
        "consent_withdrawn": _("You withdrew your consent"),
        "erasure_requested": _("We received your erasure request"),
    }
    return c.outbox.message(person.email, subjects[kind], text, kind)


#: A withdrawal needs something in force to withdraw.
_NEEDS = {
    EventType.objection_withdrawn: lambda state: bool(state and state.objects),
    EventType.consent_withdrawn: lambda state: bool(state and state.consents),
}


#: The longest note a person may write (the forms' `maxlength`).
NOTE_MAX = 4000


def _written_note(note: str = Form("", max_length=2 * NOTE_MAX)) -> str:
    """The note as written. A browser's `maxlength` counts a line break as one
    character and sends it as two (CRLF): a 4,000-character note with line
    breaks was refused, and the objection with it. Line breaks are stored as LF."""
    text = note.replace("\r\n", "\n")
    if len(text) > NOTE_MAX:
        raise RequestValidationError([{"type": "string_too_long", "loc": ("body", "note"),
                                       "msg": f"String should have at most {NOTE_MAX} characters"}])
    return text


def _one_step(type_: EventType, *, with_note: bool = False):  # noqa: ANN202
    """A one-step action: a POST with nothing but the CSRF token (and, for an
    objection, an optional note) records one event and confirms it."""

    def action(
        request: Request,
        background: BackgroundTasks,
        note: str = Depends(_written_note),
        c: Center = Depends(center),
        person: Person = Depends(me_required),
    ) -> Response:
        state = c.ledger.state(person.user_id)  # read once: checked, then named in the event id
        needs = _NEEDS.get(type_)
        if needs is not None and not needs(state):
            return _see_other("/me")  # nothing in force: nothing to record
        if (existing := _in_force(c, person, type_, state)) is not None:
            return _confirm(request, c, background, person, existing, type_.value, already=True)
        event = _record(c, person, type_, note if with_note else None, state=state)
        return _confirm(request, c, background, person, event, type_.value)

    return action


for _path, _type, _note in (
    ("/me/object", EventType.objected, True),
    ("/me/withdraw", EventType.objection_withdrawn, False),
    ("/me/consent", EventType.consent_given, False),
    ("/me/consent/withdraw", EventType.consent_withdrawn, False),
):
    router.add_api_route(
        _path, _one_step(_type, with_note=_note), methods=["POST"], dependencies=[Depends(require_csrf)],
        name=_type.value,
    )


@router.get("/me/media/{item_id}")
def my_thumbnail(item_id: str, c: Center = Depends(center), person: Person = Depends(me_required)) -> Response:
    """A small copy of one of the reader's own photos, for them alone: re-encoded
    from its pixels (nothing of its metadata), never cached by the browser."""
    from io import BytesIO

    from PIL import Image, ImageOps

    from ..people import own_media
    from ..sources import readable

    path = own_media(c.export, person.user_id, item_id)
    if path is None:
        from fastapi import HTTPException

        raise HTTPException(status_code=404, detail="No such photo of yours.")
    with Image.open(readable(path)) as im:  # on disk, or the object's bytes
        im = ImageOps.exif_transpose(im).convert("RGB")
        im.thumbnail((160, 160))
        buf = BytesIO()
        im.save(buf, "JPEG", quality=80)
    return Response(buf.getvalue(), media_type="image/jpeg", headers={"Cache-Control": "no-store, private"})


@router.get("/me/receipts.json")
def my_receipts(request: Request, c: Center = Depends(center), person: Person = Depends(me_required)) -> Response:
    """The signed purge receipts of the person signed in (of nobody else)."""
    docs = c.receipts(person.user_id)
    if docs is None:
        from fastapi import HTTPException

        raise HTTPException(status_code=404, detail="This privacy center does not issue receipts.")
    name = f"purge-receipts-{person.user_id}.json"
    return Response(json.dumps(docs, indent=2, ensure_ascii=False), media_type="application/json",
                    headers={"Content-Disposition": _attachment(name)})


def _attachment(name: str) -> str:
    """Content-Disposition for a download named after a user id, which may
    hold any character: an ASCII name without quotes for old clients, and the
    exact one in RFC 6266's filename*. Raw, a Chinese id failed with a 500 and
    an id with a quote gave the header a second filename."""
    from urllib.parse import quote as percent

    plain = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{percent(name, safe='')}"


@router.get("/me/download")
def download(request: Request, c: Center = Depends(center), person: Person = Depends(me_required)) -> Response:
    view = person_view(c.export, c.ledger, c.policy, c.cutoff(), person)
    name = f"my-data-{person.user_id}-{iso(datetime.now(UTC))[:10]}.zip"
    training = impact(c.ledger, person.user_id)

    def one(s, **now) -> dict:  # noqa: ANN001 - a SnapshotImpact or an UncheckedSnapshot
        return {"snapshot": s.snapshot, "built_at": iso(s.built_at), **now,
                "removed": [{"at": iso(p["purged_at"]), "items": p["rows"], "because": p["cause"]} for p in s.purged],
                "models": [m.name for m in s.models]}

    return Response(
        data_archive(view, translate=c.gettext(c.lang(request, person)), training=[  # in the language of /me
            *(one(s, items_now=s.rows_now, photos_of_you_now=s.tagged_now) for s in training),
            # as /me: a training set whose files are not where recorded is named, never left out
            *(one(u, items_now=None, photos_of_you_now=None, cannot_be_checked=True) for u in training.unchecked),
        ]),
        media_type="application/zip",
        headers={"Content-Disposition": _attachment(name), "Cache-Control": "no-store"},
    )


@router.get("/me/erase")
def erase_form(request: Request, c: Center = Depends(center), person: Person = Depends(me_required)) -> Response:
    return c.render(request, "erase.html", {"pending": _in_force(c, person, EventType.erasure_requested)}, person=person)


@router.post("/me/erase", dependencies=[Depends(require_csrf)])
def erase(
    request: Request,
    background: BackgroundTasks,
    confirm: str = Form(""),
    c: Center = Depends(center),
    person: Person = Depends(me_required),
) -> Response:
    state = c.ledger.state(person.user_id)  # read once: checked, then named in the event id
    if (existing := _in_force(c, person, EventType.erasure_requested, state)) is not None:
        return _confirm(request, c, background, person, existing, "erasure_requested", already=True)
    if confirm != "yes":
        return c.render(request, "erase.html", {"missing_confirm": True}, person=person, status=400)
    event = _record(c, person, EventType.erasure_requested, state=state)
    return _confirm(request, c, background, person, event, "erasure_requested")


# -- the one-click objection link in a notice ---------------------------------------------


@router.get("/o/{token}")
def notice_objection_form(request: Request, token: str, c: Center = Depends(center)) -> Response:
    """One button, nothing to fill in (a GET must not act: mail scanners open links)."""
    from ..notices import read_objection_token

    found = read_objection_token(c.settings.secret_key.get_secret_value(), token)
    person = c.directory.by_id(found[0]) if found else None
    if person is None:
        return c.render(request, "error.html", {"message": "This link is not valid. Ask for a new one."}, status=400)
    return c.render(request, "notice_objection.html", {"token": token, "honoured": c.honours_objection_of(person)},
                    speak_to=person)


@router.post("/o/{token}", dependencies=[Depends(require_csrf)])
def notice_objection(request: Request, token: str, background: BackgroundTasks, c: Center = Depends(center)) -> Response:
    from ..notices import read_objection_token

    found = read_objection_token(c.settings.secret_key.get_secret_value(), token)
    person = c.directory.by_id(found[0]) if found else None
    if person is None:
        return c.render(request, "error.html", {"message": "This link is not valid. Ask for a new one."}, status=400)
    # Spoken to as a visitor, unless this browser is signed in as that very person (then "My data" is theirs to open).
    signed = c.signed_in(request)
    speak_to = None if signed is not None and signed.user_id == person.user_id else person
    state = c.ledger.state(person.user_id)  # read once: checked, then named in the event id
    if (existing := _in_force(c, person, EventType.objected, state)) is not None:  # the link opened again
        return _confirm(request, c, background, person, existing, "objected", already=True, speak_to=speak_to)
    event = _record(c, person, EventType.objected, channel=Channel.email, actor=f"notice:{found[1]}", state=state)
    return _confirm(request, c, background, person, event, "objected", speak_to=speak_to)


# -- people without an account ---------------------------------------------------------------


@router.get("/others")
def others_form(request: Request, c: Center = Depends(center)) -> Response:
    return c.render(request, "others.html", c.third_party_terms())


@router.post("/others", dependencies=[Depends(require_csrf)])
def others_submit(
    request: Request,
    email: str = Form("", max_length=2000),  # empty or too long: the address's own error, the form kept
    handles: str = Form("", max_length=2000),
    items: str = Form("", max_length=2000),
    note: str = Depends(_written_note),
    c: Center = Depends(center),
) -> Response:
    """Record the request and mail the link that confirms it (both or neither).
    Nothing is protected until the requester confirms: the page says so."""
    form = {"email": email, "handles": handles, "items": items, "note": note}
    try:
        address = normalise_address(email)
    except AddressError as exc:
        return c.render(request, "others.html", {**form, **c.third_party_terms(), "error": True, "address_error": str(exc)},
                        status=400)
    if not (named_tokens(handles) or named_tokens(items)):
        return c.render(request, "others.html", {**form, **c.third_party_terms(), "error": True}, status=400)
    if not _within_limits(request, c, address, "tp-email"):
        return _limited(request, c, third_party=True)
    lang = c.lang(request)

    def mail_the_link(conn, ref: str) -> None:  # noqa: ANN001
        _send_third_party(c, conn, address, ref, c.links.issue(address, purpose=f"tp:{ref}", conn=conn), lang)

    ThirdParties(c.ledger, c.export).submit(
        address, handles=handles, items=items, note=note, language=lang, within=mail_the_link
    )
    c.outbox.wake()
    return c.render(request, "check_mail.html", {"limited": False, "third_party": True})


def _send_third_party(c: Center, conn, email: str, ref: str, token: str, lang: str) -> None:  # noqa: ANN001
    """Queue the confirmation link in the link's transaction; it expires with the link."""
    _ = c.gettext(lang)
    link = f"{c.settings.base_url}/others/verify/{ref}/{token}"
    text = c.mail_templates.get_template("mail/third_party.txt").render(_=_, link=link, platform=c.platform(lang))
    c.outbox.enqueue(conn, c.outbox.message(
        email, _("Confirm your objection"), text, "third_party", expires_in=timedelta(seconds=c.links.max_age_s)
    ))


@router.get("/others/verify/{ref}/{token}")
def others_verify_form(request: Request, ref: str, token: str, c: Center = Depends(center)) -> Response:
    return c.render(request, "others_confirm.html", {"ref": ref, "token": token})


@router.post("/others/verify/{ref}/{token}", dependencies=[Depends(require_csrf)])
def others_verify(request: Request, ref: str, token: str, c: Center = Depends(center)) -> Response:
    """Using the link, opening the request and protecting every named photo
    commit together; the page then lists exactly what is protected, from when."""
    _ = c.gettext(c.lang(request))
    try:
        c.links.check(token, purpose=f"tp:{ref}")  # expired says so, also once its unconfirmed request is deleted
        done = ThirdParties(c.ledger, c.export).confirm(
            ref, lambda conn: c.links.redeem(token, purpose=f"tp:{ref}", conn=conn)
        )
    except LinkError as exc:
        return c.render(request, "error.html", {"message": _(str(exc))}, status=400)
    except ThirdPartyError:
        return c.render(request, "error.html", {"message": _("This link is not valid. Ask for a new one.")}, status=400)
    count_recorded(done.protected)
    return c.render(request, "others_done.html", {
        "ref": ref, "done": done, **c.third_party_terms(),
        "purged_by": c.purged_by(done.protected[0].at) if done.protected else None,
    })
