"""The notice itself, in plain words, from the policy, in every language of the catalogs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape

from babel.dates import format_date

from ..controller import Controller
from ..policy import Policy
from ..timeutil import utc

#: 2: the notice says what is true of the person (their own content, photos of them posted by
#: others) and, under consent, how to say yes.
TEMPLATE_VERSION = "2"


def kind_words(kinds: list[str], _: Callable[..., str]) -> str:
    """Content kinds as a reader says them ("posts, photos, comments"), for the
    notice and the GDPR documents alike; an unknown kind keeps its name."""
    labels = {
        "post": _("posts"), "photo": _("photos"), "caption": _("captions"), "comment": _("comments"),
        "story": _("stories"), "video": _("videos"), "reel": _("reels"),
    }
    return ", ".join(labels.get(k, k) for k in kinds)


#: What a notice speaks of (`audience.scope_of`): the person's own content, photos of them
#: that others posted, or both.
SCOPES = ("own", "tagged", "both")


def render_notice(
    _: Callable[..., str], policy: Policy, cutoff: datetime, link: str, platform: str, jurisdiction: str,
    controller: Controller | None = None, *, scope: str = "own",
) -> tuple[str, str, str]:
    """Subject, text and HTML of one notice; it names who is asking (`controller`)
    and says what is true of this person (`scope`): what of their own is used,
    and what becomes of the photos of them that others posted, as the policy's
    `tagged_people` says. Where the basis is consent, it says how to say yes
    (sign in at the privacy center) instead of offering an objection link."""
    from ..policy import TaggedPeople

    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    j = next((x for x in policy.jurisdictions if x.name == jurisdiction), policy.default_jurisdiction)
    consent = j.basis == "consent"
    lang = getattr(_, "lang", "en")
    date = format_date(utc(cutoff).date(), "long", locale=lang)
    own, tagged = scope in ("own", "both"), scope in ("tagged", "both")
    if consent:
        subject = _("AI training at %(platform)s: nothing of yours is used unless you say yes", platform=platform)
    elif own:
        subject = _("How %(platform)s will use your public posts to train AI, and how to say no", platform=platform)
    else:
        subject = _("How %(platform)s will use public photos of you to train AI, and how to say no", platform=platform)
    kinds = kind_words(policy.kinds, _)
    paras = [_("From %(date)s, %(platform)s will use public content to train AI models.", date=date, platform=platform)]
    if own:
        paras.append(
            _("What is used: your public %(kinds)s, if you are %(age)s or older.", kinds=kinds, age=policy.minimum_age)
            + (" " + _("Nothing you posted before you turned %(age)s.", age=policy.minimum_age)
               if policy.minimum_age_at_posting else ""))
    if tagged:
        paras.append({
            TaggedPeople.require: _("Public photos of you that others posted: used only if the same rules allow it "
                                    "for you as for your own posts."),
            TaggedPeople.blur: _("Public photos of you that others posted: used with your face blurred, unless the "
                                 "same rules allow it for you as for your own posts."),
            TaggedPeople.ignore: _("Public photos of you that others posted may be used whatever you choose: this "
                                   "policy does not check the people shown in photos."),
        }[policy.tagged_people])
    paras.append(_("Never used: private messages and anything that is not public."))
    paras.append(_("We rely on your consent: nothing is used unless you say yes.") if consent
                 else _("We rely on our legitimate interest."))
    base = link.split("/o/")[0]
    home = base + "/"
    if consent:
        # Opt-in: the one thing to do is to say yes, where one signs in; an objection link as the only
        # action read as if their content were used unless they objected.
        paras.append(_("To say yes, sign in at %(url)s and give your consent there. You can withdraw it at any "
                       "time, and the withdrawal applies from the moment we receive it.", url=home))
    elif j.honour_objections:
        paras.append(_("You can object at any time, in one click, without giving a reason. Your objection applies "
                       "from the moment we receive it, to everything you ever posted:") if own else
                     _("You can object at any time, in one click, without giving a reason. Your objection applies "
                       "from the moment we receive it:"))
    else:
        # Where the policy does not honour objections (meta-2024 outside Europe), the notice says so
        # and offers no objection link: it would promise what the decisions do not do.
        paras.append(_("Under this policy, objections from where you live are not honoured: your public content "
                       "may be used even if you object."))
    who = []  # who is asking, last, as a letter is signed
    if controller is not None and controller.name:
        who.append(_("%(platform)s is run by %(name)s, %(address)s.", platform=platform, name=controller.name,
                     address=controller.address or ""))
    if controller is not None and controller.dpo:
        who.append(_("Data protection officer: %(dpo)s", dpo=controller.dpo))
    me = base + "/me"
    objection = [link] if j.honour_objections and not consent else []
    text = "\n\n".join([*paras, *objection, _("Your data and choices") + ": " + me, *who])

    def para(p: str) -> str:  # under consent, the sign-in address is a link, as in the text
        a = f'<a href="{escape(home)}">{escape(home)}</a>'
        return "<p>" + (escape(p).replace(escape(home), a, 1) if consent else escape(p)) + "</p>"

    html = "".join(para(p) for p in paras) + "".join(
        f'<p><a href="{escape(x)}">{escape(_("Do not use my data for AI training"))}</a></p>' for x in objection) + (
        # The text part's link to the person's own page, which the HTML part (what most readers see) lacked.
        f'<p>{escape(_("Your data and choices"))}: <a href="{escape(me)}">{escape(me)}</a></p>'
    ) + "".join(f"<p>{escape(w)}</p>" for w in who)
    return subject, text + "\n", html
