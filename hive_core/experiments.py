"""A/B experiments: their definitions in ``<data>/experiments.json`` (``DataDir.experiments_file``) and the
request-path assignment.

    exp = create_experiment(data_dir, "mini-vs-haiku", model_a="gpt-4o-mini", model_b="claude-haiku-4.5",
                            split=0.5, goal="cost", catalog=catalog)
    variant = assign_variant(exp, request_id)        # "a" or "b", the same for the same key, always

Model names are resolved against the catalog when one is given (the CLI always gives the synced
one): a short name becomes its full id and a typo is refused with "did you mean" *before* anything
is stored, so a typo never becomes a model of an experiment's report.

Each experiment has a *goal* (:data:`GOALS`: ``success``, ``cost``, ``latency`` or ``quality``), the
metric B must be significantly better on to win, and *guardrails* (default: ``success``), metrics
the winner may not be significantly worse on (``jobs.insights.ab_verdict``). Files written before
goals existed read with the defaults: goal ``success``, guardrail ``success``.

Assignment is a hash, not a random draw: ``blake2b(name + "\\0" + key)`` mapped to [0, 1) goes to
variant ``b`` when it is below ``split``. ``hive ask --experiment`` uses the request's id (a fresh
UUIDv7, recorded on every event of the request) as the key, so traffic splits evenly even when the
same prompt is asked many times, and anyone can re-derive a request's variant from its events.
A caller that wants "the same prompt always sees the same model" passes a hash of the prompt
text as the key instead.

The file is rewritten atomically (temporary file, fsync, ``os.replace``); experiments are never
deleted, only stopped, so past assignments always have their definition.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hive_core.clock import system_clock
from hive_core.errors import ConfigError, DataError
from hive_core.store.atomic import write_json_atomic
from hive_core.store.datadir import DataDir

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hive_core.ask import AskOptions, AskResult
    from hive_core.catalog.catalog import Catalog
    from hive_core.openrouter.client import OpenRouterClient
    from hive_core.openrouter.protocol import Messages
    from hive_core.store.events import EventSink

__all__ = [
    "DEFAULT_GUARDRAILS",
    "GOALS",
    "Experiment",
    "ExperimentExists",
    "UnknownExperiment",
    "ask_in_experiment",
    "assign_variant",
    "create_experiment",
    "get_experiment",
    "list_experiments",
    "stop_experiment",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: what an experiment can be won on
GOALS = ("success", "cost", "latency", "quality")
#: the metrics a winner may not be significantly worse on, unless the experiment says otherwise
DEFAULT_GUARDRAILS = ("success",)


class ExperimentExists(ConfigError):
    """An experiment of that name already exists (names are never reused)."""


class UnknownExperiment(ConfigError):
    """No experiment of that name."""


@dataclass(frozen=True)
class Experiment:
    """One A/B experiment: model A (control) against model B, ``split`` = share of traffic to B."""

    name: str
    model_a: str
    model_b: str
    split: float = 0.5
    task: str | None = None
    status: Literal["running", "stopped"] = "running"
    created_at: str = ""
    stopped_at: str | None = None
    goal: str = "success"
    guardrails: tuple[str, ...] = DEFAULT_GUARDRAILS

    def model_of(self, variant: str) -> str:
        return self.model_a if variant == "a" else self.model_b


def _read(data_dir: Path) -> dict[str, Experiment]:
    path = DataDir(data_dir).experiments_file
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable experiments file ({exc})") from exc
    try:
        return {item["name"]: Experiment(**{**item, "guardrails": tuple(item.get("guardrails", DEFAULT_GUARDRAILS))})
                for item in raw["experiments"]}
    except (KeyError, TypeError) as exc:
        raise DataError(f"{path}: not an experiments file ({exc})") from exc


def _write(data_dir: Path, experiments: dict[str, Experiment]) -> None:
    write_json_atomic(DataDir(data_dir).experiments_file, {"experiments": [asdict(e) for e in experiments.values()]})


def create_experiment(
    data_dir: Path, name: str, *, model_a: str, model_b: str, split: float = 0.5, task: str | None = None,
    goal: str = "success", guardrails: Sequence[str] = DEFAULT_GUARDRAILS, catalog: Catalog | None = None,
    now: datetime | None = None,
) -> Experiment:
    """Define and start an experiment; raises :class:`ExperimentExists`, ``UnknownModel`` (a name
    ``catalog`` does not know, with "did you mean") or ``ConfigError``."""
    if catalog is not None:
        model_a, model_b = catalog.resolve(model_a).id, catalog.resolve(model_b).id
    unknown = [g for g in (goal, *guardrails) if g not in GOALS]
    if unknown:
        raise ConfigError(f"unknown goal or guardrail {unknown[0]!r}: one of {', '.join(GOALS)}")
    if not _NAME.match(name):
        raise ConfigError(f"bad experiment name {name!r}: letters, digits, '.', '_', '-' (max 64)")
    if not 0.0 < split < 1.0:
        raise ConfigError(f"--split must be between 0 and 1 (share of traffic to model B), got {split}")
    if model_a == model_b:
        raise ConfigError("model A and model B are the same model")
    experiments = _read(data_dir)
    if name in experiments:
        raise ExperimentExists(f"experiment {name!r} already exists (names are not reused)")
    created = (now or system_clock()).isoformat(timespec="seconds")
    exp = Experiment(name, model_a, model_b, split, task, "running", created, goal=goal,
                     guardrails=tuple(dict.fromkeys(guardrails)))
    experiments[name] = exp
    _write(data_dir, experiments)
    return exp


def list_experiments(data_dir: Path) -> list[Experiment]:
    """Every experiment, running or stopped, in creation order."""
    return list(_read(data_dir).values())


def get_experiment(data_dir: Path, name: str) -> Experiment:
    """The named experiment; raises :class:`UnknownExperiment`."""
    experiments = _read(data_dir)
    if name not in experiments:
        known = ", ".join(experiments) or "none; create one with `hive ab create`"
        raise UnknownExperiment(f"no experiment {name!r} (known: {known})")
    return experiments[name]


def stop_experiment(data_dir: Path, name: str, *, now: datetime | None = None) -> Experiment:
    """Stop assigning traffic; the definition and its events stay for the report."""
    experiments = _read(data_dir)
    exp = get_experiment(data_dir, name)
    if exp.status == "stopped":
        return exp
    stopped = replace(exp, status="stopped",
                      stopped_at=(now or system_clock()).isoformat(timespec="seconds"))
    experiments[name] = stopped
    _write(data_dir, experiments)
    return stopped


def assign_variant(experiment: Experiment, key: str) -> Literal["a", "b"]:
    """``"b"`` when ``hash(name, key)`` in [0, 1) is below ``split``, else ``"a"``; deterministic."""
    digest = hashlib.blake2b(f"{experiment.name}\0{key}".encode(), digest_size=8).digest()
    return "b" if int.from_bytes(digest, "big") / 2**64 < experiment.split else "a"


def ask_in_experiment(
    client: OpenRouterClient,
    sink: EventSink,
    experiment: Experiment,
    prompt: Messages,
    options: AskOptions,
    *,
    request_id: str | None = None,
    **callbacks: Any,
) -> tuple[Literal["a", "b"], AskResult]:
    """Assign the request to a variant, record the ``ab_assignment`` *before* the call (so a failed
    request still counts against its variant), and ask the variant's model alone: a fallback would
    hide exactly the failures the experiment measures. ``callbacks`` go to :func:`hive_core.ask.ask`
    (with ``budget`` and ``breaker``: :meth:`hive_core.session.Session.ask_in_experiment` passes its own).
    """
    from dataclasses import replace as with_changes

    from hive_core.ask import ask
    from hive_core.ids import uuid7
    from hive_core.store.events import AbAssignment

    if experiment.status != "running":
        raise ConfigError(f"experiment {experiment.name!r} is stopped; start a new one with `hive ab create`")
    rid = request_id or uuid7()
    variant = assign_variant(experiment, rid)
    model = experiment.model_of(variant)
    sink.record(AbAssignment(request_id=rid, experiment=experiment.name, variant=variant, model=model,
                             app=client.core.settings.app, user=client.core.settings.user))
    task = options.task_category or experiment.task
    answer = ask(client, prompt, [model], with_changes(options, request_id=rid, task_category=task), **callbacks)
    return variant, answer
