"""Decisions (CONTRACT §3): the rules compiled to set operations, never a loop over items."""

from .compile import Compiler
from .evaluate import Evaluation, decide, evaluate
from .rules import MEANING, ORDER, PERSON_RULES, Reason

__all__ = ["MEANING", "ORDER", "PERSON_RULES", "Compiler", "Evaluation", "Reason", "decide", "evaluate", "spark_session"]


def __getattr__(name: str):  # noqa: ANN202 - Spark's module is loaded only when Spark is asked for
    if name == "spark_session":
        from .spark import session

        return session
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
