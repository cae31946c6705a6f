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
    from hive_core.settings import Settings
    from ingest.log import EventLog

__all__ = ["data_dir_option", "echo_json", "get_settings", "open_event_log"]


def data_dir_option(func: Any) -> Any:
    """``--data-dir`` on a group: stored for :func:`get_settings`."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Data directory (default: $HIVE_DATA_DIR, else ~/.local/share/hive).",
    )(func)


def get_settings(ctx: click.Context, **overrides: Any) -> Settings:
    """The settings for this invocation: environment, then the group's ``--data-dir``, then overrides."""
    from hive_core.settings import Settings

    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    cached = obj.get("settings")
    if cached is not None and not overrides:
        return cached  # type: ignore[no-any-return]
    settings = Settings.from_env(data_dir=obj.get("data_dir"), **overrides)
    if not overrides:
        obj["settings"] = settings
        root.obj = obj
    return settings


def open_event_log(settings: Settings) -> EventLog:
    """The event log for a CLI command (flushed on exit and SIGTERM by the log itself)."""
    from ingest.log import EventLog

    return EventLog(settings.data_dir, max_events=settings.flush_max_events, max_age_s=settings.flush_max_age_s)


def echo_json(value: Any) -> None:
    """Print JSON to stdout (sorted keys, one document)."""
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
