"""The CLIs' shared vocabulary: the parameter types and options every command spells the same way.

A period is ``--period PERIOD`` (:data:`PERIOD`, the names of :data:`hive_core.period.PERIOD_HELP`,
read against the invocation's clock so ``--as-of`` moves it), a day is ``YYYY-MM-DD`` (:data:`DATE`),
JSON output is ``--json`` (:func:`json_option`), a JSON document read from a file is
:data:`JSON_OBJECT_FILE` (``--json-schema FILE``), and every command of both CLIs accepts
``--data-dir`` - before the command's name (``hive --data-dir X ask``) or after it
(``hive ask --data-dir X``), the later one winning (:func:`accept_data_dir`, applied by
:class:`hive_cli.lazy.LazyGroup` to each command it loads). A value a type refuses is a usage error:
one line, exit 2 (:func:`hive_cli.lazy.run_cli`).

Pure click: nothing heavy is imported here, so ``hive --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from hive_core.period import PERIOD_HELP, Period

__all__ = [
    "DATE",
    "JSON_OBJECT_FILE",
    "LOCATION",
    "PERIOD",
    "PERIOD_OPTION_HELP",
    "DateType",
    "JsonObjectFileType",
    "LocationType",
    "PeriodType",
    "accept_data_dir",
    "as_of_option",
    "data_dir_option",
    "json_option",
    "period_option",
]

F = TypeVar("F", bound=Callable[..., Any])

#: ``--period``'s help: the names :data:`PERIOD` accepts
PERIOD_OPTION_HELP = f"{PERIOD_HELP[:1].upper()}{PERIOD_HELP[1:]}."

#: ``--data-dir`` as every group and command declares it: eager, so a period or a date of the same
#: command is read with the settings of this directory; kept for the invocation, not passed to the command
_DATA_DIR_DECLS = ["--data-dir"]


def _data_dir_attrs() -> dict[str, Any]:
    return {"type": click.Path(file_okay=False), "default": None, "is_eager": True, "expose_value": False,
            "callback": _remember, "help": "Data directory (default: $HIVE_DATA_DIR, else ~/.local/share/hive)."}


class PeriodType(click.ParamType[Period]):
    """``--period`` as a :class:`~hive_core.period.Period`, relative to the invocation's UTC day.

    The day comes from the command's settings (so ``--as-of`` / ``HIVE_AS_OF`` move it); an unknown
    name is a usage error listing the accepted ones.
    """

    name = "period"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Period:
        from hive_cli.common import invocation_now
        from hive_core.errors import ConfigError
        from hive_core.period import parse_period

        if isinstance(value, Period):
            return value
        try:
            return parse_period(str(value), invocation_now(ctx))
        except ConfigError as exc:  # its message names the period and the accepted names
            raise click.UsageError(str(exc), ctx) from None


class DateType(click.ParamType[date]):
    """A UTC day written ``YYYY-MM-DD``, as a :class:`datetime.date`."""

    name = "date"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


class LocationType(click.ParamType[Path]):
    """A local directory, ``s3://bucket/prefix``, ``az://container/prefix`` or ``gs://bucket/prefix``, read by the data directory's own rule
    (:func:`hive_core.settings.location`): an unsupported URL is a usage error, never a local folder
    named ``s3:``."""

    name = "location"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "DIR"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        from hive_core.settings import location

        try:
            return location(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class JsonObjectFileType(click.ParamType[dict[str, Any]]):
    """A file holding one JSON object (e.g. ``--json-schema FILE``), read while the command line is
    parsed: a missing or unreadable file, text that is not JSON, or JSON that is not an object is a
    usage error naming the file, before the command does anything (a request is never sent with it)."""

    name = "file"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "FILE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dict[str, Any]:
        import json
        from pathlib import Path

        if isinstance(value, dict):
            return value
        try:
            document = json.loads(Path(value).read_bytes())
        except OSError as exc:
            self.fail(f"cannot read {value}: {exc.strerror or exc}", param, ctx)
        except ValueError as exc:  # JSONDecodeError, and text that is not UTF-8
            self.fail(f"{value} is not JSON ({exc})", param, ctx)
        if not isinstance(document, dict):
            self.fail(f"{value} is JSON but not an object ({{...}})", param, ctx)
        return document


#: the parameter types (instances, as click's own ``click.INT``)
PERIOD = PeriodType()
DATE = DateType()
JSON_OBJECT_FILE = JsonObjectFileType()
LOCATION = LocationType()


def period_option(default: str) -> Callable[[F], F]:
    """``--period PERIOD`` with ``default`` (a period name, read when the command runs)."""
    return click.option("--period", type=PERIOD, default=default, show_default=True, metavar="PERIOD",
                        help=PERIOD_OPTION_HELP)


def json_option(help: str = "Print JSON.") -> Callable[[F], F]:
    """``--json``: the command prints one JSON document (:func:`hive_cli.common.echo_json`) instead of text;
    the command receives it as ``as_json``."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep a shared option's value for the whole invocation (:func:`hive_cli.common.get_settings`
    reads it); a value given after a command's name overrides one given before it."""
    if value is not None and param.name is not None:
        root = ctx.find_root()
        obj = root.obj if isinstance(root.obj, dict) else {}
        obj[param.name] = value
        obj.pop("settings", None)  # built from the earlier value
        root.obj = obj
    return value


def data_dir_option(func: F) -> F:
    """``--data-dir DIRECTORY`` on a group (:func:`hive_cli.common.get_settings` reads it)."""
    return click.option(*_DATA_DIR_DECLS, **_data_dir_attrs())(func)


def as_of_option(func: F) -> F:
    """``--as-of INSTANT`` on a group: the clock starts there (see :mod:`hive_core.clock`)."""
    return click.option(
        "--as-of", default=None, metavar="INSTANT", is_eager=True, expose_value=False, callback=_remember,
        help="Act as if the UTC clock read this ISO instant at start (e.g. 2026-12-31T23:59:00Z or "
             "2026-12-31): reproducible reports, rollups and backfills (default: $HIVE_AS_OF, else now).",
    )(func)


def accept_data_dir(command: click.Command) -> click.Command:
    """Give ``command`` (and a group's subcommands) the shared ``--data-dir``, once."""
    if not any(param.name == "data_dir" for param in command.params):
        command.params.append(click.Option(_DATA_DIR_DECLS, **_data_dir_attrs()))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_data_dir(sub)
    return command
