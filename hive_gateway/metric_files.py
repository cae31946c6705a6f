"""How the workers of one gateway add up their metrics: one snapshot file per worker, summed on scrape.

With ``hive gateway --workers N`` the kernel hands each connection to one of N processes, so a
Prometheus scrape sees one worker. Each worker therefore writes its snapshot atomically to
``<data>/state/gateway/metrics-<pid>.json`` (every second while it changes, at every scrape it answers,
and on exit) and a scrape answers the sum of every file. Two promises hold:

* **Counters never go backwards.** The worker answering a scrape writes its own file first and
  reads every file after, so any later scrape, whichever worker answers, reads files at least as new.
  A worker that has exited stays counted: under ``metrics.lock`` its file is folded into
  ``metrics-retired.json`` and only then deleted.
* **Nothing is counted twice.** The fold is idempotent: the retired file lists the identity
  (host, pid, process start time) of every file it holds whose file may still exist; a crash between
  writing it and deleting the dead file leaves a file that the next fold only deletes, and that every
  reader skips. Readers merge under the same lock, so they never see a file and its fold at once.
  The process start time tells a reused pid from the worker that had it; files of another host
  (a data directory shared over the network) are never taken for dead.

A dead worker's in-flight gauge is dropped with it; budget gauges are not in the files at all (every
worker reads the one ledger).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hive_core.store.atomic import write_bytes_atomic
from hive_core.store.lock import file_lock
from hive_gateway.exposition import Snapshot

__all__ = ["SNAPSHOT_VERSION", "WorkerFiles", "process_start"]

#: bumped when the snapshot's shape changes; files of another version are left out of the sum
SNAPSHOT_VERSION = 1
_WORKER_FILE = re.compile(r"metrics-(\d+)\.json")
RETIRED = "metrics-retired.json"
LOCK = "metrics.lock"


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22), or None
    when there is no such process (or no ``/proc``). With the pid, it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count fields after its last ')'
    return int(stat[stat.rindex(b")") + 2 :].split()[19])


def _identity(doc: Mapping[str, Any]) -> str:
    return f"{doc['host']}/{doc['pid']}/{doc['start']}"


def _alive(doc: Mapping[str, Any], host: str) -> bool:
    if doc["host"] != host:
        return True  # another machine's pids mean nothing here: never fold its files
    pid = int(doc["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process holds the pid; its start time says whether it is the worker
    return bool(process_start(pid) == doc["start"])


class WorkerFiles:
    """The snapshot files of the workers sharing ``directory`` (``DataDir.gateway_state``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.start = process_start(self.pid)
        self.path = directory / f"metrics-{self.pid}.json"

    def write(self, snapshot: Snapshot) -> None:
        """Replace this worker's file with ``snapshot`` (the caller serialises its writes, so a file
        never goes back to an older snapshot)."""
        doc = {"version": SNAPSHOT_VERSION, "host": self.host, "pid": self.pid, "start": self.start,
               **snapshot.to_json()}
        write_bytes_atomic(self.path, json.dumps(doc, separators=(",", ":")).encode())

    def retire_dead(self) -> None:
        """Fold the files of exited workers into the retired sum (at start-up, before this worker's
        first write can replace a file left under a reused pid)."""
        with file_lock(self.directory / LOCK):
            self._fold()

    def merged(self, own: Snapshot) -> Snapshot:
        """The sum over every worker: ``own`` (this worker, live), the other live files, and the
        retired sum (which first takes in the files of workers that have exited)."""
        with file_lock(self.directory / LOCK):
            live, retired = self._fold()
        total = Snapshot()
        total.add(retired, gauges=False)
        total.add(own)
        for doc in live:
            if doc["pid"] != self.pid or doc["host"] != self.host:
                total.add(Snapshot.from_json(doc))
        return total

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError):  # gone meanwhile, or unreadable: nothing to add
            return None
        return doc if isinstance(doc, dict) and doc.get("version") == SNAPSHOT_VERSION else None

    def _fold(self) -> tuple[list[dict[str, Any]], Snapshot]:
        """Under the lock: move dead workers' files into the retired sum; return the live files and it."""
        retired_path = self.directory / RETIRED
        retired_doc = self._read(retired_path) or {"values": {}, "histograms": {}, "folded": []}
        retired = Snapshot.from_json(retired_doc)
        folded = set(retired_doc.get("folded", []))
        live: list[dict[str, Any]] = []
        dead: list[tuple[Path, str]] = []
        present: set[str] = set()
        for path in sorted(self.directory.glob("metrics-*.json")):
            if not _WORKER_FILE.fullmatch(path.name) or (doc := self._read(path)) is None:
                continue
            identity = _identity(doc)
            present.add(identity)
            if identity in folded:
                dead.append((path, identity))  # folded before a crash kept it from being deleted
            elif _alive(doc, self.host):
                live.append(doc)
            else:
                retired.add(Snapshot.from_json(doc), gauges=False)
                folded.add(identity)
                dead.append((path, identity))
        if dead:
            # keep only the identities whose files may still exist: the list stays as short as the directory
            doc = {"version": SNAPSHOT_VERSION, "folded": sorted(folded & present), **retired.to_json()}
            write_bytes_atomic(retired_path, json.dumps(doc, separators=(",", ":")).encode())
            for path, _ in dead:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return live, retired
