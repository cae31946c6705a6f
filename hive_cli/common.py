"""Helpers every ``hive`` / ``hive-jobs`` command uses: settings from the context, JSON output, the log.

The CLIs are the composition root: they build the settings, the event log (``ingest``) and the
jobs, which is why this module may import ``ingest`` (inside functions) while the library modules
of ``hive_core`` import nothing of ours.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from hive_core.settings import Settings
    from ingest import EventLog, SpillImport

__all__ = [
    "JobCommand",
    "echo_json",
    "get_settings",
    "import_spilled_events",
    "invocation_now",
    "open_event_log",
    "plain",
    "sending_settings",
    "take_back_spills",
]


def get_settings(ctx: click.Context, **overrides: Any) -> Settings:
    """The settings for this invocation: environment, then ``--data-dir`` / ``--as-of`` (wherever they were
    given, :mod:`hive_cli.params`), then overrides."""
    from hive_core.settings import Settings

    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    cached = obj.get("settings")
    if cached is not None and not overrides:
        return cached  # type: ignore[no-any-return]
    settings = Settings.from_env(data_dir=obj.get("data_dir"), as_of=obj.get("as_of"), **overrides)
    if not overrides:
        obj["settings"] = settings
        root.obj = obj
    return settings


def invocation_now(ctx: click.Context | None) -> datetime:
    """"Now" for this invocation: its settings' clock (``--as-of`` moves it); the system's without a context."""
    if ctx is None:
        from hive_core.clock import system_clock

        return system_clock()
    return get_settings(ctx).now()


def sending_settings(ctx: click.Context) -> Settings:
    """The settings of a command that sends requests: an API key, and the real clock.

    Requests are recorded at the real time; a moved clock (``--as-of``) is refused, not half-applied.
    """
    from hive_core.errors import ConfigError

    settings = get_settings(ctx)
    settings.require_api_key()
    if settings.as_of is not None:
        raise ConfigError("--as-of / HIVE_AS_OF is for reports and batch jobs; requests are always "
                          "recorded at the real time (unset it to send requests)")
    return settings


def open_event_log(settings: Settings) -> EventLog:
    """The event log for a CLI command, used as a context manager.

    Closing it writes the buffer; events it cannot write (full disk, read-only directory) are
    spilled outside the data directory and the close raises ``EventsSpilled``, the command's
    one-line error - so a command prints its results *inside* the ``with`` block, before that.
    """
    from ingest import EventLog

    return EventLog(settings.data_dir, max_events=settings.flush_max_events, max_age_s=settings.flush_max_age_s)


def import_spilled_events(data_dir: Path) -> SpillImport:
    """Take back the events commands spilled outside ``data_dir`` (``hive-jobs import-spills``)."""
    from ingest import import_spills

    return import_spills(data_dir)


def take_back_spills(ctx: click.Context) -> None:
    """Before a ``hive-jobs`` command: import pending spills of its data directory, if any.

    Costs two ``stat`` calls when there are none. Taking them back is never the command's failure:
    when the store is still unwritable, one warning line says so and the command runs anyway.
    """
    from ingest import pending_spills

    data_dir = get_settings(ctx).data_dir
    waiting = pending_spills(data_dir)
    if not waiting:
        return
    try:
        taken = import_spilled_events(data_dir)
    except OSError as exc:
        click.echo(f"warning: {len(waiting)} spilled event file(s) wait to be taken back into {data_dir} "
                   f"({exc.strerror or exc}); `hive-jobs import-spills` retries", err=True)
        return
    if taken.files:
        click.echo(f"took back {taken.events} spilled event(s) from {', '.join(map(str, taken.sources))}", err=True)
    for path in taken.unreadable:
        click.echo(f"warning: spilled event file {path} is not readable Parquet: left in place", err=True)


class JobCommand(click.Command):
    """A ``hive-jobs`` command: before it runs, the events commands spilled outside its data directory
    (disk full, read-only) come back (:func:`take_back_spills`), so the nightly cron run heals the
    store without a human. Its own options are parsed first: ``hive-jobs rollup --data-dir X`` takes
    back the spills of X."""

    def invoke(self, ctx: click.Context) -> Any:
        take_back_spills(ctx)
        return super().invoke(ctx)


def plain(value: Any) -> Any:
    """A result as JSON-ready data, the one convention of ``--json``: a result's ``as_dict()`` when it
    defines one (for fields it derives or renames), else its dataclass fields; an event (a pydantic
    model) as it is stored; containers element by element. Anything else is left for ``str``
    (paths, dates, decimals)."""
    from dataclasses import fields, is_dataclass

    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        return plain(as_dict())
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def echo_json(value: Any) -> None:
    """Print a result (see :func:`plain`) as one JSON document on stdout, keys sorted."""
    json.dump(plain(value), sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
