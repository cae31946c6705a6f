"""``verify``: check every file of the event store and report what is wrong, with paths.

Checks: every file under ``events/`` is a readable Parquet file of its type with a compatible
schema, each event sits in the partition of its UTC date and has the directory's type, and no
``event_id`` occurs twice. Protocol leftovers are not problems: temporary files of killed writers
and journals of killed compactions are repaired (``ingest.compact.recover_partition``). Nothing
else is ever deleted: a corrupt or foreign file stays where it is for a human to look at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hive_core.event_files import list_event_files
from hive_core.layout import event_dir, partition_date
from hive_core.schema_cache import event_schemas
from ingest.compact import recover_partition

__all__ = ["Problem", "VerifyReport", "verify"]


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class VerifyReport:
    files: int = 0
    events: int = 0
    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(data_dir: Path, *, repair: bool = True) -> VerifyReport:
    """Check the whole store. With ``repair``, finish/undo killed compactions and drop stale temp files."""
    import duckdb

    report = VerifyReport()
    events_root = Path(data_dir) / "events"
    if not events_root.is_dir():
        return report
    for entry in sorted(events_root.iterdir()):
        if entry.name not in event_schemas() and not entry.name.startswith("."):
            report.problems.append(Problem(str(entry), "not an event type directory"))
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    for type_name in event_schemas():
        root = event_dir(Path(data_dir), type_name)
        if not root.is_dir():
            continue
        for entry in sorted(root.iterdir()):
            if entry.is_file() and not entry.name.startswith("."):
                report.problems.append(Problem(str(entry), "file outside a date=YYYY-MM-DD partition"))
            elif entry.is_dir() and partition_date(entry) is None:
                report.problems.append(Problem(str(entry), "not a date=YYYY-MM-DD partition"))
            elif entry.is_dir() and repair:
                report.repaired.extend(recover_partition(entry))
        listing = list_event_files(Path(data_dir), type_name)
        report.problems.extend(Problem(str(p), reason) for p, reason in listing.skipped)
        for path in listing.files:
            report.files += 1
            report.problems.extend(_check_contents(con, path, type_name))
        if listing.files:
            files = [str(p) for p in listing.files]
            report.events += con.execute(
                "SELECT count(*) FROM read_parquet($files)", {"files": files}
            ).fetchall()[0][0]
            dupes = con.execute(
                "SELECT event_id, count(*) AS n, list(DISTINCT filename) AS files "
                "FROM read_parquet($files, filename = true) GROUP BY event_id HAVING n > 1 "
                "ORDER BY event_id LIMIT 20",
                {"files": files},
            ).fetchall()
            for event_id, n, in_files in dupes:
                report.problems.append(
                    Problem(", ".join(sorted(in_files)), f"event_id {event_id} occurs {n} times")
                )
    con.close()
    return report


def _check_contents(con: object, path: Path, type_name: str) -> list[Problem]:
    """Read the whole file (a bad page shows only then) and check dates and types."""
    import duckdb

    assert isinstance(con, duckdb.DuckDBPyConnection)
    expected_day = partition_date(path.parent)
    try:
        rows = con.execute(
            "SELECT min(ts)::DATE, max(ts)::DATE, count(*) FILTER (WHERE type <> $type), "
            "count(*) FILTER (WHERE event_id IS NULL OR ts IS NULL OR request_id IS NULL) "
            "FROM read_parquet($file)",
            {"file": str(path), "type": type_name},
        ).fetchall()[0]
    except duckdb.Error as exc:
        return [Problem(str(path), f"unreadable: {str(exc).splitlines()[0]}")]
    problems = []
    first, last, wrong_type, null_envelope = rows
    if first is not None and (first != expected_day or last != expected_day):
        problems.append(Problem(str(path), f"events dated {first}..{last} in partition {expected_day}"))
    if wrong_type:
        problems.append(Problem(str(path), f"{wrong_type} events of another type than {type_name}"))
    if null_envelope:
        problems.append(Problem(str(path), f"{null_envelope} events without event_id, ts or request_id"))
    return problems

