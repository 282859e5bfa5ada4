"""The administrators' side: a separate sign-in, the queue, and rejections on
compelling grounds (written to the ledger with who decided, shown to the person)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, BackgroundTasks, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select, update

from ..access import Admin, bucket
from ..access.tables import third_party_objections
from ..ledger import Channel, EventType, NewEvent
from ..ledger.tables import person_state
from ..notices.mailer import Message
from ..people.third_party import ThirdParties, ThirdPartyError, named_tokens
from ..timeutil import from_micros
from . import i18n
from .context import Center
from .pages import center
from .security import require_csrf

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
    # Per name and per address: guessing across many names is limited too.
    ip = request.client.host if request.client else "unknown"
    by_name = c.limiter.allow(bucket("admin", username), limit=10, window_s=900)
    by_ip = c.limiter.allow(bucket("admin-ip", ip), limit=30, window_s=900)
    if not (by_name and by_ip):
        return c.render(request, "admin_login.html", {"failed": True}, status=429)
    admin = c.admins.authenticate(username, password)
    if admin is None:
        return c.render(request, "admin_login.html", {"failed": True}, status=401)
    request.session.clear()
    request.session["admin"] = admin.username
    return RedirectResponse("/admin", status_code=303)


@router.post("/logout", dependencies=[Depends(require_csrf)])
def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/admin/login", status_code=303)


@router.get("")
def queue(request: Request, c: Center = Depends(center), admin: Admin = Depends(admin_required)) -> Response:
    with c.ledger.reader.connect() as conn:
        objections = conn.execute(
            select(person_state.c.user_id, person_state.c.objection_us)
            .where(person_state.c.objection == EventType.objected.value)
            .order_by(person_state.c.objection_us.desc())
            .limit(100)
        ).all()
        third = conn.execute(
            select(third_party_objections)
            .where(third_party_objections.c.status == "open")
            .order_by(third_party_objections.c.received_us)
        ).mappings().all()
    return c.render(
        request,
        "admin.html",
        {
            "objections": [(u, from_micros(us)) for u, us in objections],
            "third": [
                dict(r, received=from_micros(r["received_us"]), candidates=ThirdParties(c.ledger.engine, c.export).candidates(r["id"]))
                for r in third
            ],
            "me_admin": admin,
        },
    )


@router.post("/reject", dependencies=[Depends(require_csrf)])
def reject(
    request: Request,
    background: BackgroundTasks,
    user_id: str = Form(..., max_length=256),
    grounds: str = Form("", max_length=4000),
    c: Center = Depends(center),
    admin: Admin = Depends(reviewer_required),
) -> Response:
    grounds = grounds.strip()
    if len(grounds) < 20:
        raise HTTPException(
            status_code=400,
            detail="State the compelling grounds (at least 20 characters); the person will read them.",
        )
    state = c.ledger.state(user_id)
    if state is None or not state.objects:
        raise HTTPException(status_code=409, detail=f"{user_id} has no objection in force to reject.")
    c.committer.record(
        NewEvent(
            user_id=user_id, type=EventType.objection_rejected, at=datetime.now(UTC), channel=Channel.web,
            note=grounds, actor=f"admin:{admin.username}",
        )
    )
    person = c.directory.by_id(user_id)
    if person and person.email:
        background.add_task(_send_rejection, c, person.email, person.language, grounds)
    return RedirectResponse("/admin", status_code=303)


def _send_rejection(c: Center, email: str, language: str | None, grounds: str) -> None:
    lang = i18n.pick(person=language)
    _ = c.gettext(lang)
    text = c.mail_templates.get_template("mail/rejection.txt").render(
        _=_, grounds=grounds, base_url=c.settings.base_url, platform=c.settings.platform_name
    )
    c.outbox.send(Message(to=email, subject=_("Decision on your objection"), text=text, headers={"X-Consentry-Kind": "rejection"}))


@router.post("/third-party/{ref}", dependencies=[Depends(require_csrf)])
def resolve_third_party(
    ref: str,
    background: BackgroundTasks,
    resolution: str = Form(..., min_length=3, max_length=4000),
    status: str = Form(...),
    item_ids: list[str] = Form([], max_length=500),
    more_items: str = Form("", max_length=4000),
    c: Center = Depends(center),
    admin: Admin = Depends(reviewer_required),
) -> Response:
    """Link the objection to the photos that show the person (they then leave
    every snapshot, or have faces blurred where the policy blurs), or close it."""
    if status not in ("linked", "closed"):
        raise HTTPException(status_code=400, detail="status is 'linked' or 'closed'")
    actor = f"admin:{admin.username}"
    parties = ThirdParties(c.ledger.engine, c.export)
    request_row = parties.request(ref)
    try:
        if status == "linked":
            count = parties.link(ref, [*item_ids, *named_tokens(more_items)], actor=actor, resolution=resolution.strip())
        else:
            count = 0
            parties.close(ref, actor=actor, resolution=resolution.strip())
    except ThirdPartyError as exc:
        code = 404 if "No open objection" in str(exc) else 400
        raise HTTPException(status_code=code, detail=str(exc)) from None
    if request_row:
        background.add_task(
            _send_third_party_outcome, c, request_row["email"], request_row["language"], status, count, resolution.strip()
        )
    return RedirectResponse("/admin", status_code=303)


def _send_third_party_outcome(c: Center, email: str, language: str | None, status: str, count: int, resolution: str) -> None:
    lang = i18n.pick(person=language)
    _ = c.gettext(lang)
    text = c.mail_templates.get_template("mail/third_party_outcome.txt").render(
        _=_, linked=status == "linked", count=count, resolution=resolution, platform=c.settings.platform_name
    )
    c.outbox.send(Message(to=email, subject=_("Your objection about photos"), text=text, headers={"X-Consentry-Kind": "third_party_outcome"}))
