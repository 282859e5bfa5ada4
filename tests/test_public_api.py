"""The public namespace is curated: what `import consentry` offers is listed,
and each name is there."""

from __future__ import annotations

import subprocess
import sys

import pytest

import consentry
from consentry.errors import InputError


def test_the_public_names() -> None:
    assert consentry.__all__ == [
        "ConsentryError", "ENGINES", "Evaluation", "Explanation", "Export", "ExportInvalid", "InputError", "Ledger", "LedgerError",
        "Manifest", "NewEvent", "Platform", "Policy", "PolicyError", "Reason", "Registry", "SnapshotError",
        "SnapshotRecord", "StoredEvent", "Transforms", "find_pii", "load_policy", "open_export", "redact_texts",
        "__version__",
    ]
    assert sorted(consentry._HOMES) + ["__version__"] == consentry.__all__  # every public name has a home
    for name in consentry.__all__:
        assert getattr(consentry, name) is not None
        assert name == "__version__" or name.isupper() or getattr(consentry, name).__doc__, f"{name} has no docstring"
    # Every error a user can catch is a ConsentryError.
    for name in ("InputError", "PolicyError", "LedgerError", "ExportInvalid", "SnapshotError"):
        assert issubclass(getattr(consentry, name), consentry.ConsentryError), name
    assert consentry.ENGINES == ("duckdb", "spark")
    with pytest.raises(AttributeError):
        consentry.Nothing  # noqa: B018


def test_importing_consentry_stays_light() -> None:
    """The CLI imports `consentry` first: the front door loads on first use."""
    code = "import sys, consentry; print(sorted(m for m in ('duckdb', 'sqlalchemy', 'pyspark') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_platform_refuses_an_unknown_engine(tmp_path) -> None:
    from exportkit import base_content, base_users, write_export

    folder = write_export(tmp_path / "e", base_users(), base_content())
    with pytest.raises(InputError, match="unknown engine 'polars'"):
        consentry.Platform(folder, f"sqlite:///{tmp_path / 'l.db'}", engine="polars")  # type: ignore[arg-type]


def test_configuration_is_read_in_one_place() -> None:
    """#16 point 1: every CONSENTRY_* variable is read by consentry.config and
    nowhere else in the library, and config knows each one it reads."""
    import re
    from pathlib import Path

    from consentry import config

    src = Path(config.__file__).parent
    readers = {}
    for path in src.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "config.py" and re.search(r"environ(\.get)?[\[(]\s*[\"']CONSENTRY_", text):
            readers[str(path.relative_to(src))] = True
    assert not readers, f"read outside consentry.config: {sorted(readers)}"
    named = set(re.findall(r"_get\(\"(CONSENTRY_\w+)\"\)", Path(config.__file__).read_text(encoding="utf-8")))
    assert named <= set(config.VARIABLES), named - set(config.VARIABLES)


@pytest.mark.slow
def test_a_ledger_opened_without_a_url_is_the_one_every_command_opens(tmp_path, monkeypatch) -> None:
    """There were two defaults: `Ledger()` opened consentry.db in the working
    folder, ignoring CONSENTRY_HOME and CONSENTRY_LEDGER, while the CLI used them."""
    from consentry import config
    from consentry.ledger import Ledger

    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONSENTRY_LEDGER", raising=False)
    (tmp_path / "home").mkdir()
    with Ledger() as led:
        assert led.url == config.ledger_url() == f"sqlite:///{tmp_path / 'home' / 'consentry.db'}"
    monkeypatch.setenv("CONSENTRY_LEDGER", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    with Ledger() as led:
        assert led.url.endswith("elsewhere.db")


def test_platform_keeps_the_ledgers_events_in_the_extracts_folder_it_is_given(tmp_path) -> None:
    """A library user's re-runs read only the new events, as the CLI's do; the
    decisions are those of a platform that reads every event from the database."""
    from datetime import UTC, datetime

    import pyarrow.parquet as pq
    from exportkit import base_content, base_users, write_export

    folder = write_export(tmp_path / "e", base_users(), base_content())
    url = f"sqlite:///{tmp_path / 'l.db'}"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with consentry.Ledger(url) as led:
        led.append([consentry.NewEvent(user_id=u, type="notified", at="2024-01-01T00:00:00Z", channel="email")
                    for u in ("u1", "u2", "u3")])
    kept = tmp_path / "extracts"
    with consentry.Platform(folder, url, extracts=kept) as p:
        first = p.evaluate(at, tmp_path / "d1.parquet")
        assert any(kept.iterdir()) and first.watermark == 3  # the events, kept at watermark 3
        p.ledger.record(consentry.NewEvent(user_id="u1", type="objected", at="2025-06-01T00:00:00Z", channel="web"))
        second = p.evaluate(at, tmp_path / "d2.parquet")
    with consentry.Platform(folder, url) as plain:
        fresh = plain.evaluate(at, tmp_path / "d3.parquet")
    assert second.watermark == fresh.watermark == 4
    assert second.counts == fresh.counts != first.counts
    decided = [pq.read_table(tmp_path / f).sort_by("item_id") for f in ("d2.parquet", "d3.parquet")]
    assert decided[0].equals(decided[1])


def test_platform_refuses_extracts_for_a_ledger_already_open(tmp_path) -> None:
    from exportkit import base_content, base_users, write_export

    folder = write_export(tmp_path / "e", base_users(), base_content())
    with consentry.Ledger(f"sqlite:///{tmp_path / 'l.db'}") as led, \
            pytest.raises(InputError, match="extracts= applies to a ledger given by its URL"):
        consentry.Platform(folder, led, extracts=tmp_path / "x")


def test_platform_takes_a_cutoff_as_text_or_a_naive_utc_datetime_whatever_the_machines_zone(tmp_path, monkeypatch) -> None:
    """A user's `p.evaluate(at="2024-06-26T00:00:00Z", ...)` ended in
    AttributeError ('str' object has no attribute 'astimezone'), and a naive
    datetime was read in the machine's zone: on a New York machine an objection
    made an hour after the cut-off counted. The contract reads naive times as UTC."""
    import time
    from datetime import UTC, datetime

    import pyarrow.parquet as pq
    from exportkit import base_content, base_users, write_export

    folder = write_export(tmp_path / "e", base_users(), base_content())
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with consentry.Ledger(url) as led:
        led.append([consentry.NewEvent(user_id=u, type="notified", at="2024-01-01T00:00:00Z", channel="email")
                    for u in ("u1", "u2", "u3")])
        led.append([consentry.NewEvent(user_id="u1", type="objected", at="2025-06-01T03:00:00Z", channel="web")])
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        with consentry.Platform(folder, url) as p:
            runs = {
                "aware": p.evaluate(datetime(2025, 6, 1, 2, 0, tzinfo=UTC), tmp_path / "a.parquet"),
                "text": p.evaluate("2025-06-01T02:00:00Z", tmp_path / "t.parquet"),
                "naive": p.evaluate(datetime(2025, 6, 1, 2, 0), tmp_path / "n.parquet"),
            }
            assert p.explain("i1", "2025-06-01T02:00:00Z").reason == p.explain("i1", datetime(2025, 6, 1, 2, 0)).reason
            assert p.audience("2025-06-01T02:00:00Z").num_rows == p.audience(datetime(2025, 6, 1, 2, 0)).num_rows
            with pytest.raises(InputError, match="is not an ISO 8601 cut-off"):
                p.evaluate("next tuesday", tmp_path / "x.parquet")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert runs["aware"].counts == runs["text"].counts == runs["naive"].counts
    assert "objected" not in runs["naive"].counts or runs["naive"].counts["objected"] == 0
    tables = [pq.read_table(tmp_path / f).sort_by("item_id") for f in ("a.parquet", "t.parquet", "n.parquet")]
    assert tables[0].equals(tables[1]) and tables[0].equals(tables[2])


def test_a_naive_datetime_is_utc_in_every_conversion_whatever_the_machines_zone(monkeypatch) -> None:
    import time
    from datetime import UTC, datetime

    from consentry.i18n import instant
    from consentry.timeutil import iso, naive_utc, to_micros

    monkeypatch.setenv("TZ", "Asia/Kolkata")  # +05:30: an hour-only shift would hide half-hour bugs
    time.tzset()
    try:
        naive, aware = datetime(2024, 6, 26, 0, 0), datetime(2024, 6, 26, 0, 0, tzinfo=UTC)
        assert to_micros(naive) == to_micros(aware) == 1_719_360_000_000_000
        assert iso(naive) == iso(aware) == "2024-06-26T00:00:00Z"
        assert naive_utc(naive) == naive_utc(aware) == naive
        assert instant(naive, "en") == instant(aware, "en")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_what_a_notebook_shows_of_the_objects_is_short_and_never_a_password(tmp_path) -> None:
    """`Platform`'s repr was a screen of the policy's fields and
    `<consentry.ledger.store.Ledger object at 0x...>`; and an evaluation's
    counts came in the order DuckDB grouped them, not in rule order."""
    from datetime import UTC, datetime

    from exportkit import base_content, base_users, write_export

    folder = write_export(tmp_path / "e", base_users(), base_content())
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with consentry.Ledger(url) as led:
        led.append([consentry.NewEvent(user_id="u1", type="notified", at="2024-01-01T00:00:00Z", channel="email"),
                    consentry.NewEvent(user_id="u2", type="objected", at="2024-01-01T00:00:00Z", channel="web")])
    with consentry.Platform(folder, url) as p:
        assert repr(p) == (f"Platform(export=Export({str(folder)!r}), ledger=Ledger({url!r}), "
                           f"policy='recommended {p.policy.hash}', engine='duckdb')")
        counts = p.evaluate(datetime(2026, 1, 1, tzinfo=UTC), tmp_path / "d.parquet").counts
    order = [r.value for r in consentry.Reason]
    assert len(counts) > 1 and list(counts) == sorted(counts, key=order.index), counts
    pg = consentry.Ledger.__new__(consentry.Ledger)
    pg.url = "postgresql+psycopg://dpo:hunter2@db.example/ledger"
    assert repr(pg) == "Ledger('postgresql+psycopg://dpo:***@db.example/ledger')"


# -- a data engineer's trial of the library (2026-12-05) -------------------------------------------


def test_the_library_never_decides_over_an_export_the_contract_refuses(tmp_path, monkeypatch) -> None:
    """`Platform.evaluate`, `explain` and `snapshots.build` never validated the
    export: a duplicate user_id gave two decisions for one item (one of them
    'eligible' for a deleted account), and a tag naming no user let a photo
    through under `require`; the CLI refused the same export. Now the library
    validates before its first decision, unless the export was (open_export)."""
    from datetime import UTC, datetime

    from exportkit import base_content, base_users, write_export

    from consentry.snapshots import build

    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    users = [*base_users(), {**base_users()[0], "handle": "twin", "deleted_at": "2024-01-01T00:00:00Z"}]
    folder = write_export(tmp_path / "e", users, base_content(), [{"item_id": "i2", "tagged_user_id": "nobody"}])
    with consentry.Platform(folder, f"sqlite:///{tmp_path / 'l.db'}", create_ledger=True) as p:
        for call in (lambda: p.evaluate("2024-06-26", tmp_path / "d.parquet"), lambda: p.explain("i1", "2024-06-26"),
                     lambda: p.audience("2024-06-26"),
                     lambda: build(consentry.Export(folder), p.ledger, p.policy, datetime(2024, 6, 26, tzinfo=UTC), "s",
                                   out=tmp_path / "s")):
            with pytest.raises(consentry.ExportInvalid) as refused:
                call()
            assert "users.parquet, column 'user_id'" in str(refused.value) and "tagged_user_id" in str(refused.value)
    assert not (tmp_path / "d.parquet").exists() and not (tmp_path / "s").exists()


def test_a_watermark_the_ledger_has_not_reached_is_refused(tmp_path) -> None:
    """`evaluate(watermark=10**9)` (or -1) was taken as it was and written to
    the audit chain as what the decision read."""
    from exportkit import base_content, base_users, write_export

    folder = write_export(tmp_path / "e", base_users(), base_content())
    with consentry.Platform(folder, f"sqlite:///{tmp_path / 'l.db'}", create_ledger=True) as p:
        p.ledger.append([consentry.NewEvent(user_id="u1", type="notified", at="2024-01-01T00:00:00Z", channel="email")])
        for bad in (10**9, -1, 2):
            with pytest.raises(InputError, match=f"watermark {bad} is not one this ledger has reached .0 to 1."):
                p.evaluate("2024-06-26", tmp_path / "d.parquet", watermark=bad)
        assert p.evaluate("2024-06-26", tmp_path / "d.parquet", watermark=0).watermark == 0


def test_an_output_path_with_a_quote_is_written(tmp_path) -> None:
    """`--out "$PWD/q'dir/d.parquet"` (or `bob's.parquet`) ended in a DuckDB
    parser traceback: the path went into the COPY statement unquoted."""
    from exportkit import base_content, base_users, write_export

    folder = write_export(tmp_path / "e", base_users(), base_content())
    (tmp_path / "q'dir").mkdir()
    with consentry.Platform(folder, f"sqlite:///{tmp_path / 'l.db'}", create_ledger=True) as p:
        result = p.evaluate("2024-06-26", tmp_path / "q'dir" / "bob's.parquet")
    assert (tmp_path / "q'dir" / "bob's.parquet").is_file() and sum(result.counts.values()) == len(base_content())


def test_a_bad_event_built_in_code_is_a_consentry_error(tmp_path) -> None:
    """README §9 catches `consentry.ConsentryError` around `NewEvent(...)`, but
    a misspelt type raised pydantic's ValidationError past it."""
    from datetime import UTC, datetime

    for bad in ({"type": "objectd"}, {"channel": "apii"}, {"user_id": " u1"}, {"user_id": None}):
        fields = {"user_id": "u1", "type": "objected", "at": datetime.now(UTC), "channel": "api", **bad}
        with pytest.raises(consentry.ConsentryError, match="not a valid event") as refused:
            consentry.NewEvent(**fields)
        assert next(iter(bad)) in str(refused.value)


def test_wrong_argument_types_from_users_code_are_said_not_attribute_errors(tmp_path, monkeypatch) -> None:
    """`p.evaluate(12345, ...)` and `p.explain(None, ...)` ended in
    AttributeError; `snapshots.build(..., out="/tmp/x")` too, though Platform
    takes `str | Path` everywhere. The type `explain` returns is public."""
    from datetime import UTC, datetime

    from exportkit import base_content, base_users, write_export

    from consentry.snapshots import build

    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    folder = write_export(tmp_path / "e", base_users(), base_content())
    with consentry.Platform(folder, f"sqlite:///{tmp_path / 'l.db'}", create_ledger=True) as p:
        with pytest.raises(InputError, match="12345 is not a cut-off"):
            p.evaluate(12345, tmp_path / "d.parquet")  # type: ignore[arg-type]
        with pytest.raises(InputError, match="None is not an item id"):
            p.explain(None, "2024-06-26")  # type: ignore[arg-type]
        assert isinstance(p.explain("i1", "2024-06-26"), consentry.Explanation)
        m = build(p._valid(), p.ledger, p.policy, datetime(2024, 6, 26, tzinfo=UTC), "s", out=str(tmp_path / "s"))
    assert m.rows >= 0 and (tmp_path / "s" / "manifest.json").is_file()


def test_a_spark_worker_imports_only_what_reads_an_export() -> None:
    """Spark starts a Python worker for each step of reading an export in a
    bucket (finding, creating and planning the data source, then each task).
    The worker imports `engine.spark_files`; with the engine's and the
    sources' packages loading everything, that was 1.5 s a worker, 0.5 s now."""
    pytest.importorskip("pyspark")
    heavy = ("sqlalchemy", "pydantic", "consentry.ledger", "consentry.engine.compile", "consentry.sources.validation",
             "consentry.policy")
    code = ("import sys, consentry.engine.spark_files; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("package", ["consentry", "consentry.engine", "consentry.sources"])
def test_no_module_hides_a_public_name(package: str) -> None:
    """A package that loads its names on first use must not have a module of the
    same name: importing `engine/evaluate.py` would set `consentry.engine.evaluate`
    to that module, and `from consentry.engine import evaluate` would then give a
    module where the function was meant. Every module is imported here first."""
    import importlib
    import pkgutil

    pkg = importlib.import_module(package)
    modules = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    assert not modules & set(pkg.__all__), modules & set(pkg.__all__)
    for name in sorted(modules):
        if name not in ("cli", "__main__") and not name.startswith("spark"):  # pyspark is an extra
            importlib.import_module(f"{package}.{name}")
    for name in pkg.__all__:
        assert not isinstance(getattr(pkg, name), type(sys)), f"{package}.{name} is a module"
