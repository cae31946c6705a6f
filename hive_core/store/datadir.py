"""The data directory's map: every path under ``<data>/`` comes from :class:`DataDir`, nowhere else.

A module that needs a file of the data directory asks ``DataDir(root).<name>`` (or
``settings.datadir.<name>``); it never joins path segments itself, so a second module can never
disagree about where something lives. :data:`TREE` describes every entry; the README's
data-directory tree is generated from it (``make docs``), so the documentation cannot drift.

It imports only the leaf :mod:`hive_core.store.layout` (the names of partition folders), so every
layer may use it; a remote root (:mod:`hive_core.store.objects`, loaded only by the settings that
read an ``s3://`` URL) is recognised without importing it (:func:`is_remote`). Nothing here touches the filesystem: creating folders, modes and locks stay with
the module that writes the file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from hive_core.store.layout import partition_name

__all__ = ["TREE", "DataDir", "is_remote"]

#: file names inside ``state/``, one owner each (the module that uses the file says so)
LEDGER_FILE = "budget-ledger.sqlite3"
CIRCUITS_FILE = "circuits.json"
CIRCUITS_LOCK = "circuits"
ALERT_OUTBOX_FILE = "budget-alerts-outbox.json"
RUN_DUE_FILE = "run-due.json"
KEYS_DIR = "keys"
KEYS_FILE = "keys.sqlite3"
KEYS_RATE_FILE = "rate.sqlite3"


def is_remote(path: object) -> bool:
    """Whether ``path`` is an :class:`~hive_core.store.objects.ObjectPath` (an ``s3://`` object). Only a
    loaded module can have made one: a local run never imports it (start-up)."""
    objects = sys.modules.get("hive_core.store.objects")
    return objects is not None and isinstance(path, objects.ObjectPath)


@dataclass(frozen=True)
class DataDir:
    """The paths of one data directory. Pure: nothing here touches the filesystem."""

    # One property per path, each saying what it is: alike by nature (`duplicates` pairs them by shape).
    root: Path

    def __post_init__(self) -> None:
        # a remote root (hive_core.store.objects.ObjectPath) keeps its type: every path below is one
        if not is_remote(self.root):
            object.__setattr__(self, "root", Path(self.root))

    # -- the event log ------------------------------------------------------------------------
    @property
    def events(self) -> Path:
        """``events/``: one folder per event type, Hive-partitioned by UTC date."""
        return self.root / "events"

    def event_type(self, event_type: str) -> Path:
        """``events/<type>/``: the partitions of one event type."""
        return self.events / event_type

    def partition(self, event_type: str, day: date) -> Path:
        """``events/<type>/date=YYYY-MM-DD/``: one UTC day of one event type."""
        return self.event_type(event_type) / partition_name(day)

    # -- rollups and rankings ------------------------------------------------------------------
    @property
    def rollups(self) -> Path:
        """``rollups/``: daily and monthly rollup files and their state."""
        return self.root / "rollups"

    @property
    def rollups_daily(self) -> Path:
        """``rollups/daily/``: one ``date=YYYY-MM-DD`` folder per rolled-up day."""
        return self.rollups / "daily"

    def rollup_day(self, day: date) -> Path:
        """``rollups/daily/date=YYYY-MM-DD/part.parquet``: one day's rollup rows."""
        return self.rollups_daily / partition_name(day) / "part.parquet"

    @property
    def rollups_monthly(self) -> Path:
        """``rollups/monthly/``: one ``month=YYYY-MM`` folder per month."""
        return self.rollups / "monthly"

    def rollup_month(self, month: str, part: str) -> Path:
        """``rollups/monthly/month=YYYY-MM/<part>.parquet`` (``totals`` or ``days``)."""
        return self.rollups_monthly / f"month={month}" / f"{part}.parquet"

    @property
    def rollup_state(self) -> Path:
        """``rollups/state.json``: what each rolled-up day was computed from."""
        return self.rollups / "state.json"

    @property
    def pruned_days(self) -> Path:
        """``rollups/pruned.json``: days whose events ``hive-jobs prune`` removed (their rollup is the record)."""
        return self.rollups / "pruned.json"

    @property
    def rankings(self) -> Path:
        """``rankings/``: the ranking table."""
        return self.root / "rankings"

    @property
    def rankings_file(self) -> Path:
        """``rankings/rankings.parquet``: the ranking table the selector reads."""
        return self.rankings / "rankings.parquet"

    # -- configuration and catalog -------------------------------------------------------------
    @property
    def catalog_file(self) -> Path:
        """``catalog/models.json``: OpenRouter's ``/models`` as served (``hive models sync``)."""
        return self.root / "catalog" / "models.json"

    @property
    def config_file(self) -> Path:
        """``config.json``: budgets and the alert webhook (private to the user)."""
        return self.root / "config.json"

    @property
    def config_lock(self) -> Path:
        """``.config.json.lock``: serialises read-modify-write of ``config.json``."""
        return self.root / ".config.json.lock"

    @property
    def experiments_file(self) -> Path:
        """``experiments.json``: A/B experiments (``hive ab``)."""
        return self.root / "experiments.json"

    # -- opt-in content, caches, reports ------------------------------------------------------
    @property
    def content(self) -> Path:
        """``content/``: stored prompts and answers (opt-in only; ``0700``)."""
        return self.root / "content"

    def content_day(self, day: date) -> Path:
        """``content/YYYY-MM-DD.jsonl``: prompts and answers of one UTC day (opt-in only)."""
        return self.content / f"{day.isoformat()}.jsonl"

    @property
    def cache(self) -> Path:
        """``cache/``: parse caches of the catalog and the ranking table (JSON, rebuilt at will)."""
        return self.root / "cache"

    @property
    def reports(self) -> Path:
        """``reports/``: reports written by ``hive-jobs run-due``."""
        return self.root / "reports"

    # -- state: locks, ledger, circuit breakers, job state -----------------------------------
    @property
    def state(self) -> Path:
        """``state/``: locks, the budget ledger, circuit breakers, job state."""
        return self.root / "state"

    def lock(self, name: str) -> Path:
        """``state/<name>.lock``: the lock of a job (``rollup``, ``reconcile``...) or of a shared file."""
        return self.state / f"{name}.lock"

    @property
    def ledger(self) -> Path:
        """``state/budget-ledger.sqlite3``: reservations and settled spend per budget period. Its side
        files (SQLite's ``-wal``/``-shm``, the writers' ``.lock``) are named after it by the ledger
        (:func:`hive_core.budget.ledger_file.lock_path_of`), wherever a ledger file lives."""
        return self.state / LEDGER_FILE

    @property
    def circuits(self) -> Path:
        """``state/circuits.json``: the circuit breaker per model."""
        return self.state / CIRCUITS_FILE

    @property
    def circuits_lock(self) -> Path:
        """``state/circuits.lock``: every change of ``circuits.json`` holds it."""
        return self.lock(CIRCUITS_LOCK)

    @property
    def circuits_aside(self) -> Path:
        """``state/circuits.json.bad``: the last unreadable ``circuits.json``, moved aside for a look."""
        return self.state / f"{CIRCUITS_FILE}.bad"

    @property
    def alert_outbox(self) -> Path:
        """``state/budget-alerts-outbox.json``: webhook deliveries not yet acknowledged."""
        return self.state / ALERT_OUTBOX_FILE

    @property
    def run_due_state(self) -> Path:
        """``state/run-due.json``: when each scheduled job last ran."""
        return self.state / RUN_DUE_FILE

    @property
    def keys_dir(self) -> Path:
        """``state/keys/``: the gateway's virtual keys and their request counters (``0700``)."""
        return self.state / KEYS_DIR

    @property
    def keys_db(self) -> Path:
        """``state/keys/keys.sqlite3``: one row per virtual key, with a salted hash of its secret,
        never the secret (:class:`hive_core.keys.KeyStore`; ``0600``, side files named after it)."""
        return self.keys_dir / KEYS_FILE

    @property
    def keys_rate(self) -> Path:
        """``state/keys/rate.sqlite3``: each key's last admissions, for its requests-per-minute limit
        (:class:`hive_core.keys.RateLimiter`; ``0600``)."""
        return self.keys_dir / KEYS_RATE_FILE

    @property
    def gateway_state(self) -> Path:
        """``state/gateway/``: what the workers of a running ``hive gateway`` share (metric snapshots)."""
        return self.state / "gateway"


#: ``(path pattern, meaning)`` of every entry, in the README's order (``make docs`` writes the tree).
TREE: tuple[tuple[str, str], ...] = (
    ("events/<type>/date=YYYY-MM-DD/<writer-id>-<seq>.parquet", "the event log (Hive partitioning by UTC date)"),
    ("events/<type>/date=YYYY-MM-DD/.<name>.parquet.tmp", "a file being written (never read)"),
    ("events/<type>/date=YYYY-MM-DD/.compact-<id>.json", "a compaction journal (see the compaction protocol)"),
    ("rollups/daily/date=YYYY-MM-DD/part.parquet", "daily rollup rows (hive-jobs rollup)"),
    ("rollups/monthly/month=YYYY-MM/{totals,days}.parquet", "per-model rollups by month"),
    ("rollups/state.json", "what each rolled-up day was computed from"),
    ("rollups/pruned.json", "days whose events were pruned: their rollups are the record"),
    ("rankings/rankings.parquet", "the ranking table the selector reads"),
    ("catalog/models.json", "/models as served (hive models sync)"),
    ("config.json", "budgets and alert webhook (0600)"),
    (".config.json.lock", "serialises changes of config.json"),
    ("experiments.json", "A/B experiments (hive ab)"),
    ("content/YYYY-MM-DD.jsonl", "prompts and answers, only with HIVE_STORE_CONTENT (0600)"),
    ("cache/", "parsed catalog and rankings, JSON (0700)"),
    ("reports/", "reports written by hive-jobs run-due"),
    ("state/<name>.lock", "locks of jobs and shared files (rollup, reconcile, circuits, ...)"),
    ("state/budget-ledger.sqlite3", "budget reservations and settled spend"),
    ("state/circuits.json", "circuit breakers per model"),
    ("state/circuits.json.bad", "the last unreadable circuits.json, set aside for a look"),
    ("state/budget-alerts-outbox.json", "alert webhooks not yet delivered"),
    ("state/run-due.json", "when each scheduled job last ran"),
    ("state/keys/keys.sqlite3", "virtual keys of the gateway: salted hashes, never a secret (0600, folder 0700)"),
    ("state/keys/rate.sqlite3", "each virtual key's recent admissions, for its requests-per-minute limit (0600)"),
    ("state/gateway/", "what the workers of hive gateway share (metric snapshots)"),
)
