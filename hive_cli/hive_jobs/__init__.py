"""``hive-jobs``: batch work over the event store, made for cron.

Each command lives in its own module under ``hive_cli.hive_jobs`` and is imported when it runs.
"""

from __future__ import annotations

from hive_cli.lazy import entry_point, root_group

__all__ = ["cli", "main"]

#: name -> ("module:command", one-line help): the registry LazyGroup loads from; every group's
#: registry has this shape by design (data, one line per command)
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("hive_cli.hive_jobs.store:simulate", "Write a realistic simulated history of N days into the store."),
    "sql": ("hive_cli.hive_jobs.store:sql", "Run SQL over the event views (api_calls, usage, stream_outcomes, ...)."),
    "verify": ("hive_cli.hive_jobs.store:verify", "Check every event file; report problems; exit 1 on corruption."),
    "compact": ("hive_cli.hive_jobs.store:compact", "Merge the small files of closed days into large ones."),
    "summary": ("hive_cli.hive_jobs.store:summary", "Print a short summary of the store: spend, top models, P95s."),
    "rollup": ("hive_cli.hive_jobs.rollup:rollup", "Roll events up into daily tables and refresh the rankings."),
    "rankings": ("hive_cli.hive_jobs.rollup:rankings", "Recompute the ranking table the selector reads."),
    "reconcile": ("hive_cli.hive_jobs.reconcile:reconcile", "Fetch billed cost for requests whose cost was not billed."),
    "alerts": ("hive_cli.hive_jobs.budget:alerts", "Evaluate budget thresholds and forecasts; deliver alerts."),
    "rebuild-ledger": ("hive_cli.hive_jobs.budget:rebuild_ledger", "Recreate the budget ledger from the events."),
    "eval": ("hive_cli.hive_jobs.eval:eval_", "Score answers with a judge model; the rankings weigh the scores."),
    "ab-report": ("hive_cli.hive_jobs.insights:ab_report", "Report an A/B experiment with significance tests."),
    "report": ("hive_cli.hive_jobs.reports:report", "Write a report of a period (md, html, json)."),
    "schedule": ("hive_cli.hive_jobs.reports:schedule", "Print or install the crontab lines for Hive's jobs."),
    "run-due": ("hive_cli.hive_jobs.reports:run_due", "Run whatever jobs are due since their last successful run."),
    "prune": ("hive_cli.hive_jobs.prune:prune", "Remove event partitions older than N days once their rollups exist (never before)."),
    "import-spills": ("hive_cli.hive_jobs.spills:import_spills", "Take back events a command could not write (full disk)."),
}

cli = root_group(
    "hive-jobs", "Hive's batch jobs: simulate, roll up, rank, verify, compact, report. Safe to run from cron.",
    COMMANDS,
)

main = entry_point(cli)
