"""One person's view: who they are in the export, what of theirs is used and why."""

from .directory import Directory, Person
from .third_party import Request as ThirdPartyRequest
from .third_party import ThirdParties, ThirdPartyError, named_tokens
from .view import ItemDecision, PersonView, data_archive, own_media, person_view

__all__ = [
    "Directory",
    "ItemDecision",
    "Person",
    "PersonView",
    "ThirdParties",
    "ThirdPartyError",
    "ThirdPartyRequest",
    "data_archive",
    "named_tokens",
    "own_media",
    "person_view",
]
