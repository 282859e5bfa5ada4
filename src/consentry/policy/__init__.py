"""Policies: which content, whose, on what legal basis, with which safeguards."""

from .load import DEFAULT_POLICY, load_policy, parse_policy, preset_names, preset_text
from .model import Basis, Jurisdiction, Policy, TaggedPeople, Transforms

__all__ = [
    "DEFAULT_POLICY",
    "Basis",
    "Jurisdiction",
    "Policy",
    "TaggedPeople",
    "Transforms",
    "load_policy",
    "parse_policy",
    "preset_names",
    "preset_text",
]
