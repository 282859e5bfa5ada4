"""Decisions (CONTRACT §3): the rules compiled to set operations, never a loop over items.

Names load on first use: Spark's Python workers import `engine.spark_files`
(the data source that reads an export in a bucket) and nothing else of the
engine. Loading the compiler and the ledger with it tripled each worker's
imports (1.5 s against 0.5 s, pyspark's own included). A module here is never named after
one of the package's public names, which it would hide once imported."""

from __future__ import annotations

from typing import TYPE_CHECKING

#: Public name -> the module of this package that is its home.
_HOMES = {
    "Compiler": ".compile", "Evaluation": ".evaluation", "decide": ".evaluation", "decisions_path": ".evaluation",
    "evaluate": ".evaluation", "Explanation": ".explain", "MEANING": ".rules", "ORDER": ".rules",
    "PERSON_RULES": ".rules", "Reason": ".rules",
    "spark_session": (".spark", "session"),  # Spark's modules load only when Spark is asked for
    "spark_unreachable": (".spark_files", "unreachable"),  # what a Spark task that could not reach a bucket said
    "SPARK_REACH_FIX": (".spark_files", "FIX"),
}

__all__ = ["MEANING", "ORDER", "PERSON_RULES", "SPARK_REACH_FIX", "Compiler", "Evaluation", "Explanation", "Reason", "decide",
           "decisions_path", "evaluate", "spark_session", "spark_unreachable"]

if TYPE_CHECKING:
    from .compile import Compiler
    from .evaluation import Evaluation, decide, decisions_path, evaluate
    from .explain import Explanation
    from .rules import MEANING, ORDER, PERSON_RULES, Reason


def __getattr__(name: str):  # noqa: ANN202
    if name in _HOMES:
        from importlib import import_module

        home = _HOMES[name]
        module, attr = home if isinstance(home, tuple) else (home, name)
        return getattr(import_module(module, __name__), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
