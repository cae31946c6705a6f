"""``hive-jobs simulate | sql | verify | compact | summary``: the event store's own commands."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hive_cli.common import JobCommand, echo_json, get_settings
from hive_cli.output import DEFAULT_MAX_ROWS
from hive_cli.params import DATE, json_option, period_option
from hive_core.errors import ConfigError, HiveError

if TYPE_CHECKING:
    from hive_core.period import Period

__all__ = ["compact", "simulate", "sql", "summary", "verify"]


@click.command(cls=JobCommand)
@click.option("--days", type=click.IntRange(1, 3660), default=30, show_default=True, help="Days of history, ending today (UTC).")
@click.option("--calls-per-day", type=click.IntRange(1), default=10_000, show_default=True, help="Logical requests per day.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; the same seed gives the same history.")
@click.pass_context
def simulate(ctx: click.Context, days: int, calls_per_day: int, seed: int) -> None:
    """Write a realistic simulated history of N days into the store."""
    from jobs.simulate.simulate import simulate as run

    settings = get_settings(ctx)
    report = run(settings.data_dir, days=days, calls_per_day=calls_per_day, seed=seed, now=settings.now())
    parts = ", ".join(f"{n:,} {t}" for t, n in report.events.items())
    click.echo(f"simulated {report.requests:,} requests over {days} days into {settings.data_dir}: {parts}")


@click.command(cls=JobCommand)
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table", show_default=True, help="Output format.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write to FILE instead of stdout (required for parquet).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Bind $NAME to VALUE (repeatable); never formatted into the SQL.")
@click.option("--max-rows", type=click.IntRange(1), default=DEFAULT_MAX_ROWS, show_default=True, help="Rows shown in table format.")
@click.pass_context
def sql(ctx: click.Context, query: str, fmt: str, out: str | None, params: tuple[str, ...], max_rows: int) -> None:
    """Run SQL over the event views (api_calls, usage, stream_outcomes, ...).

    Views: api_calls, usage, stream_outcomes, selections, quality_ratings, budget_alerts,
    budget_overrides, ab_assignments, requests. Corrupt files are skipped with a warning.
    """
    import queries
    from hive_cli.output import write_result

    bound: dict[str, str] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        bound[name] = value
    if fmt == "parquet" and out is None:
        raise ConfigError("--format parquet needs --out FILE")
    settings = get_settings(ctx)
    with queries.connect(settings.data_dir) as store:
        result = queries.run_sql(store, query, bound)
        write_result(result, fmt, Path(out) if out else None, max_rows=max_rows)


@click.command(cls=JobCommand)
@json_option("Print the report as JSON.")
@click.option("--no-repair", is_flag=True, help="Only report; leave killed writers' temp files and compaction journals alone.")
@click.pass_context
def verify(ctx: click.Context, as_json: bool, no_repair: bool) -> None:
    """Check every event file; report problems; exit 1 on corruption.

    Checks readability, schema, partition dates and duplicate event ids. Temporary files of killed
    writers and journals of killed compactions are repaired, not reported. Nothing else is deleted.
    """
    from hive_core.store.lock import READ_ONLY_ERRNOS, STORE_LOCK, job_lock
    from ingest import verify as run

    settings = get_settings(ctx)
    report = None
    if not no_repair:
        try:
            with job_lock(settings.datadir, STORE_LOCK):  # repairs must not race a running compaction
                report = run(settings.data_dir, repair=True)
        except OSError as exc:
            if exc.errno not in READ_ONLY_ERRNOS:
                raise
            # A read-only store can still be checked; it just cannot be repaired.
            click.echo(f"note: {settings.data_dir} cannot be written ({exc.strerror}): checked without repairs",
                       err=True)
    if report is None:
        report = run(settings.data_dir, repair=False)
    if as_json:
        echo_json(report)
    else:
        for line in report.repaired:
            click.echo(f"repaired: {line}", err=True)
        for problem in report.problems:
            click.echo(f"problem: {problem}")
        state = "ok" if report.ok else f"{len(report.problems)} problem(s)"
        quarantined = f" ({report.quarantined:,} quarantined)" if report.quarantined else ""
        click.echo(f"verified {report.files} files, {report.events:,} events{quarantined}: {state}")
    if not report.ok:
        sys.exit(1)


@click.command(cls=JobCommand)
@click.option("--date", "day", type=DATE, default=None, help="Compact only this day (even if still open).")
@click.pass_context
def compact(ctx: click.Context, day: date | None) -> None:
    """Merge the small files of closed days into large ones.

    Crash-safe: a compaction killed at any instant loses and duplicates nothing; the next run (or
    verify) finishes or undoes it. See the protocol in the README.
    """
    from hive_core.store.lock import STORE_LOCK, job_lock
    from ingest import compact as run

    settings = get_settings(ctx)
    with job_lock(settings.datadir, STORE_LOCK):
        report = run(settings.data_dir, day=day, now=settings.now())
    for line in report.repaired:
        click.echo(f"repaired: {line}", err=True)
    for path, reason in report.skipped:
        click.echo(f"warning: skipped {path}: {reason}", err=True)
    dropped = f" ({report.duplicates:,} duplicate rows dropped)" if report.duplicates else ""
    click.echo(f"compacted {report.partitions} partitions: {report.files_in} files -> {report.files_out}, "
               f"{report.events:,} events{dropped}")


@click.command(cls=JobCommand)
@period_option("30d")
@click.pass_context
def summary(ctx: click.Context, period: Period) -> None:
    """Print a short summary of the store: spend, top models, P95s."""
    from jobs.insights.summary import summary as run

    settings = get_settings(ctx)
    result = run(settings, period)
    if result.cost.requests == 0:
        raise HiveError(f"no events in {settings.data_dir} for {period.label}: run `hive-jobs simulate` or make some calls first")
    for line in result.lines():
        click.echo(line)
