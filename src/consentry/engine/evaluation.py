"""Decide every item of an export at a cut-off, streaming the answer to Parquet."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from ..errors import InputError
from ..ledger import Ledger, chain
from ..paths import check_writable
from ..policy import Policy
from ..sources import Export
from ..sqltext import quote
from .compile import Compiler
from .duck import connect, counted, load_inputs, reason_type
from .rules import ORDER, Reason


#: How decisions are written. ZSTD at level 1, and dictionaries only for columns
#: with few values (the reasons): every item_id is unique, so a dictionary for
#: it was built per row group and then thrown away. Both cut the write of 20M
#: decisions by about a third, for a file no larger. Row groups of 250k rows,
#: not 1M: each writing thread holds one, and at 100M items the peak fell by
#: 110 MiB at the same speed (the file of 20M decisions 16 MB, not 19).
DECISIONS_PARQUET = "FORMAT PARQUET, COMPRESSION ZSTD, COMPRESSION_LEVEL 1, DICTIONARY_SIZE_LIMIT 1000, ROW_GROUP_SIZE 250000"


@dataclass
class Evaluation:
    at: datetime
    policy_name: str
    policy_hash: str
    watermark: int
    counts: dict[str, int] = field(default_factory=dict)
    out: Path | None = None
    seconds: float = 0.0
    #: Under `tagged_people: blur`: the eligible items that may be used only with their faces blurred; else None.
    blurred: int | None = None

    def __post_init__(self) -> None:
        rank = {str(r): i for i, r in enumerate(ORDER)}  # in rule order, as every face prints them
        self.counts = dict(sorted(self.counts.items(), key=lambda kv: rank.get(str(kv[0]), len(rank))))

    @property
    def items(self) -> int:
        return sum(self.counts.values())

    @property
    def eligible(self) -> int:
        return self.counts.get(Reason.eligible, 0)

    def ordered_counts(self) -> list[tuple[Reason, int]]:
        """Every reason in rule order, zeros included: a DPO reads the whole list."""
        return [(r, self.counts.get(r, 0)) for r in ORDER]


def decisions_path(out: str | Path, *, parts: bool = False, export: Export | None = None) -> Path:
    """Where decisions may be written: a .parquet name in a folder that exists.
    A run replaces the decisions of an earlier one there: a file, or (`parts`,
    on Spark) a folder of Parquet parts, but never a folder of anything else;
    and never inside `export`'s folder (`users.parquet` there was replaced
    with the decisions)."""
    if not str(out).strip():
        raise InputError("the decisions file given is blank (was a variable empty?); nothing was decided", where="--out",
                         fix="e.g. --out decisions.parquet")
    out = Path(out)
    if export is not None:
        outside_export(out, export)
    if out.suffix != ".parquet":
        folder = out.is_dir() or out.name in ("", "..")  # a folder named ("" and "." are the working folder)
        fix = f"e.g. --out {out / 'decisions.parquet' if folder else out.with_suffix('.parquet')}"
        raise InputError("the decisions file must end in .parquet", where=str(out), fix=fix)
    check_writable(out.parent, where=str(out))
    if out.is_dir() and not parts:
        raise InputError("is a folder (an evaluation on Spark writes one); on DuckDB the decisions are one file",
                         where=str(out), fix="name another file, or remove the folder")
    if out.is_dir() and not _parts_only(out):
        raise InputError("is a folder that holds more than Parquet parts; it is not replaced", where=str(out),
                         fix="name another --out, or empty the folder")
    return out


def outside_export(out: Path, export: Export, *, what_goes: str = "decisions",
                   fix: str = "write them outside the export folder, e.g. decisions.parquet in the working folder") -> None:
    """Refuse `out` when it is one of the export's files or anywhere inside its
    folder (through `..` or a symbolic link too), before anything is written:
    `what_goes` (decisions, a snapshot) would replace the platform's files or
    be read as part of the export. An export in a bucket is not on this disk:
    nothing to compare."""
    if not isinstance(export.folder, Path):
        return
    root = Path(os.path.realpath(export.folder))
    target = Path(os.path.realpath(out))
    if target != root and root not in target.parents:
        return
    table = next((name for name, tf in export.files.items()
                  if isinstance(tf.path, Path) and Path(os.path.realpath(tf.path)) in (target, *target.parents)), None)
    what = f"it is the export's {table} table" if table else "the export's files are the platform's, never replaced"
    raise InputError(
        f"is inside the export folder {export.folder}: {what_goes} never go into the export ({what})",
        where=str(out),
        fix=fix,
    )


def _parts_only(folder: Path) -> bool:
    """A folder Spark wrote decisions into: Parquet parts and its bookkeeping (a
    re-run on Spark refused the folder its first run had written)."""
    return all(p.is_file() and (p.suffix in (".parquet", ".crc") or p.name.startswith("_")) for p in folder.iterdir())


def _record(ledger: Ledger, policy: Policy, at: datetime, wm: int, counts: dict, out: Path, extra: dict) -> None:
    """The evaluation in the audit log, once its output is in place."""
    with ledger.transaction() as conn:
        chain.append(conn, [chain.Record("evaluation", {
            "policy": policy.name, "policy_hash": policy.hash, "cutoff": at.isoformat(), "watermark": wm,
            "counts": {str(k): int(v) for k, v in counts.items()}, "out": str(out.resolve()), **extra,
        })])


def evaluate(
    export: Export,
    ledger: Ledger,
    policy: Policy,
    at: datetime,
    out: str | Path,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    watermark: int | None = None,
) -> Evaluation:
    """Write one decision per item to `out` (Parquet), atomically: a crash leaves
    no half-written file behind."""
    out = decisions_path(out, export=export)
    started = time.perf_counter()
    own = con is None
    con = con or connect()
    try:
        with ledger.numbered_beside("decisions") as require_numbered:
            wm = load_inputs(con, export, ledger, at, watermark)
            sql = Compiler(policy, at, reason_type=reason_type(con)).decisions_sql()
            tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
            try:
                con.execute(f"COPY ({sql}) TO {quote(str(tmp))} ({DECISIONS_PARQUET})")  # any path: quoted
                require_numbered()  # before anything is published
                counts, blurred = counted(con, [str(tmp)], blur=policy.tagged_people == "blur")
                os.replace(tmp, out)
                _record(ledger, policy, at, wm, counts, out, {})
            finally:
                if tmp.exists():
                    tmp.unlink()
    finally:
        if own:
            con.close()
    return Evaluation(
        at=at,
        policy_name=policy.name,
        policy_hash=policy.hash,
        watermark=wm,
        counts={str(k): int(v) for k, v in counts.items()},
        out=out,
        seconds=time.perf_counter() - started,
        blurred=blurred,
    )


def evaluate_spark(
    export: Export,
    ledger: Ledger,
    policy: Policy,
    at: datetime,
    out: str | Path,
    spark,  # noqa: ANN001 - a pyspark SparkSession
    *,
    watermark: int | None = None,
) -> Evaluation:
    """`evaluate` on Spark: the same SQL text; the people step is computed once
    and cached, and `out` is a folder of Parquet parts (Spark's way), renamed
    into place when complete."""
    from . import spark as backend

    out = decisions_path(out, parts=True, export=export)
    ledger.require_numbered("decisions")
    started = time.perf_counter()
    scratch = backend.scratch_dir()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        wm = backend.load_inputs(spark, export, ledger, at, scratch, watermark)
        with backend.decided(spark, policy, at) as decisions:
            counts, blurred = backend.write_counting(decisions, tmp, blur=policy.tagged_people == "blur")
        old = out.with_name(f".{out.name}.{os.getpid()}.old")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        backend.remove(old) if old.is_dir() else old.unlink(missing_ok=True)
        _record(ledger, policy, at, wm, counts, out, {"engine": "spark"})
    finally:
        backend.remove(tmp)
        backend.remove(scratch)
    return Evaluation(at=at, policy_name=policy.name, policy_hash=policy.hash, watermark=wm, counts=counts, out=out,
                      seconds=time.perf_counter() - started, blurred=blurred)


def decide(
    export: Export, ledger: Ledger, policy: Policy, at: datetime, *, con: duckdb.DuckDBPyConnection | None = None
) -> duckdb.DuckDBPyRelation:
    """The decisions as a lazy DuckDB relation, for library users and tests."""
    con = con or connect()
    load_inputs(con, export, ledger, at)
    return con.sql(Compiler(policy, at).decisions_sql())
