"""Everything a request needs, built once per app: library objects, not web code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from jinja2 import Environment, FileSystemLoader
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from .. import config
from ..access import Admins, ApiClients, Links, RateLimiter
from ..ledger import GroupCommitter, Ledger
from ..notices import kind_words
from ..people import Directory, Person
from ..policy import Policy, load_policy
from ..sources import Export, ValidationMemo, open_export
from . import i18n
from .keychecks import KeyChecks
from .mail import CenterMail
from .security import SECURITY_HEADERS, csrf_token
from .settings import CenterSettings


@dataclass
class Center:
    settings: CenterSettings
    ledger: Ledger
    committer: GroupCommitter
    export: Export
    policy: Policy
    directory: Directory
    links: Links
    limiter: RateLimiter
    admins: Admins
    clients: ApiClients
    key_checks: KeyChecks  # the clients' keys, checked in batches by the API
    outbox: CenterMail  # the mail outbox and this worker's sender
    templates: Jinja2Templates
    mail_templates: Environment  # plain text: no HTML escaping in mails

    @classmethod
    def build(cls, settings: CenterSettings) -> Center:
        ledger = Ledger(settings.ledger_url)
        export, _, _ = open_export(settings.data, memo=ValidationMemo(config.validation_memo_path()))
        templates = Jinja2Templates(directory=str(resources.files(__package__) / "templates"))
        templates.env.autoescape = True
        mail_templates = Environment(loader=FileSystemLoader(str(resources.files(__package__) / "templates")), autoescape=False)
        for env in (templates.env, mail_templates):  # who is asking, on every page and in every mail
            env.globals["controller"] = settings.controller
        return cls(
            settings=settings,
            ledger=ledger,
            committer=GroupCommitter(ledger),
            export=export,
            policy=load_policy(settings.policy),
            directory=Directory(export),
            links=Links(ledger.engine, settings.secret_key.get_secret_value()),
            limiter=RateLimiter(ledger.engine),
            admins=Admins(ledger.engine),
            clients=(clients := ApiClients(ledger.engine)),
            key_checks=KeyChecks(clients),
            outbox=CenterMail(ledger, settings),
            templates=templates,
            mail_templates=mail_templates,
        )

    def close(self) -> None:
        """Stop this worker's mail sender (a pass under way finishes first) and
        release the ledger's connections. The app calls it at shutdown: a
        sender left running would go on claiming the outbox's mails, and
        holding them for its lease, after its center was gone."""
        self.outbox.close()
        self.ledger.close()

    def platform(self, lang: str) -> str:
        """The platform's name; not given, the catalog's placeholder for it
        ("[numele platformei]"), never the English words inside a Romanian sentence."""
        return self.settings.platform or self.gettext(lang)("the platform")

    def cutoff(self) -> datetime:
        return self.settings.cutoff or datetime.now(UTC)

    def honours_objection_of(self, person: Person) -> bool:
        """Whether the policy in use honours this person's objection (rule 11 in
        their jurisdiction): under `meta-2024` outside Europe it does not, and
        no page or mail may then say that their content is not used."""
        return self.policy.jurisdiction_for(person.country).honour_objections

    def third_party_terms(self) -> dict:
        """What the policy in use does with an objection from someone without an
        account (rule 15), so pages and mails promise only that: the photos left
        out, or their faces blurred (`tagged_people: blur`), or nothing (`meta-2024`)."""
        return {"honoured": self.policy.honour_third_party_objections, "blur": self.policy.tagged_people == "blur"}

    # -- people in sessions ---------------------------------------------------------

    def signed_in(self, request: Request) -> Person | None:
        uid = request.session.get("user_id")
        return self.directory.by_id(uid) if uid else None

    def lang(self, request: Request, person: Person | None = None) -> str:
        return i18n.pick(
            explicit=request.query_params.get("lang") or request.session.get("lang"),
            person=person.language if person else None,
            accept=request.headers.get("accept-language"),
        )

    @staticmethod
    def lang_href(request: Request, code: str) -> str:
        """The language menu's link: this very page in `code` (its other query
        parameters kept), or the home page when this page answered a POST. A
        query alone, relative to the page: the path, written back, made
        `/%2Fevil.example` a page whose every language link led off-site."""
        from urllib.parse import urlencode

        if request.method != "GET":
            return f"/?{urlencode({'lang': code})}"
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"] + [("lang", code)]
        return f"?{urlencode(query)}"

    def purged_by(self, at: datetime) -> datetime | None:
        """When data of an objection or erasure recorded `at` is out of every
        existing snapshot, by the operator's purge schedule (None: not configured)."""
        from datetime import timedelta

        hours = self.settings.purge_within_hours
        return None if hours is None else at + timedelta(hours=hours)

    def receipts(self, user_id: str) -> list[dict] | None:
        """This person's signed purge receipts; None when no key is configured."""
        if self.settings.receipt_key is None:
            return None
        from ..snapshots import issue_receipts as issue

        return issue(self.ledger, user_id, self.settings.receipt_key)

    # -- rendering -------------------------------------------------------------------

    def gettext(self, lang: str):  # noqa: ANN201
        return i18n.gettext(lang)

    def when(self, dt: datetime, lang: str) -> str:
        """An instant as people read it, always with its zone: UTC."""
        return i18n.instant(dt, lang)

    def render(
        self,
        request: Request,
        name: str,
        ctx: dict | None = None,
        *,
        status: int = 200,
        person: Person | None = None,
        speak_to: Person | None = None,
    ) -> HTMLResponse:
        """`person` is who is signed in; `speak_to` is whose language to use when
        a page is for someone who is not signed in (the notice's objection link)."""
        lang = self.lang(request, person or speak_to)
        chosen = request.query_params.get("lang")
        if request.method == "GET" and chosen in i18n.LANGUAGES and request.session.get("lang") != chosen:
            # The language menu's choice lasts for the visit: a person who chose German on /me was
            # answered in their browser's language on the next page (the erasure warning among them).
            request.session["lang"] = chosen
        context = {
            "_": i18n.gettext(lang),
            "ngettext": i18n.ngettext(lang),
            "in_time": lambda seconds: i18n.in_time(seconds, lang),
            "lang": lang,
            "languages": i18n.NAMES,
            "lang_href": lambda code: self.lang_href(request, code),
            "places": i18n.places,
            "csrf": csrf_token(request),
            "platform": self.platform(lang),
            "planned": self.settings.cutoff is not None,  # else cutoff() is "now", not a planned build
            "policy": self.policy,
            # the policy's kinds as the reader says them ("posts, photos"), as the notice mail writes them
            "kinds_used": kind_words(self.policy.kinds, i18n.gettext(lang)),
            "person": person,
            "when": lambda dt: self.when(dt, lang),
            "admin": request.session.get("admin"),
        }
        context.update(ctx or {})
        response = self.templates.TemplateResponse(request, name, context, status_code=status)
        for k, v in SECURITY_HEADERS.items():
            response.headers[k] = v
        return response
