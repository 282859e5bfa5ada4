"""`Platform`: the one object every face builds (CLI, privacy center, users'
own code): a platform's export, its ledger and a policy, and the engine that
decides over them (`duckdb`, in this process, or `spark`, on a cluster)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import InputError
from .ledger import Ledger
from .policy import Policy, load_policy
from .sources import Export
from .timeutil import parse_instant

if TYPE_CHECKING:
    import pyarrow as pa

    from .engine import Evaluation, Explanation
    from .sources import ValidationMemo, ValidationReport

__all__ = ["ENGINES", "Platform"]

ENGINES = ("duckdb", "spark")
Engine = Literal["duckdb", "spark"]


def spark_check(spark):  # noqa: ANN001, ANN201 - a SparkSession; a validator for `open_export(check=...)`
    """Validation as Spark jobs on `spark`, in the shape `open_export` takes."""
    from functools import partial

    from .engine.spark_validate import validate_spark

    return partial(validate_spark, spark)


def files_state(export: Export) -> str | None:
    """What `export`'s files are now, as its fingerprint (paths, sizes,
    modification times); None when they are not the files it was opened with
    (one added, gone, or in another format) or cannot be read."""
    from .sources.export import find_table_file
    from .sources.schema import TABLES

    try:
        for table in TABLES:
            found, had = find_table_file(export.folder, table), export.files.get(table.name)
            if (found is None) != (had is None) or (had is not None and str(found) != str(had.path)):
                return None
        return export.fingerprint()
    except (OSError, InputError):  # a file gone, or a table now there twice: read it anew, and say so then
        return None


@dataclass
class Platform:
    """`Platform(export="exp/", ledger="sqlite:///l.db", policy="recommended")`.

    `export` is a folder (or an `Export`), `ledger` a database URL, a
    `pathlib.Path` of a SQLite file (or a `Ledger`, left open for its owner),
    `policy` a preset name, a YAML file or a `Policy`. A SQLite ledger file that
    does not exist is refused (a mistyped path made a new, empty ledger, and
    its decisions knew of no objection) unless `create_ledger=True`. With `engine="spark"`, `spark_master` (`local[*]`, `spark://...`,
    `yarn`, `k8s://...`) and `spark_conf` go to the Spark session, which is
    started on first use and stopped by `close()`; or pass `spark_session`.
    `extracts` is a folder where the ledger's events are kept per watermark,
    so that a later decision reads only the events added since (the CLI keeps
    them in `$CONSENTRY_HOME/.consentry/extracts`); without it every decision
    reads them all from the database.

    A cut-off `at` is an aware datetime or ISO 8601 text; a naive datetime is
    UTC (the contract's convention), never the machine's local time.

    Every decision first checks that the export's files are those it
    validated (names, sizes, modification times: cheap), and validates them
    again when they changed: a long-lived Platform decided over a refreshed
    export the contract refuses."""

    export: Export | str | Path
    ledger: Ledger | str | Path
    policy: Policy | str = "recommended"
    engine: Engine = "duckdb"
    spark_master: str = "local[*]"
    spark_conf: dict[str, str] = field(default_factory=dict)
    #: An existing SparkSession (a notebook's `spark` on Databricks, a test's):
    #: used as it is (its zone checked), never stopped by `close()`.
    spark_session: Any = field(default=None, repr=False)
    extracts: str | Path | None = None
    #: Start a new, empty SQLite ledger when its file does not exist (refused otherwise).
    create_ledger: bool = False
    _spark: Any = field(default=None, init=False, repr=False)
    _own_ledger: bool = field(default=False, init=False, repr=False)
    #: `files_state` of the export when it was opened (its tables found and their columns read).
    _opened_as: str | None = field(default=None, init=False, repr=False)

    def __repr__(self) -> str:
        policy = f"{self.policy.name} {self.policy.hash}" if isinstance(self.policy, Policy) else self.policy
        return (f"Platform(export={self.export!r}, ledger={self.ledger!r}, policy={policy!r}, engine={self.engine!r}"
                + (f", spark_master={self.spark_master!r}" if self.engine == "spark" else "") + ")")

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InputError(f"unknown engine {self.engine!r}", fix=f"use one of: {', '.join(ENGINES)}")
        if not isinstance(self.export, Export):
            self.export = Export(self.export)
        self._opened_as = files_state(self.export)
        if not isinstance(self.policy, Policy):
            self.policy = load_policy(str(self.policy))
        if not isinstance(self.ledger, Ledger):
            self.ledger = Ledger(self.ledger, extract_dir=Path(self.extracts) if self.extracts is not None else None,
                                 create=self.create_ledger)
            self._own_ledger = True
        elif self.extracts is not None:
            raise InputError("extracts= applies to a ledger given by its URL; this one is already open",
                             fix="pass Ledger(url, extract_dir=...) instead, or the ledger's URL")

    @property
    def spark(self):  # noqa: ANN201 - a pyspark SparkSession
        """The Spark session, started on first use."""
        if self.spark_session is not None:
            from .engine.spark import check_utc

            self.spark_session.conf.set("spark.sql.session.timeZone", "UTC")
            check_utc(self.spark_session)
            return self.spark_session
        if self._spark is None:
            from .engine.spark import session

            self._spark = session(self.spark_master, self.spark_conf)
        return self._spark

    def evaluate(self, at: datetime | str, out: str | Path, *, watermark: int | None = None) -> Evaluation:
        """Decide every item at `at` and write the decisions to `out` (Parquet)."""
        from .engine.evaluation import decisions_path, evaluate, evaluate_spark

        at = parse_instant(at, what="cut-off")
        assert isinstance(self.export, Export)
        decisions_path(out, parts=self.engine == "spark", export=self.export)  # refused before the export is read
        export = self._valid()
        if self.engine == "spark":
            return evaluate_spark(export, self.ledger, self.policy, at, out, self.spark, watermark=watermark)
        return evaluate(export, self.ledger, self.policy, at, out, watermark=watermark)

    def validate(self, memo: ValidationMemo | None = None) -> tuple[ValidationReport, bool]:
        """Check the export against the contract on this platform's engine
        (Spark jobs with `engine="spark"`, the same rules); raise
        `ExportInvalid` naming every problem. With a `ValidationMemo`, an export
        unchanged since it passed is not scanned again."""
        from .sources import open_export

        _, report, cached = open_export(self.export, memo=memo, check=spark_check(self.spark) if self.engine == "spark" else None)
        return report, cached

    def _valid(self) -> Export:
        """The export, validated before its first decision unless it was (`open_export`, as the CLI does); an
        unchanged export is not scanned again (the validation memo in $CONSENTRY_HOME, as for every command).
        One whose files changed since it was validated is opened and validated again."""
        from . import config
        from .sources import ValidationMemo, valid_export

        export = self.export
        assert isinstance(export, Export)
        now = files_state(export)
        if now is None or now != self._opened_as or (export.report is not None and export.report.fingerprint != now):
            export = Export(export.folder)  # read anew: its files, formats and columns may differ
            self.export, self._opened_as = export, files_state(export)
        check = spark_check(self.spark) if self.engine == "spark" and export.report is None else None
        return valid_export(export, ValidationMemo(config.validation_memo_path()), check)

    def backend(self):  # noqa: ANN201 - an engine.backend.Backend
        """Where the compiled SQL runs: a new DuckDB connection, or the Spark session."""
        from .engine.backend import DuckBackend, SparkBackend

        return SparkBackend(self.spark) if self.engine == "spark" else DuckBackend()

    def explain(self, item_id: str, at: datetime | str) -> Explanation:
        """Every rule for one item at `at`, passed or failed, with its reason."""
        from .engine.explain import explain

        at = parse_instant(at, what="cut-off")
        export = self._valid()
        b = self.backend()
        try:
            return explain(item_id, export, self.ledger, self.policy, at, backend=b)
        finally:
            b.close()

    def audience(self, at: datetime | str) -> pa.Table:
        """Everyone who must be told before `at`: user_id, email, language, jurisdiction."""
        from .notices.audience import audience

        at = parse_instant(at, what="cut-off")
        export = self._valid()
        b = self.backend()
        try:
            return audience(export, self.ledger, self.policy, at, backend=b)
        finally:
            b.close()

    def close(self) -> None:
        if self._spark is not None:
            self._spark.stop()
            self._spark = None
        if self._own_ledger:
            self.ledger.close()
            self._own_ledger = False

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
