"""The house's layout holds: the library never imports its faces, and no two
packages import each other, directly or round a circle (read from the source
with `ast`, imports inside functions included)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import consentry

pytestmark = pytest.mark.slow  # every test here: see the markers in pyproject.toml

ROOT = Path(consentry.__file__).parent
#: The faces over the library: the command line and the privacy center (and the
#: audit reports, which read everything). Nothing below them imports them.
FACES = {"cli", "commands", "center", "audit"}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _graph() -> dict[str, set[str]]:
    """Package -> the packages (or top-level modules) of consentry it imports."""
    edges: dict[str, set[str]] = defaultdict(set)
    for f in ROOT.rglob("*.py"):
        parts = list(f.relative_to(ROOT.parent).with_suffix("").parts)
        here = parts[:-1] if f.name == "__init__.py" else parts  # the module's name
        package = parts[:-1]  # what a relative import starts from
        source = _package(".".join(here))
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - (node.level - 1)] if node.level else []
                head = ".".join(base + ([node.module] if node.module else []))
                targets = [head] if node.module else [f"{head}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for t in targets:
                if t.startswith("consentry.") and _package(t) != source:
                    edges[source].add(_package(t))
    return edges


def test_the_library_never_imports_its_faces() -> None:
    edges = _graph()
    assert {"engine", "ledger", "snapshots", "sources", "policy"} <= set(edges)  # the walk really read the packages
    wrong = {(a, b) for a, targets in edges.items() if a not in FACES for b in targets if b in FACES}
    assert wrong == set()
    assert "commands" in edges["cli"] and "snapshots" in edges["commands"]  # faces import the library


def test_no_two_packages_import_each_other_round_a_circle() -> None:
    assert _cycles(_graph()) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]  # the check can fail


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every circle a depth-first walk meets (each node walked once)."""
    found: list[list[str]] = []
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt in path:
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in done:
                walk(nxt, [*path, nxt])
        done.add(node)

    for start in sorted(edges):
        if start not in done:
            walk(start, [start])
    return found


def _deep_imports(face: str) -> set[str]:
    """The modules inside other packages (`consentry.snapshots.purge`, not
    `consentry.snapshots`) that the modules of package `face` import."""
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    found = set()
    for f in (ROOT / face).rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if node.level == 2 and len(parts) > 1 and parts[0] in packages and parts[0] != face:
                    found.add(f"{f.name}: from ..{node.module}")
    return found


def test_the_faces_use_the_packages_public_names_only() -> None:
    """#16 point 1: the CLI and the center import what a package offers in its
    `__all__` (`from ..snapshots import purge`), never a module inside it, so
    the packages can move their insides without breaking a face."""
    assert _deep_imports("commands") == set()
    assert _deep_imports("center") == set()
    assert _deep_imports("snapshots")  # the check can fail: the library's packages may reach inside each other


def test_every_error_a_user_can_catch_is_defined_in_errors_py() -> None:
    """The exception tree in one file (as httpx's `_exceptions.py`): a class
    that raises to the user is found in `consentry/errors.py`, not spread over
    the packages (SnapshotError, ExportInvalid, the mail, link and
    third-party errors were). Private helpers (`_RepeatedKey`) and a face's
    HTTP exceptions are not the user's."""
    tree = ast.parse((ROOT / "errors.py").read_text(encoding="utf-8"))
    ours = {"Exception", "BaseException", "ValueError"} | {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    elsewhere = []
    for f in ROOT.rglob("*.py"):
        if f == ROOT / "errors.py":
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and \
                    any(ast.unparse(b).split(".")[-1] in ours for b in node.bases):
                elsewhere.append(f"{f.relative_to(ROOT)}: {node.name}")
    assert elsewhere == []
