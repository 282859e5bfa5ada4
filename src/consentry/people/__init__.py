"""One person's view: who they are in the export, what of theirs is used and why."""

from .directory import Directory, Person
from .view import ItemDecision, PersonView, data_archive, person_view

__all__ = ["Directory", "ItemDecision", "Person", "PersonView", "data_archive", "person_view"]
