"""The notice itself, in plain words, from the policy (en, nl, de, fr)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape

from babel.dates import format_date

from ..controller import Controller
from ..policy import Policy
from ..timeutil import utc

TEMPLATE_VERSION = "1"


def kind_words(kinds: list[str], _: Callable[..., str]) -> str:
    """Content kinds as a reader says them ("posts, photos, comments"), for the
    notice and the GDPR documents alike; an unknown kind keeps its name."""
    labels = {
        "post": _("posts"), "photo": _("photos"), "caption": _("captions"), "comment": _("comments"),
        "story": _("stories"), "video": _("videos"), "reel": _("reels"),
    }
    return ", ".join(labels.get(k, k) for k in kinds)


def render_notice(
    _: Callable[..., str], policy: Policy, cutoff: datetime, link: str, platform: str, jurisdiction: str,
    controller: Controller | None = None,
) -> tuple[str, str, str]:
    """Subject, text and HTML of one notice; it names who is asking (`controller`)."""
    j = next((x for x in policy.jurisdictions if x.name == jurisdiction), policy.default_jurisdiction)
    lang = getattr(_, "lang", "en")
    date = format_date(utc(cutoff).date(), "long", locale=lang)
    subject = _("How %(platform)s will use your public posts to train AI, and how to say no", platform=platform)
    kinds = kind_words(policy.kinds, _)
    paras = [
        _("From %(date)s, %(platform)s will use public content to train AI models.", date=date, platform=platform),
        _("What is used: your public %(kinds)s, if you are %(age)s or older.", kinds=kinds, age=policy.minimum_age)
        + (" " + _("Nothing you posted before you turned %(age)s.", age=policy.minimum_age) if policy.minimum_age_at_posting else ""),
        _("Never used: private messages and anything that is not public."),
        (_("We rely on your consent: nothing is used unless you say yes.") if j.basis == "consent"
         else _("We rely on our legitimate interest.")),
        # Where the policy does not honour objections (meta-2024 outside Europe), the notice says so
        # and offers no objection link: it would promise what the decisions do not do.
        (_("You can object at any time, in one click, without giving a reason. Your objection applies from the moment we receive it, to everything you ever posted:")
         if j.honour_objections else
         _("Under this policy, objections from where you live are not honoured: your public content may be used even if you object.")),
    ]
    who = []  # who is asking, last, as a letter is signed
    if controller is not None and controller.name:
        who.append(_("%(platform)s is run by %(name)s, %(address)s.", platform=platform, name=controller.name,
                     address=controller.address or ""))
    if controller is not None and controller.dpo:
        who.append(_("Data protection officer: %(dpo)s", dpo=controller.dpo))
    me = link.split("/o/")[0] + "/me"
    objection = [link] if j.honour_objections else []
    text = "\n\n".join([*paras, *objection, _("Your data and choices") + ": " + me, *who])
    html = "".join(f"<p>{escape(p)}</p>" for p in paras) + "".join(
        f'<p><a href="{escape(x)}">{escape(_("Do not use my data for AI training"))}</a></p>' for x in objection) + (
        # The text part's link to the person's own page, which the HTML part (what most readers see) lacked.
        f'<p>{escape(_("Your data and choices"))}: <a href="{escape(me)}">{escape(me)}</a></p>'
    ) + "".join(f"<p>{escape(w)}</p>" for w in who)
    return subject, text + "\n", html
