"""Every ``hive`` and ``hive-jobs`` command under storage faults: never a traceback, one line, nothing lost.

The commands are enumerated from the CLIs' own registries (``COMMANDS``, and each group's
subcommands), so a new command fails :func:`test_every_command_has_a_fault_invocation` until it is
given an invocation here - and is then driven through every fault:

* ``read-only``: the data directory is a read-only bind mount (root ignores ``chmod``);
* ``full``: the data directory is on a tmpfs filled to the last byte;
* ``corrupt-ledger``, ``corrupt-circuits``, ``corrupt-config``, ``corrupt-state``: garbage in the
  budget ledger, ``state/circuits.json``, ``config.json`` or ``rollups/state.json``.

Each command runs in a fresh copy of one populated store (simulated traffic, rollups, rankings, a
catalog, a budget, an experiment, a ledger, circuits) against the emulator. What every run must
show: no ``Traceback``; exit status 0 or 1; on failure exactly one ``error:`` line, the last one,
naming the faulty file (or the data directory); no event lost. The read-only commands must work on a
read-only store.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hive_core.store.datadir import DataDir
from tests.faults import full_disk, read_only
from tests.plugins.cli import cli_commands, hive_env, run_cli
from tests.plugins.emulator import MODEL

OTHER = "anthropic/claude-3-haiku"
REQUEST_ID = "{request_id}"  # replaced by a request id of the store
KEY_ID = "{key_id}"  # replaced by a virtual key of the store

#: one invocation per command (arguments after the tool name); {request_id} is filled in
INVOCATIONS: dict[str, list[str]] = {
    "hive ask": ["ask", "Say hi", "--model", MODEL, "--max-tokens", "8"],
    "hive models list": ["models", "list", "--provider", "openai"],
    "hive models info": ["models", "info", MODEL],
    "hive models recommend": ["models", "recommend", "--prompt", "Write a haiku about the sea"],
    "hive models sync": ["models", "sync"],
    "hive models test": ["models", "test", MODEL],
    "hive models performance": ["models", "performance"],
    "hive models benchmark": ["models", "benchmark", "--models", MODEL, "--requests", "2", "--max-tokens", "8"],
    "hive key": ["key"],
    "hive analytics cost": ["analytics", "cost"],
    "hive analytics suggest": ["analytics", "suggest", "--min-samples", "10"],
    "hive rate": ["rate", REQUEST_ID, "--good"],
    "hive budget set": ["budget", "set", "--daily", "50"],
    "hive budget unset": ["budget", "unset"],
    "hive budget show": ["budget", "show"],
    "hive fallbacks set": ["fallbacks", "set", "openai/gpt-4o-mini", "mistralai/mistral-nemo"],
    "hive fallbacks unset": ["fallbacks", "unset", "openai/gpt-4o-mini"],
    "hive fallbacks show": ["fallbacks", "show"],
    "hive ab create": ["ab", "create", "exp2", "--model-a", MODEL, "--model-b", OTHER],
    "hive ab list": ["ab", "list"],
    "hive ab stop": ["ab", "stop", "exp1"],
    "hive-jobs simulate": ["simulate", "--days", "1", "--calls-per-day", "20"],
    "hive-jobs sql": ["sql", "select count(*) as n from api_calls"],
    "hive-jobs verify": ["verify"],
    "hive-jobs compact": ["compact"],
    "hive-jobs summary": ["summary"],
    "hive-jobs rollup": ["rollup", "--daily"],
    "hive-jobs rankings": ["rankings"],
    "hive-jobs reconcile": ["reconcile", "--limit", "5"],
    "hive-jobs alerts": ["alerts"],
    "hive-jobs rebuild-ledger": ["rebuild-ledger"],
    "hive-jobs ab-report": ["ab-report", "exp1"],
    "hive-jobs report": ["report", "--period", "week"],
    "hive-jobs schedule": ["schedule", "--print"],
    "hive-jobs run-due": ["run-due"],
    "hive-jobs import-spills": ["import-spills"],
    "hive-jobs eval": ["eval", "--period", "7d"],
    "hive-jobs prune": ["prune", "--keep-days", "40"],
    "hive gateway": ["gateway", "--check"],
    "hive keys create": ["keys", "create", "--app", "faults"],
    "hive keys list": ["keys", "list"],
    "hive keys revoke": ["keys", "revoke", KEY_ID],
}

#: commands that report several problems, one line each (a scheduled step, a configuration check):
#: under a fault, every line must still be one line, and one of them must name the damaged file
SEVERAL_LINES = {"hive-jobs run-due", "hive gateway"}

#: commands that only read the store: they must succeed on a read-only data directory
READ_ONLY_COMMANDS = {
    "hive budget show", "hive fallbacks show", "hive-jobs verify", "hive-jobs sql", "hive-jobs report", "hive analytics cost",
    "hive analytics suggest", "hive models list", "hive models info", "hive models recommend",
    "hive models performance", "hive ab list", "hive-jobs summary", "hive-jobs ab-report",
    "hive-jobs schedule", "hive-jobs import-spills", "hive key", "hive keys list",
}

#: the file each corruption damages, relative to the data directory
CORRUPTED = {
    "corrupt-ledger": "state/budget-ledger.sqlite3",
    "corrupt-circuits": "state/circuits.json",
    "corrupt-config": "config.json",
    "corrupt-state": "rollups/state.json",
}
FAULTS = ["read-only", "full", *CORRUPTED]

#: (fault, command) -> why it still fails and whose file the fix is in. Reported to the lead; an
#: entry that passes is an error too (remove it), so this list only ever shrinks.
KNOWN: dict[tuple[str, str], str] = {}


def test_every_command_has_a_fault_invocation() -> None:
    commands = [name for name, _ in cli_commands(groups=False)]
    assert sorted(commands) == sorted(INVOCATIONS), "give each new command an invocation in INVOCATIONS"


def test_storage_errors_name_the_file_and_what_to_do(tmp_path: Path) -> None:
    """The CLI seam's translation, on real failures: the file a write was replacing (not its
    temporary name), the data directory when the system named no file, the ledger for SQLite."""
    import errno
    import sqlite3

    from hive_cli.lazy import storage_error
    from hive_core.store.atomic import write_bytes_atomic
    from tests.faults import full_disk

    with full_disk(tmp_path / "disk") as disk, pytest.raises(OSError) as full:
        write_bytes_atomic(disk / "experiments.json", b"{}" * 4096)
    assert full.value.errno == errno.ENOSPC
    error = storage_error(full.value, tmp_path)
    assert str(error) == f"{disk / 'experiments.json'}: No space left on device - free disk space and run the command again"
    bare = storage_error(OSError(errno.EROFS, "Read-only file system"), tmp_path)
    assert str(bare).startswith(f"{tmp_path}: Read-only file system - remount it read-write")
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database" * 100)
    con = sqlite3.connect(garbage)
    try:
        with pytest.raises(sqlite3.DatabaseError) as corrupt:
            con.execute("select * from sqlite_master").fetchall()
    finally:
        con.close()
    ledger = storage_error(corrupt.value, tmp_path)
    assert str(ledger).startswith(f"{tmp_path / 'state' / 'budget-ledger.sqlite3'}: SQLite: file is not a database")
    assert "hive-jobs rebuild-ledger" in str(ledger)
    assert storage_error(BrokenPipeError()) is None and storage_error(ValueError("a bug")) is None


# -- the store ---------------------------------------------------------------------------------


#: seconds one command may take under a fault (a full disk makes some slow)
TIMEOUT_S = 120


def _env(emulator: Any, data: Path, state_home: Path) -> dict[str, str]:
    return {**hive_env(emulator, data), "XDG_STATE_HOME": str(state_home)}


@pytest.fixture(scope="module")
def template(emulator: Any, catalog_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A populated store, built once: (its data directory, a request id in it, a virtual key's id)."""
    import duckdb

    root = tmp_path_factory.mktemp("template")
    data = root / "data"
    env = _env(emulator, data, root / "state-home")
    catalog = DataDir(data).catalog_file
    catalog.parent.mkdir(parents=True)
    shutil.copy(catalog_path, catalog)
    steps: list[tuple[str, list[str]]] = [
        ("hive-jobs", ["simulate", "--days", "3", "--calls-per-day", "40", "--seed", "3"]),
        ("hive-jobs", ["rollup", "--daily"]),
        ("hive", ["budget", "set", "--daily", "100"]),
        ("hive", ["ab", "create", "exp1", "--model-a", MODEL, "--model-b", OTHER]),
        ("hive", ["ask", "Say hi", "--model", MODEL, "--max-tokens", "8"]),
        ("hive", ["ask", "Say hi", "--experiment", "exp1", "--max-tokens", "8"]),
    ]
    for tool, args in steps:
        done = run_cli(tool, args, env, timeout=TIMEOUT_S)
        assert done.returncode == 0, f"{tool} {args}: {done.stderr}"
    key = run_cli("hive", ["keys", "create", "--app", "template", "--json"], env, timeout=TIMEOUT_S)
    assert key.returncode == 0, key.stderr
    glob = str(data / "events" / "api_call" / "*" / "*.parquet")
    ((request_id,),) = duckdb.sql(f"select request_id from read_parquet('{glob}') limit 1").fetchall()
    return data, str(request_id), json.loads(key.stdout)["key"]["key_id"]


def _event_count(data: Path) -> int:
    import pyarrow.parquet as pq

    total = 0
    for path in (data / "events").glob("*/*/*.parquet"):
        if not path.name.startswith("."):
            total += pq.ParquetFile(path).metadata.num_rows
    return total


@dataclass
class Outcome:
    command: str
    status: int
    stderr: str
    #: what a several-lines command reported on stdout (``hive gateway --check`` prints its problems)
    stdout: str
    events_before: int
    events_after: int


def _fault_store(fault: str, template: Path, place: Path) -> AbstractContextManager[Path]:
    """A fresh copy of the template store at ``place/data``, with ``fault`` applied."""
    data = place / "data"
    if fault == "full":
        return full_disk(place, "16M", prepare=lambda m: shutil.copytree(template, m / "data", symlinks=True))
    shutil.copytree(template, data, symlinks=True)
    if fault == "read-only":
        return read_only(data)
    target = data / CORRUPTED[fault]
    for stale in target.parent.glob(target.name + "-*"):  # SQLite's -wal / -shm beside the ledger
        stale.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"\x00garbage, not what this file should hold\n" * 4)
    return nullcontext(place)


def _drive(fault: str, command: str, template: tuple[Path, str, str], root: Path, emulator: Any) -> Outcome:
    data_template, request_id, key_id = template
    place = root / command.replace(" ", "_")
    place.mkdir(parents=True)
    tool, *_ = command.split(" ")
    placeholders = {REQUEST_ID: request_id, KEY_ID: key_id}
    args = [placeholders.get(a, a) for a in INVOCATIONS[command]]
    with _fault_store(fault, data_template, place):
        data = place / "data"
        before = _event_count(data)
        done = run_cli(tool, args, _env(emulator, data, root / "state-home" / place.name), timeout=TIMEOUT_S)
        after = _event_count(data)
    return Outcome(command, done.returncode, done.stderr, done.stdout, before, after)


def _problems(fault: str, outcome: Outcome) -> list[str]:
    """What is wrong with one run (empty: it behaved)."""
    problems = []
    err = outcome.stderr
    if "Traceback" in err:
        problems.append("printed a traceback")
    if outcome.status not in (0, 1):
        problems.append(f"exit status {outcome.status}")
    if outcome.status == 1 and outcome.command in SEVERAL_LINES:
        lines = [line for line in (err + outcome.stdout).splitlines() if line.strip()]
        if not lines:
            problems.append("failed without saying why")
        elif fault in CORRUPTED and not any(Path(CORRUPTED[fault]).name in line for line in lines):
            problems.append(f"no line names {CORRUPTED[fault]}")
        elif fault in ("read-only", "full") and not any("/data" in line for line in lines):
            problems.append("no line names a file of the data directory")
    elif outcome.status == 1:
        lines = [line for line in err.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        if len(errors) != 1 or lines[-1] != errors[0]:
            problems.append("not exactly one error line, last")
        elif fault in CORRUPTED and Path(CORRUPTED[fault]).name not in errors[0]:
            problems.append(f"the error does not name {CORRUPTED[fault]}")
        elif fault in ("read-only", "full") and "/data" not in errors[0]:
            problems.append("the error names no file of the data directory")
    if fault == "read-only" and outcome.command in READ_ONLY_COMMANDS and outcome.status != 0:
        problems.append("a read-only command failed on a read-only store")
    if outcome.events_after < outcome.events_before:
        problems.append(f"events lost: {outcome.events_before} -> {outcome.events_after}")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_every_command_under_a_fault(fault: str, template: tuple[Path, str, str], tmp_path: Path, emulator: Any) -> None:
    drive: Callable[[str], Outcome] = lambda command: _drive(fault, command, template, tmp_path, emulator)  # noqa: E731
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(drive, sorted(INVOCATIONS)))
    found: dict[str, str] = {}
    for outcome in outcomes:
        problems = _problems(fault, outcome)
        if problems:
            last = (outcome.stderr.strip().splitlines() or [""])[-1][:300]
            found[outcome.command] = f"{'; '.join(problems)} (exit {outcome.status}): {last}"
    unexpected = {c: why for c, why in found.items() if (fault, c) not in KNOWN}
    fixed = sorted(c for (f, c) in KNOWN if f == fault and c not in found)
    assert not unexpected, "\n".join(f"{fault} / {c}: {why}" for c, why in sorted(unexpected.items()))
    assert not fixed, f"now behaving under {fault}, remove from KNOWN: {fixed}"
