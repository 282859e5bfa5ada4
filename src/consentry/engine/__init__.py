"""Decisions (CONTRACT §3): the rules compiled to set operations, never a loop over items."""

from .compile import Compiler
from .evaluate import Evaluation, decide, evaluate
from .rules import MEANING, ORDER, PERSON_RULES, Reason

__all__ = ["MEANING", "ORDER", "PERSON_RULES", "Compiler", "Evaluation", "Reason", "decide", "evaluate"]
