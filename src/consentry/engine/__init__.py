"""Decisions (CONTRACT §3): the rules compiled to set operations, never a loop over items."""

from .compile import Compiler
from .evaluate import Evaluation, decide, decisions_path, evaluate
from .explain import Explanation
from .rules import MEANING, ORDER, PERSON_RULES, Reason

__all__ = ["MEANING", "ORDER", "PERSON_RULES", "SPARK_REACH_FIX", "Compiler", "Evaluation", "Explanation", "Reason", "decide",
           "decisions_path", "evaluate", "spark_session", "spark_unreachable"]


def __getattr__(name: str):  # noqa: ANN202 - Spark's module is loaded only when Spark is asked for
    if name == "spark_session":
        from .spark import session

        return session
    if name in ("spark_unreachable", "SPARK_REACH_FIX"):  # what a Spark task that could not reach a bucket said
        from .spark_files import FIX, unreachable

        return unreachable if name == "spark_unreachable" else FIX
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
