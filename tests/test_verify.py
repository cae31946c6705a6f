from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hive_cli.hive_jobs import main as jobs_main
from hive_core.store.layout import temporary_name
from ingest.log import EventLog
from ingest.verify import verify
from tests.cases import api_call

REPO = Path(__file__).resolve().parents[1]


def _store(data_dir: Path, n: int = 20) -> Path:
    with EventLog(data_dir) as log:
        for i in range(n):
            log.record(api_call(i))
    return next((data_dir / "events" / "api_call").glob("date=*"))


def _damage(partition: Path) -> dict[str, Path]:
    good = next(partition.glob("*.parquet"))
    corrupt = partition / "w-000090.parquet"
    data = good.read_bytes()
    corrupt.write_bytes(data[: len(data) // 2] + b"\0" * 64 + data[len(data) // 2 + 64 :])
    empty = partition / "w-000091.parquet"
    empty.touch()
    stray = partition / "notes.txt"
    stray.write_text("not parquet")
    return {"corrupt": corrupt, "empty": empty, "stray": stray}


def test_verify_passes_a_healthy_store(data_dir: Path) -> None:
    _store(data_dir)
    report = verify(data_dir)
    assert report.ok and report.files == 1 and report.events == 20


def test_verify_reports_corrupt_empty_and_stray_files(data_dir: Path) -> None:
    bad = _damage(_store(data_dir))
    report = verify(data_dir)
    assert not report.ok
    reported = {p.path for p in report.problems}
    assert {str(p) for p in bad.values()} <= reported
    assert all(p.exists() for p in bad.values()), "verify must never delete a bad file"


def test_verify_reports_duplicates_and_misplaced_events(data_dir: Path) -> None:
    partition = _store(data_dir)
    good = next(partition.glob("*.parquet"))
    pq.write_table(pq.read_table(good), partition / "copy-000001.parquet")
    from hive_core.store.events import ApiCall, arrow_schema

    other_day = partition.parent / "date=2026-01-01"
    other_day.mkdir()
    pq.write_table(pa.Table.from_pylist([api_call(99).model_dump()], schema=arrow_schema(ApiCall)),
                   other_day / "w-000001.parquet")
    messages = [p.message for p in verify(data_dir).problems]
    assert any("occurs 2 times" in m for m in messages)
    assert any("1 events quarantined (1 ts outside its partition's UTC day)" in m for m in messages)


def test_verify_cli_exits_1_on_corruption_and_sql_still_answers(data_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    _damage(_store(data_dir))
    code = _run(["--data-dir", str(data_dir), "verify"])
    out = capsys.readouterr()
    assert code == 1 and "problem:" in out.out
    code = _run(["--data-dir", str(data_dir), "sql", "select count(*) as n from api_calls", "--format", "csv"])
    out = capsys.readouterr()
    assert code == 0 and out.out.splitlines()[-1] == "20"
    assert out.err.count("warning: skipped") == 3


def test_verify_json(data_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = _damage(_store(data_dir))
    code = _run(["--data-dir", str(data_dir), "verify", "--no-repair", "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert code == 1 and shown == verify(data_dir, repair=False).as_dict()
    assert sorted(shown) == ["events", "files", "ok", "problems", "quarantined", "repaired"] and shown["ok"] is False
    assert {p["path"] for p in shown["problems"]} >= {str(p) for p in bad.values()}
    assert all(sorted(p) == ["message", "path"] for p in shown["problems"])


def test_verify_exits_0_after_a_writer_was_killed(data_dir: Path) -> None:
    script = (
        "import sys, time\nfrom ingest.log import EventLog\nfrom tests.cases import api_call\n"
        "log = EventLog(sys.argv[1], max_events=50)\ni = 0\nend = time.monotonic() + 30\n"
        "while time.monotonic() < end:  # bounded: killed long before, but never runs on after a crash\n"
        "    log.record(api_call(i)); i += 1\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(data_dir)], cwd=REPO)
    try:  # killed once it has committed files (a loaded machine takes seconds to start it), mid-write
        deadline = time.monotonic() + 25
        while len(list(data_dir.glob("events/api_call/date=*/*.parquet"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:  # whatever happens (even a failed sleep or a KeyboardInterrupt), no writer outlives the test
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    partition = next((data_dir / "events" / "api_call").glob("date=*"))
    (partition / temporary_name("dead-000001.parquet")).write_bytes(b"PAR1 half written")  # as a kill leaves it
    assert _run(["--data-dir", str(data_dir), "verify"]) == 0


def test_verify_removes_stale_temporary_files_only(data_dir: Path) -> None:
    partition = _store(data_dir)
    stale = partition / temporary_name("dead-000001.parquet")
    fresh = partition / temporary_name("live-000001.parquet")
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    old = stale.stat().st_mtime - 3600  # an hour old on the filesystem's clock, whatever the test clock says
    os.utime(stale, (old, old))
    report = verify(data_dir)
    assert report.ok and not stale.exists() and fresh.exists()


def _run(args: list[str]) -> int:
    try:
        jobs_main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0



def test_sql_cli_binds_parameters(data_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    _store(data_dir)
    hostile = "r1' OR '1'='1"
    args = ["--data-dir", str(data_dir), "sql", "select count(*) as n from api_calls where request_id = $rid",
            "--format", "json"]
    assert _run([*args, "--param", "rid=r1"]) == 0
    assert '"n": 1' in capsys.readouterr().out
    assert _run([*args, "--param", f"rid={hostile}"]) == 0
    assert '"n": 0' in capsys.readouterr().out
    assert _run([*args, "--param", "not a pair"]) == 2
