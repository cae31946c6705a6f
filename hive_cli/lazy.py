"""A click group whose subcommands are imported only when they run, and the CLIs' error policy.

``hive --help`` must not import duckdb, polars, pyarrow, httpx or pydantic: each subcommand lives in
its own module, named here with its one-line help, and is imported on first use.

The error policy, in one place for every command of both CLIs (:func:`run_cli`, with the
translation done where the command's data directory is known, :meth:`LazyGroup.invoke`):

* a :class:`~hive_core.errors.HiveError` is its one line on stderr, exit 1;
* a storage failure - ``OSError`` (a full disk, a read-only or unreadable directory), an SQLite
  error (a full, read-only or corrupt database: the budget ledger), a DuckDB I/O error - becomes a
  :class:`StorageError`: one line naming the file (the data directory when the system did not say
  which file) and what to do, exit 1. Never a traceback;
* a usage error (an unknown option, a value a parameter type refuses) is one line naming the
  command's ``--help``, exit 2; Ctrl-C prints ``interrupted`` and exits 130; SIGTERM
  (:class:`~hive_core.shutdown.Terminated`) prints ``terminated`` and exits 143.
"""

from __future__ import annotations

import errno
import importlib
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from hive_cli.params import accept_data_dir, as_of_option, data_dir_option
from hive_core.errors import HiveError, StorageError
from hive_core.shutdown import TERMINATED_EXIT_STATUS, Terminated

__all__ = ["LazyGroup", "entry_point", "root_group", "run_cli", "storage_error", "usage_line"]

_ADVICE = {
    errno.ENOSPC: "free disk space and run the command again",
    errno.EDQUOT: "free space within your disk quota and run the command again",
    errno.EROFS: "remount it read-write, or use a writable --data-dir / HIVE_DATA_DIR",
    errno.EACCES: "fix its permissions, or use another --data-dir / HIVE_DATA_DIR",
    errno.EPERM: "fix its permissions, or use another --data-dir / HIVE_DATA_DIR",
}


class _TerminatedExit(click.ClickException):
    """SIGTERM on its way out of click: ``click.Command.main`` turns a ``KeyboardInterrupt`` into an
    ``Abort`` after printing a blank line for the terminal's ``^C`` echo; SIGTERM has no echo."""

    exit_code = TERMINATED_EXIT_STATUS

    def __init__(self) -> None:
        super().__init__("terminated")

    def show(self, file: Any = None) -> None:
        click.echo("terminated", err=True)


#: a file being written under a temporary name beside its target: ``.<name>.tmp`` (the event log)
#: or ``.<name>.<pid>.<thread>.tmp`` (``hive_core.store.atomic``)
_TEMPORARY = re.compile(r"^\.(?P<name>.+?)(?:\.\d+\.[0-9a-f]+)?\.tmp$")


def _replaced_file(filename: object) -> object:
    """The file a failed write was replacing, rather than its temporary name the error carries."""
    path = Path(str(filename))
    match = _TEMPORARY.match(path.name)
    return path.with_name(match["name"]) if match else filename


def storage_error(exc: BaseException, data_dir: Path | None = None) -> StorageError | None:
    """The one-line error for a storage failure, ``None`` for anything else (a bug keeps its traceback).

    ``data_dir`` names where the failure happened when the system did not name the file (a write
    to an open descriptor, an SQLite or DuckDB error).
    """
    where: object = data_dir if data_dir is not None else "the data directory"
    if isinstance(exc, BrokenPipeError):
        return None  # the reader went away (``| head``): click exits quietly
    if isinstance(exc, OSError):
        name = _replaced_file(exc.filename) if exc.filename is not None else where
        reason = exc.strerror or str(exc) or type(exc).__name__
        return StorageError(name, reason, _ADVICE.get(exc.errno or 0, ""))
    # Only a module that is already loaded can have raised its error: no import, no name matching.
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.DatabaseError):
        from hive_core.store.datadir import DataDir  # here: ``hive --help`` never needs it

        # The budget ledger is the only SQLite database Hive keeps.
        ledger = DataDir(data_dir).ledger if data_dir is not None else "the budget ledger"
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary result code
        advice = {
            sqlite3.SQLITE_FULL: _ADVICE[errno.ENOSPC],
            sqlite3.SQLITE_READONLY: _ADVICE[errno.EROFS],
            sqlite3.SQLITE_CANTOPEN: _ADVICE[errno.EACCES],
        }.get(code, "run `hive-jobs rebuild-ledger` (it recreates the ledger from the events)")
        return StorageError(ledger, f"SQLite: {exc}", advice)
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None and isinstance(exc, duckdb.IOException):
        return StorageError(where, f"DuckDB: {str(exc).splitlines()[0]}", "check the file named above")
    return None


class LazyGroup(click.Group):
    """``lazy``: name -> ("package.module:attribute", one-line help).

    Every command it hands out accepts ``--data-dir`` (:func:`hive_cli.params.accept_data_dir`).
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            target, _help = self.lazy[cmd_name]
            module_name, attr = target.split(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{target} is not a click command")
            self.add_command(command, cmd_name)
        command = super().get_command(ctx, cmd_name)
        return None if command is None else accept_data_dir(command)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; storage failures become :class:`StorageError`, SIGTERM its exit."""
        try:
            return super().invoke(ctx)
        except Terminated:
            raise _TerminatedExit() from None
        except Exception as exc:
            error = storage_error(exc, _data_dir(ctx))
            if error is None:
                raise
            raise error from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help from the registry, so listing commands imports none of them.
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
            else:
                command = self.commands[name]
                rows.append((name, command.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _data_dir(ctx: click.Context) -> Path | None:
    obj = ctx.find_root().obj
    if not isinstance(obj, dict):
        return None
    settings = obj.get("settings")
    if settings is not None:
        return settings.data_dir  # type: ignore[no-any-return]  # an ObjectPath stays one
    if not obj.get("data_dir"):
        return None
    from hive_core.settings import location

    try:
        return location(obj["data_dir"])
    except ValueError:  # an unsupported URL: its own error says so
        return None


def root_group(name: str, help: str, commands: dict[str, tuple[str, str]], *, version: bool = False) -> LazyGroup:
    """A CLI's top group: ``commands`` loaded lazily, ``-h``/``--help``, ``--data-dir``, ``--as-of``
    (and ``--version`` of the installed package ``name``)."""

    def root() -> None:
        """Only options the commands read from the context (:func:`hive_cli.common.get_settings`)."""

    options = root if not version else click.version_option(package_name=name, prog_name=name)(root)
    group = click.group(name, cls=LazyGroup, lazy=commands, help=help,
                        context_settings={"help_option_names": ["-h", "--help"]})(data_dir_option(as_of_option(options)))
    assert isinstance(group, LazyGroup)
    return group


def entry_point(group: click.Group) -> Callable[[Sequence[str] | None], None]:
    """The console entry point (``[project.scripts]``) of a CLI whose top group is ``group``."""

    def main(args: Sequence[str] | None = None) -> None:
        run_cli(group, args, prog_name=group.name)

    main.__doc__ = f"Console entry point of ``{group.name}``."
    return main


def usage_line(exc: click.UsageError) -> str:
    """A usage error as one line: the message, and where help is (``hive ask --help``)."""
    message = " ".join(exc.format_message().split())
    if exc.ctx is not None:
        message += f" (see `{exc.ctx.command_path} --help`)"
    return f"error: {message}"


def run_cli(group: click.Group, args: Sequence[str] | None = None, prog_name: str | None = None) -> None:
    """Run a CLI: expected errors become one line on stderr and exit 1; usage errors exit 2;
    Ctrl-C exits 130, SIGTERM 143. Never a traceback for an expected error (see the module doc)."""
    try:
        group.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        click.echo(usage_line(exc), err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Terminated:  # outside a command (its invoke translates it): the same line and status
        click.echo("terminated", err=True)
        sys.exit(TERMINATED_EXIT_STATUS)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)
    except HiveError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # raised outside a command's invoke (e.g. a context's close callback)
        error = storage_error(exc)
        if error is None:
            raise
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    sys.exit(0)
