"""A per-model circuit breaker whose state every process on the machine shares.

States::

    closed --(N consecutive failures, or failure rate >= R over the recent window)--> open
    open --(cool-down elapsed; the next allow() claims the one probe)--> half-open
    half-open --success--> closed        half-open --failure--> open (cool-down restarts)

While open, :meth:`CircuitBreaker.allow` is False, so a model that is down is skipped at once
instead of after its timeout. In half-open exactly one caller gets True (the probe); others keep
getting False until the probe reports back, or until ``probe_timeout_s`` passes (a probe whose
process died must not keep the model closed forever).

The state is a small JSON file, ``<data>/state/circuits.json`` (``DataDir.circuits``). Every change
takes the exclusive lock ``state/circuits.lock`` (:func:`hive_core.store.lock.file_lock`), reads the
file, changes it and writes it back atomically (temporary file, ``os.replace``; not fsynced: soft
state), so concurrent ``hive ask`` processes see one history.
A success is written only while it changes what a decision reads - the circuit not closed, failures
in a row, or a failure still among the recent outcomes - so the hot path stays lock-free for a
model that never failed or whose failures left the window, and a model's failure-rate window
starts at a failure. Readers that only need the blocked set
(the selector) read without the lock - the file is always whole - and reuse what they read while
its mtime is unchanged. The per-call checks (``allow`` of a closed circuit, ``record_success`` of
a model with no entry) reuse what was read for up to ``refresh_s`` without even a ``stat``, as the
selector does: another process's change shows up within that, this process's own at once, and
anything that changes the file re-reads it under the lock.

Only the model's own faults are recorded (see :func:`hive_core.ask.model_is_unwell`); a call that
ended without a verdict on the model (the caller's fault, a cancel) gives back the half-open probe
it held (:meth:`CircuitBreaker.release`).

Measured: a success that is written costs ~0.3 ms (lock, read, write, rename; with the two fsyncs it
was ~1.3 ms of wall time). Before, every success of a model that had ever failed was written, for
good: after one 502, each answer of that model held a gateway's event loop for ~1.3 ms.

The file is validated when read. Circuits are soft state - losing them costs at most a few calls
to a failing model before it trips again - so a file that cannot be parsed, or any entry that is
not what this module writes, is not an error that stops ``hive ask``: the file is moved aside to
``circuits.json.bad`` (kept for a look, replaced by the next bad one) under the lock, every circuit
starts closed, and one line on stderr says so. A file that cannot be moved (a read-only data
directory) is ignored the same way, and the line says to delete it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

from hive_core.store.atomic import write_json_atomic
from hive_core.store.datadir import DataDir
from hive_core.store.lock import file_lock

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

#: the cached mtime of a state file that does not exist (never a real one)
_MISSING = -2


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _entry_problem(model: object, entry: object) -> str | None:
    """What is wrong with one model's entry, or ``None`` when it is what this module writes."""
    if not isinstance(entry, dict):
        return f"the entry of {model!r} is not an object"
    if entry.get("state", CLOSED) not in (CLOSED, OPEN, HALF_OPEN):
        return f"the entry of {model!r} has an unknown state"
    for key in ("opened_at", "probe_at"):
        if entry.get(key) is not None and not _number(entry[key]):
            return f"the entry of {model!r} has a non-numeric {key}"
    consecutive = entry.get("consecutive", 0)
    if not isinstance(consecutive, int) or isinstance(consecutive, bool):
        return f"the entry of {model!r} has a non-integer consecutive count"
    outcomes = entry.get("outcomes", [])
    if not isinstance(outcomes, list) or not all(
        isinstance(o, list) and len(o) == 2 and _number(o[0]) and isinstance(o[1], bool) for o in outcomes
    ):
        return f"the entry of {model!r} has malformed outcomes"
    return None


def parse_state(raw: bytes) -> tuple[dict[str, Any], str | None]:
    """The circuits of a state file's bytes, and what is wrong with them (then the circuits are ``{}``)."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return {}, f"not JSON: {exc}"
    if not isinstance(data, dict):
        return {}, "not a JSON object"
    for model, entry in data.items():
        problem = _entry_problem(model, entry)
        if problem is not None:
            return {}, problem
    return data, None


@dataclass(eq=False)
class CircuitBreaker:
    """Circuit state per model id, persisted in the data directory's ``state/circuits.json``.

    ``datadir`` is the data directory's :class:`DataDir`. The keywords are the thresholds of the
    module docstring."""

    datadir: DataDir
    _: KW_ONLY
    # (fields with defaults: `duplicates` pairs them with any such class by shape; nothing is repeated)
    failure_threshold: int = 5
    failure_rate: float = 0.5
    min_calls: int = 10
    window: int = 20
    window_s: float = 300.0
    cooldown_s: float = 30.0
    probe_timeout_s: float = 60.0
    refresh_s: float = 0.25
    clock: Callable[[], float] = time.time
    warn: Callable[[str], object] = _stderr
    path: Path = field(init=False)

    def __post_init__(self) -> None:
        where = self.datadir
        self.path, self._lock_path, self._aside = where.circuits, where.circuits_lock, where.circuits_aside
        self._cached: tuple[int, dict[str, Any]] | None = None
        #: monotonic time of the hot path's last read (reused for ``refresh_s``: _read_recent)
        self._read_at = float("-inf")
        self._blocked_cache: tuple[float, float, frozenset[str]] | None = None
        self._holding_lock = False
        self._warned_unsaved = False
        #: model -> the probe_at of the half-open probe this instance claimed (see release())
        self._probes: dict[str, float] = {}

    # -- reading -------------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        """The whole state; reuses the last parse while the file's mtime is unchanged."""
        try:
            mtime = self.path.stat().st_mtime_ns
            if self._cached is not None and self._cached[0] == mtime:
                return self._cached[1]
            data, problem = parse_state(self.path.read_bytes())
        except FileNotFoundError:  # no circuit has failed yet: remembered too (_read_recent)
            self._cached = (_MISSING, {})
            return self._cached[1]
        except OSError as exc:  # a directory in its place, no permission: the same soft recovery
            data, problem, mtime = {}, f"cannot read it: {exc.strerror}", -1
        if problem is not None:
            self._set_aside(problem, mtime)
        self._cached = (mtime, data)
        return data

    def _read_recent(self) -> dict[str, Any]:
        """:meth:`_read`, reused for up to ``refresh_s`` (the hot path's read: one ``stat`` saved
        per call; another process's change is seen within ``refresh_s``, this one's at once)."""
        tick = time.monotonic()
        cached = self._cached
        if cached is not None and tick - self._read_at < self.refresh_s:
            return cached[1]
        data = self._read()
        self._read_at = tick
        return data

    def _set_aside(self, problem: str, mtime: int) -> None:
        """Move an unreadable state file aside (circuits reset) and say so in one line."""
        aside = self._aside
        try:
            with contextlib.ExitStack() as stack:
                if not self._holding_lock:
                    stack.enter_context(self._lock())
                if mtime != -1 and self.path.stat().st_mtime_ns != mtime:
                    return  # another process moved it (and said so) or wrote a good one meanwhile
                os.replace(self.path, aside)
            what = f"moved to {aside}"
        except FileNotFoundError:
            return
        except OSError:  # e.g. a read-only data directory: ignore it on every read instead
            what = "delete it to stop this warning"
        self.warn(f"warning: ignoring unreadable {self.path} ({problem}): circuits reset; {what}")

    def _state_of(self, entry: dict[str, Any] | None, now: float) -> str:
        if not entry or entry.get("state") == CLOSED:
            return CLOSED
        if entry.get("state") == OPEN and now - float(entry.get("opened_at", 0)) < self.cooldown_s:
            return OPEN
        return HALF_OPEN

    def state(self, model: str) -> str:
        """``closed``, ``open`` or ``half-open`` (an open circuit whose cool-down has passed)."""
        return self._state_of(self._read().get(model), self.clock())

    def _blocks(self, entry: dict[str, Any] | None, now: float) -> bool:
        state = self._state_of(entry, now)
        if state == OPEN:
            return True
        if state == HALF_OPEN and entry is not None:
            probe_at = entry.get("probe_at")
            return probe_at is not None and now - float(probe_at) < self.probe_timeout_s
        return False

    def blocked(self) -> frozenset[str]:
        """Models that would be refused right now (open, or half-open with a probe out).

        For the selector's hot path: the answer is reused for up to ``refresh_s`` (other processes'
        changes show up within that), and until the first time-based change (a cool-down ending).
        This process's own changes are seen at once.
        """
        tick = time.monotonic()
        now = self.clock()
        cached = self._blocked_cache
        if cached is not None and tick < cached[0] and now < cached[1]:
            return cached[2]
        data = self._read()
        blocked = frozenset(model for model, entry in data.items() if self._blocks(entry, now))
        self._blocked_cache = (tick + self.refresh_s, self._next_change(data, now), blocked)
        return blocked

    def _next_change(self, data: dict[str, Any], now: float) -> float:
        """The earliest clock time at which a model's blocked status changes by time alone."""
        times = []
        for entry in data.values():
            if entry.get("state") == OPEN:
                times.append(float(entry.get("opened_at", 0)) + self.cooldown_s)
            if entry.get("probe_at") is not None:
                times.append(float(entry["probe_at"]) + self.probe_timeout_s)
        return min((t for t in times if t > now), default=float("inf"))

    # -- changing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """The exclusive lock every change of the file takes (between processes, too)."""
        with file_lock(self._lock_path):
            self._holding_lock = True
            try:
                yield
            finally:
                self._holding_lock = False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """Exclusive lock, fresh read, and an atomic write of whatever the caller changed."""
        with self._lock():
            self._cached = None
            data = dict(self._read())
            yield data
            self._write(data)

    def _not_saved(self, exc: OSError) -> None:
        """A change that could not be written (a read-only or full disk): forgotten, said once."""
        if not self._warned_unsaved:
            self._warned_unsaved = True
            self.warn(f"warning: circuit state not saved in {self.path.parent}: {exc.strerror or exc}")

    def _write(self, data: dict[str, Any]) -> None:
        # soft state, not fsynced (~1.3 ms less per change, on a gateway's event loop): a power cut
        # leaves the old file or an empty one, which is moved aside like any unreadable one
        write_json_atomic(self.path, data, indent=None, durable=False)
        self._cached = None
        self._blocked_cache = None

    def allow(self, model: str) -> bool:
        """May a request go to ``model`` now? In half-open, claims the single probe."""
        now = self.clock()
        entry = self._read_recent().get(model)
        if self._state_of(entry, now) == CLOSED:
            return True  # the common case: no lock, no write
        try:
            with self._locked() as data:
                entry = data.get(model)
                if self._blocks(entry, now):
                    return False
                if self._state_of(entry, now) == HALF_OPEN:
                    data[model] = {**(entry or {}), "state": HALF_OPEN, "probe_at": now}
                    self._probes[model] = now
                return True
        except OSError as exc:  # no probe can be claimed (a read-only disk): decide on what was read
            self._not_saved(exc)
            return not self._blocks(entry, now)

    def release(self, model: str) -> None:
        """A call to ``model`` ended without a verdict on the model (the caller's fault, a cancel):
        the half-open probe this instance claimed for it, if any, is given back at once instead of
        blocking the model until ``probe_timeout_s``. Never raises: circuits are soft state."""
        claimed = self._probes.pop(model, None)
        if claimed is None:
            return
        try:
            with self._locked() as data:
                entry = data.get(model)
                if entry is not None and entry.get("probe_at") == claimed:
                    data[model] = {**entry, "probe_at": None}
        except OSError as exc:
            self._not_saved(exc)

    def record_success(self, model: str) -> None:
        """A call to ``model`` succeeded: the circuit closes (a half-open probe passed)."""
        self._probes.pop(model, None)
        now = self.clock()
        entry = self._read_recent().get(model)
        if entry is None:
            return  # never failed: nothing worth a locked write on the hot path
        # another process's failure may be newer than the reused read: decide on the file as it is
        # now (one stat while it is unchanged), or a success that must end a run of failures is skipped
        if self._settled(self._read().get(model) or {}, now):
            return
        try:
            with self._locked() as data:
                entry = data.get(model) or {}
                if entry.get("state", CLOSED) != CLOSED:
                    data[model] = {"state": CLOSED, "consecutive": 0, "outcomes": []}
                    return
                data[model] = {**entry, "consecutive": 0, "outcomes": self._outcomes(entry, now, ok=True)}
        except OSError as exc:
            self._not_saved(exc)

    def record_failure(self, model: str) -> None:
        """A call to ``model`` failed in a way that says the model is unwell; may open the circuit."""
        self._probes.pop(model, None)
        now = self.clock()
        try:
            with self._locked() as data:
                entry = data.get(model) or {"state": CLOSED}
                if entry.get("state") != CLOSED:
                    # A failed probe re-opens for a full cool-down; a failure of a call that was already
                    # in flight when the circuit opened says nothing new and must not extend it.
                    if self._state_of(entry, now) == HALF_OPEN:
                        data[model] = {**entry, "state": OPEN, "opened_at": now, "probe_at": None}
                    return
                consecutive = int(entry.get("consecutive", 0)) + 1
                outcomes = self._outcomes(entry, now, ok=False)
                failures = sum(1 for _ts, ok in outcomes if not ok)
                trips = consecutive >= self.failure_threshold or (
                    len(outcomes) >= self.min_calls and failures / len(outcomes) >= self.failure_rate
                )
                if trips:
                    data[model] = {"state": OPEN, "opened_at": now, "probe_at": None, "consecutive": consecutive,
                                   "outcomes": []}
                else:
                    data[model] = {"state": CLOSED, "consecutive": consecutive, "outcomes": outcomes}
        except OSError as exc:
            self._not_saved(exc)

    def _settled(self, entry: dict[str, Any], now: float) -> bool:
        """Whether a success would change nothing any decision reads: the circuit closed, no
        failure in a row, and none among the recent outcomes (the failure-rate window starts at a
        failure, as for a model with no entry). Before, every success of a model that had ever
        failed took the lock and rewrote the file: ~1.3 ms each, for good."""
        if entry.get("state", CLOSED) != CLOSED or int(entry.get("consecutive", 0)) != 0:
            return False
        return all(ok or now - float(ts) > self.window_s for ts, ok in entry.get("outcomes", []))

    def _outcomes(self, entry: dict[str, Any], now: float, *, ok: bool) -> list[list[Any]]:
        """The recent outcomes with this one appended: at most ``window``, none older than ``window_s``."""
        recent = [o for o in entry.get("outcomes", []) if now - float(o[0]) <= self.window_s]
        recent.append([now, ok])
        return recent[-self.window:]
