"""Pages for the people whose data it is: sign in, object in one step, see and
download their data, ask for erasure. Every state change is a ledger event,
committed before the page answers."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import insert, update

from ..access import LinkError, bucket
from ..access.tables import third_party_objections
from ..snapshots.lineage import impact
from ..ledger import Channel, EventType, NewEvent
from ..notices.mailer import Message
from ..people import Person, data_archive, person_view
from ..timeutil import iso, to_micros
from . import i18n
from .context import Center
from .security import require_csrf

router = APIRouter()


async def center(request: Request) -> Center:
    return request.app.state.center


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _within_limits(request: Request, c: Center, email: str) -> bool:
    """Mails we send on someone's behalf: per address and per IP, per hour.
    Both buckets count the attempt, so neither can be drained through the other."""
    by_email = c.limiter.allow(bucket("email", email), limit=c.settings.signin_per_email_per_hour, window_s=3600)
    by_ip = c.limiter.allow(bucket("ip", _client_ip(request)), limit=c.settings.signin_per_ip_per_hour, window_s=3600)
    return by_email and by_ip


# -- public -------------------------------------------------------------------------------


@router.get("/")
def home(request: Request, c: Center = Depends(center)) -> Response:
    person = c.signed_in(request)
    if request.query_params.get("lang") in i18n.LANGUAGES:
        request.session["lang"] = request.query_params["lang"]
    return c.render(request, "home.html", {"cutoff": c.cutoff()}, person=person)


@router.get("/notice")
def notice(request: Request, c: Center = Depends(center)) -> Response:
    return c.render(request, "notice.html", {"cutoff": c.cutoff()}, person=c.signed_in(request))


@router.post("/signin", dependencies=[Depends(require_csrf)])
def signin(
    request: Request, background: BackgroundTasks, email: str = Form(..., max_length=320), c: Center = Depends(center)
) -> Response:
    """Always the same answer, known address or not: no one learns who has an account."""
    email = email.strip()
    if not _within_limits(request, c, email):
        return c.render(request, "check_mail.html", {"limited": True}, status=429)
    person = c.directory.by_email(email) if "@" in email else None
    if person is not None and person.email:
        token = c.links.issue(person.email)
        background.add_task(_send_signin, c, person, token)
    return c.render(request, "check_mail.html", {"limited": False})


def _send_signin(c: Center, person: Person, token: str) -> None:
    lang = i18n.pick(person=person.language)
    _ = c.gettext(lang)
    link = f"{c.settings.base_url}/signin/{token}"
    text = c.mail_templates.get_template("mail/signin.txt").render(_=_, link=link, platform=c.settings.platform_name)
    assert person.email
    c.outbox.send(
        Message(to=person.email, subject=_("Your sign-in link"), text=text, headers={"X-Consentry-Kind": "signin"})
    )


@router.get("/signin/{token}")
def signin_confirm(request: Request, token: str, c: Center = Depends(center)) -> Response:
    """A page with a button, not an instant sign-in: mail scanners that open
    links must not use up the person's link."""
    return c.render(request, "signin_confirm.html", {"token": token})


@router.post("/signin/{token}", dependencies=[Depends(require_csrf)])
def signin_finish(request: Request, token: str, c: Center = Depends(center)) -> Response:
    try:
        email = c.links.redeem(token)
    except LinkError as exc:
        return c.render(request, "error.html", {"message": c.gettext(c.lang(request))(str(exc))}, status=400)
    person = c.directory.by_email(email)
    if person is None:
        return c.render(request, "error.html", {"message": "This account no longer exists."}, status=400)
    lang = request.session.get("lang")
    request.session.clear()  # a fresh session: nothing carried over from before sign-in
    request.session["user_id"] = person.user_id
    if lang:
        request.session["lang"] = lang
    return _see_other("/me")


@router.post("/signout", dependencies=[Depends(require_csrf)])
def signout(request: Request) -> Response:
    request.session.clear()
    return _see_other("/")


# -- signed in -----------------------------------------------------------------------------


def me_required(request: Request, c: Center = Depends(center)) -> Person:
    person = c.signed_in(request)
    if person is None:
        from fastapi import HTTPException

        raise HTTPException(status_code=401, detail="Sign in first.")
    return person


@router.get("/me")
def me(request: Request, c: Center = Depends(center), person: Person = Depends(me_required)) -> Response:
    view = person_view(c.export, c.ledger, c.policy, c.cutoff(), person)
    state = c.ledger.state(person.user_id)
    j = c.policy.jurisdiction_for(person.country)
    return c.render(
        request,
        "me.html",
        {"view": view, "state": state, "jurisdiction": j, "cutoff": c.cutoff(), "items": view.items[:200],
         "training": impact(c.ledger, person.user_id)},
        person=person,
    )


def _record(c: Center, person: Person, type_: EventType, note: str | None = None) -> object:
    return c.committer.record(
        NewEvent(user_id=person.user_id, type=type_, at=datetime.now(UTC), channel=Channel.web, note=note or None)
    )


def _confirm(request: Request, c: Center, background: BackgroundTasks, person: Person, event, kind: str) -> Response:  # noqa: ANN001
    background.add_task(_send_confirmation, c, person, event, kind)
    return c.render(request, "done.html", {"event": event, "kind": kind, "cutoff": c.cutoff()}, person=person)


def _send_confirmation(c: Center, person: Person, event, kind: str) -> None:  # noqa: ANN001
    if not person.email:
        return
    lang = i18n.pick(person=person.language)
    _ = c.gettext(lang)
    text = c.mail_templates.get_template("mail/confirmation.txt").render(
        _=_, kind=kind, when=c.when(event.at, lang), event=event, platform=c.settings.platform_name,
        base_url=c.settings.base_url,
    )
    subjects = {
        "objected": _("We received your objection"),
        "objection_withdrawn": _("You withdrew your objection"),
        "consent_given": _("We recorded your consent"),
        "consent_withdrawn": _("You withdrew your consent"),
        "erasure_requested": _("We received your erasure request"),
    }
    c.outbox.send(Message(to=person.email, subject=subjects[kind], text=text, headers={"X-Consentry-Kind": kind}))


#: A withdrawal needs something in force to withdraw.
_NEEDS = {
    EventType.objection_withdrawn: lambda state: bool(state and state.objects),
    EventType.consent_withdrawn: lambda state: bool(state and state.consents),
}


def _one_step(type_: EventType, *, with_note: bool = False):  # noqa: ANN202
    """A one-step action: a POST with nothing but the CSRF token (and, for an
    objection, an optional note) records one event and confirms it."""

    def action(
        request: Request,
        background: BackgroundTasks,
        note: str = Form("", max_length=4000),
        c: Center = Depends(center),
        person: Person = Depends(me_required),
    ) -> Response:
        needs = _NEEDS.get(type_)
        if needs is not None and not needs(c.ledger.state(person.user_id)):
            return _see_other("/me")  # nothing in force: nothing to record
        event = _record(c, person, type_, note if with_note else None)
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


@router.get("/me/download")
def download(request: Request, c: Center = Depends(center), person: Person = Depends(me_required)) -> Response:
    view = person_view(c.export, c.ledger, c.policy, c.cutoff(), person)
    name = f"my-data-{person.user_id}-{iso(datetime.now(UTC))[:10]}.zip"
    return Response(
        data_archive(view, training=[
            {"snapshot": s.snapshot, "built_at": iso(s.built_at), "items_now": s.rows_now,
             "removed": [{"at": iso(p["purged_at"]), "items": p["rows"], "because": p["cause"]} for p in s.purged],
             "models": [m.name for m in s.models]}
            for s in impact(c.ledger, person.user_id)
        ]),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@router.get("/me/erase")
def erase_form(request: Request, c: Center = Depends(center), person: Person = Depends(me_required)) -> Response:
    return c.render(request, "erase.html", {}, person=person)


@router.post("/me/erase", dependencies=[Depends(require_csrf)])
def erase(
    request: Request,
    background: BackgroundTasks,
    confirm: str = Form(""),
    c: Center = Depends(center),
    person: Person = Depends(me_required),
) -> Response:
    if confirm != "yes":
        return c.render(request, "erase.html", {"missing_confirm": True}, person=person, status=400)
    event = _record(c, person, EventType.erasure_requested)
    return _confirm(request, c, background, person, event, "erasure_requested")


# -- the one-click objection link in a notice ---------------------------------------------


@router.get("/o/{token}")
def notice_objection_form(request: Request, token: str, c: Center = Depends(center)) -> Response:
    """One button, nothing to fill in (a GET must not act: mail scanners open links)."""
    from ..notices.links import read_objection_token

    found = read_objection_token(c.settings.secret_key.get_secret_value(), token)
    person = c.directory.by_id(found[0]) if found else None
    if person is None:
        return c.render(request, "error.html", {"message": "This link is not valid. Ask for a new one."}, status=400)
    return c.render(request, "notice_objection.html", {"token": token}, speak_to=person)


@router.post("/o/{token}", dependencies=[Depends(require_csrf)])
def notice_objection(request: Request, token: str, background: BackgroundTasks, c: Center = Depends(center)) -> Response:
    from ..notices.links import read_objection_token

    found = read_objection_token(c.settings.secret_key.get_secret_value(), token)
    person = c.directory.by_id(found[0]) if found else None
    if person is None:
        return c.render(request, "error.html", {"message": "This link is not valid. Ask for a new one."}, status=400)
    event = c.committer.record(
        NewEvent(user_id=person.user_id, type=EventType.objected, at=datetime.now(UTC), channel=Channel.email,
                 note=None, actor=f"notice:{found[1]}")
    )
    background.add_task(_send_confirmation, c, person, event, "objected")
    return c.render(request, "done.html", {"event": event, "kind": "objected", "cutoff": c.cutoff()}, speak_to=person)


# -- people without an account ---------------------------------------------------------------


@router.get("/others")
def others_form(request: Request, c: Center = Depends(center)) -> Response:
    return c.render(request, "others.html", {})


@router.post("/others", dependencies=[Depends(require_csrf)])
def others_submit(
    request: Request,
    background: BackgroundTasks,
    email: str = Form(..., max_length=320),
    handles: str = Form("", max_length=2000),
    items: str = Form("", max_length=2000),
    note: str = Form("", max_length=4000),
    c: Center = Depends(center),
) -> Response:
    email = email.strip()
    if "@" not in email or not (handles.strip() or items.strip()):
        return c.render(request, "others.html", {"error": True, "email": email, "handles": handles, "items": items}, status=400)
    if not _within_limits(request, c, email):
        return c.render(request, "check_mail.html", {"limited": True}, status=429)
    ref = secrets.token_hex(8)
    with c.ledger.engine.begin() as conn:
        conn.execute(
            insert(third_party_objections).values(
                id=ref, email=email.lower(), handles=handles.strip() or None, items=items.strip() or None,
                note=note.strip() or None, received_us=to_micros(datetime.now(UTC)), status="unverified",
                language=c.lang(request),
            )
        )
    token = c.links.issue(email, purpose=f"tp:{ref}")
    background.add_task(_send_third_party, c, email, ref, token, c.lang(request))
    return c.render(request, "check_mail.html", {"limited": False, "third_party": True})


def _send_third_party(c: Center, email: str, ref: str, token: str, lang: str) -> None:
    _ = c.gettext(lang)
    link = f"{c.settings.base_url}/others/verify/{ref}/{token}"
    text = c.mail_templates.get_template("mail/third_party.txt").render(_=_, link=link, platform=c.settings.platform_name)
    c.outbox.send(Message(to=email, subject=_("Confirm your objection"), text=text, headers={"X-Consentry-Kind": "third_party"}))


@router.get("/others/verify/{ref}/{token}")
def others_verify_form(request: Request, ref: str, token: str, c: Center = Depends(center)) -> Response:
    return c.render(request, "others_confirm.html", {"ref": ref, "token": token})


@router.post("/others/verify/{ref}/{token}", dependencies=[Depends(require_csrf)])
def others_verify(request: Request, ref: str, token: str, c: Center = Depends(center)) -> Response:
    try:
        c.links.redeem(token, purpose=f"tp:{ref}")
    except LinkError as exc:
        return c.render(request, "error.html", {"message": c.gettext(c.lang(request))(str(exc))}, status=400)
    with c.ledger.engine.begin() as conn:
        conn.execute(
            update(third_party_objections)
            .where(third_party_objections.c.id == ref, third_party_objections.c.status == "unverified")
            .values(status="open", received_us=to_micros(datetime.now(UTC)))
        )
    return c.render(request, "others_done.html", {"ref": ref})
