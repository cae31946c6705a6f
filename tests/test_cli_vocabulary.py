"""The CLIs' one vocabulary (hive_cli.params, hive_cli.common): --data-dir on every command, one
--json, PERIOD and DATE, one-line usage errors, one result-to-JSON convention, and CLI modules that
import only the shared vocabulary of each other."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import click
import pytest

from hive_cli.common import JobCommand, plain
from hive_cli.params import DATE, PERIOD
from hive_core.period import Period
from hive_core.store.events import QualityRating
from tests.cases import DAY0, write_history
from tests.plugins.cli import cli_commands, run_hive, run_jobs

REPO = Path(__file__).resolve().parents[1]
COMMANDS = cli_commands()
NAMES = [name for name, _ in COMMANDS]

#: the modules every command may import: the shared vocabulary (and the selection options that
#: ``hive ask`` and ``hive models recommend`` share)
VOCABULARY = {"hive_cli.common", "hive_cli.params", "hive_cli.lazy", "hive_cli.output", "hive_cli.selection"}


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=NAMES)
def test_every_command_accepts_data_dir(name: str, command: click.Command) -> None:
    assert [p for p in command.params if p.name == "data_dir"], f"{name} has no --data-dir"


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=NAMES)
def test_json_is_one_flag(name: str, command: click.Command) -> None:
    for param in command.params:
        if isinstance(param, click.Option) and "--json" in param.opts:
            assert param.is_flag and param.name == "as_json" and param.help, name


@pytest.mark.parametrize(("name", "command"), [(n, c) for n, c in COMMANDS if n.startswith("hive-jobs ")],
                         ids=[n for n in NAMES if n.startswith("hive-jobs ")])
def test_jobs_take_back_spills_first(name: str, command: click.Command) -> None:
    """Every hive-jobs command takes spilled events back before it runs, but import-spills, which
    does only that (and must fail when it cannot)."""
    assert isinstance(command, JobCommand) == (name != "hive-jobs import-spills"), name


def test_data_dir_before_or_after_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``hive --data-dir X cmd`` and ``hive cmd --data-dir X`` read the same store; the later one wins."""
    full, empty = tmp_path / "full", tmp_path / "empty"
    write_history(full, days=1)
    span = ["--period", f"{DAY0}..{DAY0}", "--json"]
    before = run_hive(["--data-dir", str(full), "analytics", "cost", *span], capsys)
    after = run_hive(["analytics", "cost", "--data-dir", str(full), *span], capsys)
    assert before[0] == after[0] == 0 and before[1] == after[1]
    assert json.loads(before[1])["total_usd"] > 0
    later = run_hive(["--data-dir", str(full), "analytics", "cost", "--data-dir", str(empty), *span], capsys)
    assert json.loads(later[1])["total_usd"] == 0


def test_period_is_read_on_the_invocations_clock(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_hive(["--data-dir", str(data_dir), "--as-of", "2026-03-10T08:00:00Z", "analytics", "cost",
                             "--period", "7d", "--json"], capsys)
    assert code == 0 and (json.loads(out)["since"], json.loads(out)["until"]) == ("2026-03-04", "2026-03-10")


@pytest.mark.parametrize(("tool", "args", "says"), [
    ("hive", ["analytics", "cost", "--period", "fortnight"], "error: unknown period 'fortnight': use today, yesterday"),
    ("hive", ["models", "performance", "--period", "2026-02-30..2026-03-01"], "error: unknown period"),
    ("hive-jobs", ["summary", "--period", "fortnight"], "error: unknown period 'fortnight'"),
    ("hive", ["analytics", "suggest", "--period", "0d"], "error: unknown period '0d'"),
    ("hive-jobs", ["rollup", "--date", "yesterday"], "error: Invalid value for '--date': 'yesterday' is not a date"),
    ("hive-jobs", ["compact", "--date", "2026-13-01"], "is not a date (YYYY-MM-DD)"),
    ("hive-jobs", ["report", "--period", "soon"], "error: unknown period 'soon'"),
    ("hive-jobs", ["report", "--format", "pdf"], "error: Invalid value for '--format'"),
    ("hive-jobs", ["run-due", "--only", "hourly"], "error: Invalid value for '--only'"),
    ("hive-jobs", ["run-due", "--date", "soon"], "is not a date (YYYY-MM-DD)"),
    ("hive", ["budget", "show", "--nope"], "error: No such option '--nope'"),
    ("hive-jobs", ["no-such-command"], "error: No such command 'no-such-command'"),
])
def test_bad_usage_is_one_line_and_exit_2(data_dir: Path, capsys: pytest.CaptureFixture[str], tool: str,
                                          args: list[str], says: str) -> None:
    runner = run_hive if tool == "hive" else run_jobs
    code, out, err = runner(["--data-dir", str(data_dir), *args], capsys)
    assert code == 2 and out == "" and says in err and err.startswith("error: ")
    assert err.count("\n") == 1 and "--help`)" in err


#: the commands that take a period, found in the CLIs' own registries
PERIOD_COMMANDS = [(n, c) for n, c in COMMANDS if any(p.name == "period" for p in c.params)]


def test_the_period_commands_are_found() -> None:
    assert {"hive analytics cost", "hive analytics suggest", "hive models performance", "hive-jobs summary",
            "hive-jobs report"} <= {n for n, _ in PERIOD_COMMANDS}


@pytest.mark.parametrize(("name", "command"), PERIOD_COMMANDS, ids=[n for n, _ in PERIOD_COMMANDS])
def test_every_period_is_the_one_period_type(name: str, command: click.Command) -> None:
    """One grammar everywhere: ``--period`` is :data:`PERIOD`, with the same help, and its default is a name
    of that grammar."""
    (param,) = [p for p in command.params if p.name == "period"]
    assert isinstance(param, click.Option) and param.opts == ["--period"] and param.type is PERIOD, name
    assert param.help and "Nd (7d, 30d), YYYY-MM" in param.help
    ctx = click.Context(command)
    assert isinstance(PERIOD.convert(param.default, param, ctx), Period)


@pytest.mark.parametrize(("name", "command"), PERIOD_COMMANDS, ids=[n for n, _ in PERIOD_COMMANDS])
def test_a_bad_period_is_a_usage_error_everywhere(name: str, command: click.Command, data_dir: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    tool, *words = name.split()
    runner = run_hive if tool == "hive" else run_jobs
    for bad in ("fortnight", "2026-13", "0d"):
        code, out, err = runner(["--data-dir", str(data_dir), *words, "--period", bad], capsys)
        assert code == 2 and out == "" and err.startswith(f"error: unknown period {bad!r}: use today"), (name, err)
        assert err.count("\n") == 1


@pytest.mark.parametrize("text", ["today", "yesterday", "day", "week", "month", "14d", "2026-02", "2026-02-03",
                                  "2026-02-01..2026-02-10"])
def test_the_grammar_is_accepted_everywhere(text: str) -> None:
    for name, command in PERIOD_COMMANDS:
        (param,) = [p for p in command.params if p.name == "period"]
        assert isinstance(param.type.convert(text, param, click.Context(command)), Period), name


def test_period_and_date_types() -> None:
    ctx = click.Context(click.Command("x"))
    week = PERIOD.convert("7d", None, ctx)
    assert isinstance(week, Period) and week.days == 7 and PERIOD.convert(week, None, ctx) is week
    assert DATE.convert("2026-02-28", None, ctx) == date(2026, 2, 28)
    with pytest.raises(click.BadParameter, match="not a date"):
        DATE.convert("28/02/2026", None, ctx)


@dataclass
class _Report:
    path: Path
    days: list[date]


@dataclass
class _Derived:
    value: int

    def as_dict(self) -> dict[str, int]:
        return {"value": self.value, "double": 2 * self.value}


def test_result_to_json_convention() -> None:
    """A result's ``as_dict()`` when it has one, else its dataclass fields; events as stored; then
    ``str`` for paths and dates (what ``--json`` printed before, by hand in each command)."""
    rating = QualityRating(ts=datetime(2026, 3, 1, tzinfo=UTC), request_id="r1", score=1.0, model="m")
    value = plain({"report": _Report(Path("/d"), [date(2026, 3, 1)]), "derived": [_Derived(2)], "event": rating})
    assert value["report"] == {"path": Path("/d"), "days": [date(2026, 3, 1)]}
    assert value["derived"] == [{"value": 2, "double": 4}]
    assert value["event"] == rating.model_dump(mode="json")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted((REPO / "hive_cli").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_cli_modules_import_only_the_shared_vocabulary(path: Path) -> None:
    """A command module never imports another command module as a library: what two share lives in
    the vocabulary (or below, in the library)."""
    ours = {m for m in _imports(path) if m.startswith("hive_cli.")}
    if path.name == "__main__.py":  # ``python -m``: runs its own package's entry point, nothing else
        ours -= {".".join(path.relative_to(REPO).parent.parts)}
    assert ours <= VOCABULARY, f"{path.relative_to(REPO)} imports {sorted(ours - VOCABULARY)}"
