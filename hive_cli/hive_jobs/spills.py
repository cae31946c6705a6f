"""``hive-jobs import-spills``: take back events a command could not write into the data directory.

When the data directory was full or read-only, ``hive ask`` (and every command that records)
kept its events in a spill directory outside it and said so (:mod:`ingest.spill`). Every
``hive-jobs`` command takes them back first; this command does only that, and fails (exit 1) when
the store still cannot be written.
"""

from __future__ import annotations

import click

from hive_cli.common import echo_json, get_settings, import_spilled_events
from hive_cli.params import json_option

__all__ = ["import_spills"]


@click.command("import-spills")  # a plain command: taking back spills is what it does, and may fail
@json_option("Print JSON (files, events, duplicates, sources).")
@click.pass_context
def import_spills(ctx: click.Context, as_json: bool) -> None:
    """Take back events spilled outside the data directory (disk full or read-only), exactly once."""
    from hive_core.errors import DataError

    taken = import_spilled_events(get_settings(ctx).data_dir)
    if as_json:
        echo_json(taken)
    elif taken.files:
        already = f" ({taken.duplicates} already in the store)" if taken.duplicates else ""
        click.echo(f"took back {taken.events} spilled event(s) from {taken.files} file(s){already}")
    elif not taken.unreadable:
        click.echo("no spilled events")
    if taken.unreadable:
        raise DataError(f"{len(taken.unreadable)} spilled file(s) are not readable Parquet and were left in place: "
                        f"{', '.join(map(str, taken.unreadable))}")
