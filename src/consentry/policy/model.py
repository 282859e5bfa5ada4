"""Policies as code: a declarative document every engine compiles the same way."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import PolicyError
from ..words import plural
from .regions import COUNTRY_CODES, GROUPS, expand

#: Kinds the contract knows; others (video, reel, ...) are allowed when listed.
KNOWN_KINDS = ("post", "photo", "caption", "comment", "story", "private_message")
EVERYWHERE_ELSE = "*"

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _a_date(value: object) -> object:
    """content_since: a YAML date (2024-06-26) or the same written as a string (as a
    snapshot's manifest stores it). Numbers are refused: pydantic's lax mode read
    0 as 1970-01-01 (a Unix timestamp)."""
    if isinstance(value, datetime):  # YAML reads an unquoted 2024-06-26T00:00:00+05:00 as a time
        raise ValueError("content_since is a day, written YYYY-MM-DD like 2024-06-26, not a time: items are used "
                         "from the start of that day (UTC); a time and its offset would be dropped")
    if isinstance(value, bool | int | float):
        raise ValueError("a date is written YYYY-MM-DD, like 2024-06-26, not as a number (a number "
                         "would be read as seconds since 1970) or true/false")
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value.strip()):
        raise ValueError("a date is written YYYY-MM-DD, like 2024-06-26")
    return value


StrictDate = Annotated[date, BeforeValidator(_a_date)]


def _typo_of(word: str, kind: str) -> bool:
    """One edit away (a letter left out, added, changed or two swapped), two for long kinds."""
    if len(word) < 3:
        return False
    limit = 2 if len(kind) >= 7 else 1
    if abs(len(word) - len(kind)) > limit:
        return False
    # Damerau-Levenshtein (optimal string alignment) distance.
    prev2: list[int] = []
    prev = list(range(len(kind) + 1))
    for i, a in enumerate(word, 1):
        cur = [i] + [0] * len(kind)
        for j, b in enumerate(kind, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b))
            if i > 1 and j > 1 and a == kind[j - 2] and word[i - 2] == b:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1] <= limit


class Basis(StrEnum):
    legitimate_interest = "legitimate_interest"
    consent = "consent"


class TaggedPeople(StrEnum):
    """What to do with an item that shows a person who fails the person rules."""

    require = "require"  # exclude the item (reason tagged_person)
    blur = "blur"  # keep it, blur that person's face when building a snapshot
    ignore = "ignore"  # do not look at tagged people at all (meta-2024)


class Transforms(BaseModel):
    """What a snapshot build changes in what it copies. Not part of any
    decision, so not part of the policy's hash; the manifest records them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    redact_emails: StrictBool = True
    redact_phones: StrictBool = True
    redact_ibans: StrictBool = True
    redact_cards: StrictBool = True  # 13-19 digits in an issuer's range that pass the Luhn check
    mentions: StrictBool = True  # @handle of a person who fails the person rules -> @[person]
    strip_exif: StrictBool = True  # images are re-encoded without EXIF/GPS


class Jurisdiction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    countries: list[str] = Field(
        min_length=1,
        description="ISO 3166-1 alpha-2 codes, the groups EU and EEA, or '*' for everywhere else",
    )
    basis: Basis
    honour_objections: StrictBool
    #: Required: leaving it out used to mean "no notice rule" (rule 12 off) without a word.
    #: null is the explicit way to say so.
    notice_days: StrictInt | None = Field(ge=0, le=3650)

    @field_validator("countries")
    @classmethod
    def _known_countries(cls, value: list[str]) -> list[str]:
        codes = expand([c.strip().upper() if c != EVERYWHERE_ELSE else c for c in value])
        bad = [c for c in codes if c != EVERYWHERE_ELSE and c not in COUNTRY_CODES]
        if bad:
            raise ValueError(
                f"unknown country {plural(len(bad), 'code', 'codes')} {', '.join(bad)}: use ISO 3166-1 alpha-2 codes "
                f"(DE, GB, US), the groups {', '.join(GROUPS)}, or '*' for everywhere else"
            )
        if EVERYWHERE_ELSE in codes and len(codes) > 1:
            raise ValueError("'*' (everywhere else) must stand alone in its jurisdiction")
        if len(set(codes)) != len(codes):
            dupes = sorted({c for c in codes if codes.count(c) > 1})
            raise ValueError(f"country listed twice: {', '.join(dupes)}")
        return codes

    @property
    def is_default(self) -> bool:
        return self.countries == [EVERYWHERE_ELSE]


class Policy(BaseModel):
    """A decision policy (CONTRACT §4): lawful basis, jurisdictions, kinds, tagged people,
    transforms. Frozen; its hash is recorded with every decision made under it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    kinds: list[str] = Field(min_length=1)
    minimum_age: StrictInt = Field(default=18, ge=0, le=120)
    minimum_age_at_posting: StrictBool = False
    content_since: StrictDate | None = None
    tagged_people: TaggedPeople = TaggedPeople.require
    unknown_country: str | None = Field(
        default=None,
        description="jurisdiction for people whose country is unknown; default: the '*' one",
    )
    jurisdictions: list[Jurisdiction] = Field(min_length=1)
    #: Rule 15: objections by people without an account to items that show them.
    honour_third_party_objections: StrictBool = True
    transforms: Transforms = Transforms()

    def __init__(self, /, **data: Any) -> None:
        """From keywords, as users' code builds one: a bad field raises a
        PolicyError naming it, as `load_policy` does for a file, not pydantic's
        ValidationError. (`model_validate`, which `load_policy` calls, keeps
        pydantic's own path: it words the error with the file's name.)"""
        try:
            super().__init__(**data)
        except ValidationError as exc:
            from .wording import fix_of, message_of, path_of

            errors = exc.errors()
            fixes = list(dict.fromkeys(f for f in map(fix_of, errors) if f))
            raise PolicyError(
                "invalid policy:\n    " + "\n    ".join(f"{path_of(e['loc'])}: {message_of(e)}" for e in errors),
                where="Policy(...)",
                fix="; ".join(fixes) if fixes else "compare with `consentry policy show recommended`",
            ) from None

    # Not a "custom" __init__ to pydantic: `Policy.model_validate` does not come here.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        """Kinds are matched exactly (case-sensitively) against content.kind, whose
        contract values are lower case. So private_message is refused in any
        spelling, and a contract kind in another case ('Post'), which would match
        nothing, is refused rather than guessed. Other kinds are kept as written."""
        kinds = [k.strip() for k in value]
        if any(k.casefold() == "private_message" for k in kinds):
            raise ValueError(
                "private_message can never be used for training (CONTRACT rule 1): "
                "remove it from kinds (in any spelling)"
            )
        if any(not k for k in kinds):
            raise ValueError("a kind is empty")
        for k in kinds:
            if k.lower() in KNOWN_KINDS and k != k.lower():
                raise ValueError(
                    f"'{k}': kinds are matched exactly against content.kind, and the contract's "
                    f"kinds are lower case: write '{k.lower()}'"
                )
            # A plural of a contract kind ('photos') matches nothing either: every photo would be left
            # out without a word (an ML engineer's trial). Refused, as the case above.
            singular = {k.lower()[:-1], k.lower()[:-3] + "y"} & set(KNOWN_KINDS) if k.lower().endswith("s") else set()
            if singular:
                kind = singular.pop()
                if kind == "private_message":
                    raise ValueError("private_message can never be used for training (CONTRACT rule 1): "
                                     f"remove '{k}' from kinds")
                raise ValueError(
                    f"'{k}': kinds are matched exactly against content.kind, whose contract value is "
                    f"'{kind}': write '{kind}' (as written, no {kind} would ever be used)"
                )
        for k in kinds:
            # A typo of a contract kind ('phot') matches nothing: every photo would be left out
            # without a word. Other kinds (video, reel, ...) are the platform's own and kept.
            near = [c for c in KNOWN_KINDS if k.lower() != c and _typo_of(k.lower(), c)]
            if near and k.lower() not in KNOWN_KINDS:
                if near[0] == "private_message":
                    raise ValueError("private_message can never be used for training (CONTRACT rule 1): "
                                     f"remove '{k}' from kinds")
                raise ValueError(
                    f"'{k}' is not a kind the contract knows, and is a near miss of '{near[0]}': write "
                    f"'{near[0]}' (as written, no {near[0]} would ever be used). The contract's kinds are "
                    f"{', '.join(c for c in KNOWN_KINDS if c != 'private_message')}; other kinds "
                    f"(video, reel, ...) are kept as written"
                )
        if len(set(kinds)) != len(kinds):
            raise ValueError("a kind is listed twice")
        return kinds

    @model_validator(mode="after")
    def _jurisdictions(self) -> Policy:
        names = [j.name for j in self.jurisdictions]
        if len(set(names)) != len(names):
            raise ValueError("two jurisdictions share a name; names must be unique")
        defaults = [j for j in self.jurisdictions if j.is_default]
        if len(defaults) != 1:
            raise ValueError(
                "exactly one jurisdiction must have countries: ['*'] (everywhere else), "
                f"found {len(defaults)}"
            )
        seen: dict[str, str] = {}
        for j in self.jurisdictions:
            for c in j.countries:
                if c in seen and c != EVERYWHERE_ELSE:
                    raise ValueError(f"country {c} is in both '{seen[c]}' and '{j.name}'")
                seen[c] = j.name
        if self.unknown_country is not None and self.unknown_country not in names:
            raise ValueError(
                f"unknown_country names '{self.unknown_country}', which is not a jurisdiction "
                f"(have: {', '.join(names)})"
            )
        return self

    # -- derived ---------------------------------------------------------------

    @property
    def default_jurisdiction(self) -> Jurisdiction:
        return next(j for j in self.jurisdictions if j.is_default)

    @property
    def unknown_country_jurisdiction(self) -> Jurisdiction:
        if self.unknown_country is None:
            return self.default_jurisdiction
        return next(j for j in self.jurisdictions if j.name == self.unknown_country)

    def jurisdiction_for(self, country: str | None) -> Jurisdiction:
        if country is None:
            return self.unknown_country_jurisdiction
        for j in self.jurisdictions:
            if country in j.countries:
                return j
        return self.default_jurisdiction

    def rules_document(self) -> dict:
        """Everything that changes a decision, normalised (sorted, groups expanded)."""
        data = self.model_dump(mode="json", exclude={"name", "description", "transforms"})
        # Left out at its default, so the hashes of policies written before rule 15
        # existed (whose snapshots already kept linked photos out) stay the same.
        if data["honour_third_party_objections"]:
            del data["honour_third_party_objections"]
        data["kinds"] = sorted(data["kinds"])
        for j in data["jurisdictions"]:
            j["countries"] = sorted(j["countries"])
        data["jurisdictions"] = sorted(data["jurisdictions"], key=lambda j: j["name"])
        return data

    @property
    def hash(self) -> str:
        """Stable id of the rules: the same decisions give the same hash, whatever the
        file's layout, order or comments; renaming or re-describing keeps it."""
        canonical = json.dumps(self.rules_document(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
