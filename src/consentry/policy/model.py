"""Policies as code: a declarative document every engine compiles the same way."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..words import plural
from .regions import COUNTRY_CODES, GROUPS, expand

#: Kinds the contract knows; others (video, reel, ...) are allowed when listed.
KNOWN_KINDS = ("post", "photo", "caption", "comment", "story", "private_message")
EVERYWHERE_ELSE = "*"


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
    redact_emails: bool = True
    redact_phones: bool = True
    redact_ibans: bool = True
    redact_cards: bool = True  # 13-19 digits in an issuer's range that pass the Luhn check
    mentions: bool = True  # @handle of a person who fails the person rules -> @[person]
    strip_exif: bool = True  # images are re-encoded without EXIF/GPS


class Jurisdiction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    countries: list[str] = Field(
        min_length=1,
        description="ISO 3166-1 alpha-2 codes, the groups EU and EEA, or '*' for everywhere else",
    )
    basis: Basis
    honour_objections: bool
    notice_days: int | None = Field(default=None, ge=0, le=3650)

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
    minimum_age: int = Field(default=18, ge=0, le=120)
    minimum_age_at_posting: bool = False
    content_since: date | None = None
    tagged_people: TaggedPeople = TaggedPeople.require
    unknown_country: str | None = Field(
        default=None,
        description="jurisdiction for people whose country is unknown; default: the '*' one",
    )
    jurisdictions: list[Jurisdiction] = Field(min_length=1)
    #: Rule 15: objections by people without an account to items that show them.
    honour_third_party_objections: bool = True
    transforms: Transforms = Transforms()

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
