"""The administrators' side: a separate sign-in, the queue, and rejections on
compelling grounds (written to the ledger with who decided, shown to the person)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, BackgroundTasks, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from ..access import Admin, bucket
from ..errors import NotInForce, ObjectionSuperseded
from ..ledger import AnswersObjection, Channel, EventType, NewEvent, objections_in_force
from ..mail import outbox_counts, undelivered_mail
from ..people import ThirdParties, ThirdPartyError, named_tokens
from ..people import ThirdPartyRequest as TPRequest
from ..timeutil import from_micros
from . import i18n
from .context import Center
from .metrics import count_recorded
from .pages import center
from .security import client_ip, require_csrf

router = APIRouter(prefix="/admin")


def admin_required(request: Request, c: Center = Depends(center)) -> Admin:
    name = request.session.get("admin")
    admin = c.admins.get(name) if name else None
    if admin is None:
        raise HTTPException(status_code=401, detail="Administrators sign in at /admin/login.")
    return admin


def reviewer_required(admin: Admin = Depends(admin_required)) -> Admin:
    if not admin.may_decide:
        raise HTTPException(status_code=403, detail="Your role may look but not decide.")
    return admin


@router.get("/login")
def login_form(request: Request, c: Center = Depends(center)) -> Response:
    return c.render(request, "admin_login.html", {})


@router.post("/login", dependencies=[Depends(require_csrf)])
def login(
    request: Request,
    username: str = Form(..., max_length=128),
    password: str = Form(..., max_length=1024),
    c: Center = Depends(center),
) -> Response:
    """Slow the guesser, not the owner. Per address, a hard limit over all names
    blocks whoever guesses. Per name *and* address, a few free tries, then waits
    doubling from 1 s up to 15 minutes; the attempt is booked before the password
    is checked, so parallel guesses gain nothing. Someone else's guessing never
    delays the right password from another address. Unknown and known names
    cost the same scrypt work (Admins.authenticate)."""
    ip = client_ip(request)
    if not c.limiter.allow(bucket("admin-ip", ip), limit=c.settings.admin_tries_per_ip, window_s=900):
        return _login_refused(request, c, 900)
    pair = bucket("admin-try", f"{username}\n{ip}")
    wait = c.limiter.backoff(pair, free=c.settings.admin_free_failures, base_s=1, cap_s=900, window_s=900)
    if wait:
        return _login_refused(request, c, wait)
    admin = c.admins.authenticate(username, password)
    if admin is None:
        return c.render(request, "admin_login.html", {"failed": True}, status=401)
    c.limiter.clear(pair)
    request.session.clear()  # a new session id too (ServerSessions): no fixation
    request.session["admin"] = admin.username
    return RedirectResponse("/admin", status_code=303)


def _login_refused(request: Request, c: Center, wait: int) -> Response:
    page = c.render(request, "admin_login.html", {"failed": True, "wait_s": wait}, status=429)
    page.headers["Retry-After"] = str(wait)
    return page


@router.post("/logout", dependencies=[Depends(require_csrf)])
def logout(request: Request) -> Response:
    request.session.clear()  # deletes the server-side session: the cookie is worth nothing now
    return RedirectResponse("/admin/login", status_code=303)


#: Objections in force shown on one page of the review queue.
PAGE = 100


@router.get("")
def queue(
    request: Request,
    page: int = Query(1, ge=1, le=10**6),
    person: str | None = Query(None, max_length=256),
    c: Center = Depends(center),
    admin: Admin = Depends(admin_required),
) -> Response:
    parties = ThirdParties(c.ledger, c.export)
    person = (person or "").strip() or None
    objections, total = c.ledger.latest_objections(PAGE, (page - 1) * PAGE, person)
    with c.ledger.reader.connect() as conn:
        mail_counts, undelivered = outbox_counts(conn), undelivered_mail(conn)
        in_force = objections_in_force(conn, [u for u, _ in objections])
    return c.render(
        request,
        "admin.html",
        {
            # Each objection in force, with its event (the reject form names it) and the person's note: one
            # withdrawn since the queue was read is left out.
            "objections": [(u, from_micros(ev[1]), ev[0], ev[2]) for u, _ in objections if (ev := in_force.get(u))],
            "find": person,  # the user id searched for, if any
            "paging": {"page": page, "pages": max(1, -(-total // PAGE)), "total": total},
            # What each requester wrote, and the photos to protect or dismiss, with their state.
            "third": [{"request": r, "candidates": parties.candidates(r.ref)} for r in parties.open_requests()],
            "me_admin": admin,
            # Mails that never arrived (expired or refused), without their content.
            "mail_counts": mail_counts,
            "undelivered": undelivered,
        },
    )


@router.post("/reject", dependencies=[Depends(require_csrf)])
def reject(
    request: Request,
    background: BackgroundTasks,
    user_id: str = Form(..., max_length=256),
    grounds: str = Form("", max_length=4000),
    objection: int | None = Form(None, ge=1),
    c: Center = Depends(center),
    admin: Admin = Depends(reviewer_required),
) -> Response:
    """Reject the objection the form names (`objection`: its seq, as the queue
    showed it), refused with 409 and nothing recorded if it is no longer the one
    in force: checked in the rejection's own transaction (`AnswersObjection`).
    Without `objection` (a form from before it named one), whatever objection is
    in force then."""
    grounds = grounds.strip()
    if len(grounds) < 20:
        raise HTTPException(
            status_code=400,
            detail="State the compelling grounds (at least 20 characters); the person will read them.",
        )
    state = c.ledger.state(user_id)
    if state is None or not state.objects:
        raise HTTPException(status_code=409, detail=f"{user_id} has no objection in force to reject.")
    person = c.directory.by_id(user_id)
    if person is None or not person.email:
        # CONTRACT §2: the rejection is shown to the person. The center reaches a person only at their address
        # (the decision's mail, and the mailed sign-in link to /me): without one, recorded, nobody was told.
        where, fix = (("is not in the export", "add them, with their address, to the export") if person is None
                      else ("has no e-mail address in the export", "add their address to the export"))
        raise HTTPException(status_code=409, detail=(
            f"{user_id} {where}, so the decision can neither be mailed to them nor read on their page (they "
            f"cannot sign in): it cannot be shown to them; nothing was recorded: {fix} first."))
    if not person.mailable:
        # The person must be told the grounds: refused, and the objection stays in force, until the export's
        # address is one they can be mailed at (it failed with a 500 while building the mail).
        raise HTTPException(status_code=409, detail=(
            f"{user_id}'s address in the export ({person.email!r}) is not one e-mail address, so the decision "
            "cannot be mailed to them; nothing was recorded: correct the address in the export first."))
    try:
        c.committer.record(
            NewEvent(
                user_id=user_id, type=EventType.objection_rejected, at=datetime.now(UTC), channel=Channel.web,
                note=grounds, actor=f"admin:{admin.username}",
            ),
            mails=[AnswersObjection(objection),  # first: refused, the mail is never queued
                   _send_rejection(c, person.email, i18n.for_person(person.language, person.country), grounds)],
        )
    except ObjectionSuperseded as exc:
        now = (f"{user_id} has objected again since (#{exc.in_force}), maybe with a new note"
               if exc.in_force is not None else f"{user_id} has no objection in force any more")
        raise HTTPException(status_code=409, detail=(
            f"The objection you answered (#{exc.answered}) is no longer the one in force: {now}; nothing was "
            "recorded. Reload the review queue and read the objection in force before you decide.")) from None
    except NotInForce:
        raise HTTPException(status_code=409, detail=(
            f"{user_id} has no objection in force to reject; nothing was recorded.")) from None
    c.outbox.wake()
    return RedirectResponse("/admin", status_code=303)


def _send_rejection(c: Center, email: str, lang: str, grounds: str):  # noqa: ANN202
    """The decision mail, queued with the objection_rejected event, in `lang`
    (`i18n.for_person`: the person's language, else their country's, as the notices)."""
    _ = c.gettext(lang)
    text = c.mail_templates.get_template("mail/rejection.txt").render(
        _=_, grounds=grounds, base_url=c.settings.base_url, platform=c.platform(lang)
    )
    return c.outbox.message(email, _("Decision on your objection"), text, "rejection")


@router.post("/third-party/{ref}", dependencies=[Depends(require_csrf)])
def third_party_action(
    ref: str,
    action: str = Form(...),
    item_ids: list[str] = Form([], max_length=500),
    more_items: str = Form("", max_length=4000),
    text: str = Form("", max_length=4000),
    c: Center = Depends(center),
    admin: Admin = Depends(reviewer_required),
) -> Response:
    """`protect` more photos (objections in force at once), `dismiss` some on
    grounds mailed to the requester, or `close` the review (its objections
    stay in force; the requester is mailed the outcome)."""
    if action not in ("protect", "dismiss", "close"):
        raise HTTPException(status_code=400, detail="action is 'protect', 'dismiss' or 'close'")
    actor = f"admin:{admin.username}"
    parties = ThirdParties(c.ledger, c.export)
    req = parties.request(ref)
    chosen = [*item_ids, *named_tokens(more_items)]
    try:
        if req is None:
            raise ThirdPartyError("No open request with that reference.")
        if action == "protect":
            count_recorded(parties.protect(ref, chosen, actor=actor))
        elif action == "dismiss":
            dismissed = list(dict.fromkeys(i.strip() for i in chosen if i.strip()))  # as `dismiss` reads them
            count_recorded(parties.dismiss(ref, chosen, text, actor=actor, within=lambda conn: c.outbox.enqueue(
                conn, _send_third_party_outcome(c, req, "dismissed", len(dismissed), text.strip(), dismissed))))
        else:
            protected = sum(1 for s in parties.states(ref).values() if s == EventType.third_party_objected)
            parties.close(ref, actor=actor, resolution=text, within=lambda conn: c.outbox.enqueue(
                conn, _send_third_party_outcome(c, req, "reviewed", protected, text.strip())))
    except ThirdPartyError as exc:
        code = 404 if "No open request" in str(exc) else 400
        raise HTTPException(status_code=code, detail=str(exc)) from None
    c.outbox.wake()
    return RedirectResponse("/admin", status_code=303)


def _send_third_party_outcome(  # noqa: ANN202
    c: Center, req: TPRequest, outcome: str, count: int, words: str, items: list[str] | None = None,
):
    """The mail to the requester, queued in the transaction of the step it reports:
    `dismissed` (the photos, by id, with the grounds) or `reviewed` (how many photos stay protected)."""
    lang = i18n.pick(person=req.language)
    _ = c.gettext(lang)
    text = c.mail_templates.get_template("mail/third_party_outcome.txt").render(
        _=_, ngettext=i18n.ngettext(lang), outcome=outcome, count=count, items=items or [], resolution=words,
        platform=c.platform(lang),
        **c.third_party_terms(),
        purged_by=c.when(by, lang) if (by := c.purged_by(datetime.now(UTC))) else None,
    )
    return c.outbox.message(req.email, _("Your objection about photos"), text, "third_party_outcome")
