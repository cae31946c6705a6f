"""Prometheus' text exposition format (version 0.0.4), written out by hand: it is small.

A :class:`Snapshot` holds every series as already-escaped label text (``route="/v1/models",status="200"``)
so that merging the snapshots of several workers is a sum over dictionary keys, and rendering is
string joins. :func:`render` writes ``# HELP`` and ``# TYPE`` for every family of :data:`FAMILIES`
(samples or not), cumulative ``_bucket`` lines ending at ``le="+Inf"`` (equal to ``_count``),
``_sum`` and ``_count``. Escaping follows the format's rules: ``\\``, ``"`` and newline in label
values; ``\\`` and newline in help text. No ``prometheus_client`` dependency: it would be a second
registry to keep in step with the worker files, for a format this size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CONTENT_TYPE", "FAMILIES", "Family", "Histogram", "Snapshot", "escape_label", "label_text", "render"]

#: the ``Content-Type`` of ``GET /metrics``
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: its name, type, help text and, for histograms, the bucket bounds."""

    name: str
    kind: Kind
    help: str
    buckets: tuple[float, ...] = ()


#: seconds; LLM calls range from a cached answer (tens of ms) to a long reasoning stream (minutes)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
#: seconds to the first token: most providers answer in 0.2-3 s, reasoning models later
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)

REQUESTS = Family("hive_gateway_requests_total", "counter",
                  "HTTP requests finished, by route, status and error class (none on success).")
TOKENS = Family("hive_gateway_tokens_total", "counter", "Tokens billed, by model and kind (prompt or completion).")
COST = Family("hive_gateway_cost_usd_total", "counter", "Cost reported by OpenRouter, USD, by model.")
CHUNKS = Family("hive_gateway_stream_chunks_total", "counter", "SSE chunks relayed to clients.")
LATENCY = Family("hive_gateway_request_duration_seconds", "histogram",
                 "Time from request to last byte, by route and whether it streamed.", LATENCY_BUCKETS)
TTFT = Family("hive_gateway_time_to_first_token_seconds", "histogram",
              "Time from request to the first token relayed, streams only.", TTFT_BUCKETS)
IN_FLIGHT = Family("hive_gateway_in_flight_requests", "gauge",
                   "Chat requests in flight, by whether they stream (summed over the workers).")
BUDGET = Family("hive_gateway_budget_remaining_usd", "gauge",
                "Budget left (limit - spent - reserved in flight), USD, by scope and window.")

FAMILIES: tuple[Family, ...] = (REQUESTS, TOKENS, COST, CHUNKS, LATENCY, TTFT, IN_FLIGHT, BUDGET)


def escape_label(value: str) -> str:
    """A label value as the format quotes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def label_text(**labels: str) -> str:
    """``a="1",b="2"`` (values escaped), the key a series is stored and merged under."""
    return ",".join(f'{name}="{escape_label(value)}"' for name, value in labels.items())


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@dataclass(slots=True)
class Histogram:
    """One histogram series: per-bucket counts (not cumulative; the last one is ``+Inf``), sum, count."""

    counts: list[int]
    sum: float = 0.0
    count: int = 0

    def observe(self, value: float, bounds: tuple[float, ...]) -> None:
        index = 0
        for bound in bounds:  # at most 15 bounds: a scan beats bisect's call overhead here
            if value <= bound:
                break
            index += 1
        self.counts[index] += 1
        self.sum += value
        self.count += 1

    def add(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.sum += other.sum
        self.count += other.count


@dataclass(slots=True)
class Snapshot:
    """Every series of one worker (or of several, merged), keyed by family name then label text."""

    values: dict[str, dict[str, float]] = field(default_factory=dict)
    histograms: dict[str, dict[str, Histogram]] = field(default_factory=dict)

    def add(self, other: Snapshot, *, gauges: bool = True) -> None:
        """Add ``other`` in: counters and gauges sum; histograms sum bucket by bucket. ``gauges=False``
        leaves gauges out (a dead worker has nothing in flight)."""
        kinds = {f.name: f.kind for f in FAMILIES}
        for name, series in other.values.items():
            if not gauges and kinds.get(name) == "gauge":
                continue
            mine = self.values.setdefault(name, {})
            for labels, value in series.items():
                mine[labels] = mine.get(labels, 0.0) + value
        for name, hists in other.histograms.items():
            ours = self.histograms.setdefault(name, {})
            for labels, hist in hists.items():
                if labels in ours:
                    ours[labels].add(hist)
                else:
                    ours[labels] = Histogram(list(hist.counts), hist.sum, hist.count)

    def to_json(self) -> dict[str, Any]:
        return {"values": self.values,
                "histograms": {name: {labels: [h.counts, h.sum, h.count] for labels, h in hists.items()}
                               for name, hists in self.histograms.items()}}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Snapshot:
        """The inverse of :meth:`to_json`; histograms whose bucket count differs from their
        family's (a file written by another version) are left out rather than mis-added."""
        sizes = {f.name: len(f.buckets) + 1 for f in FAMILIES if f.kind == "histogram"}
        values = {str(name): {str(k): float(v) for k, v in series.items()} for name, series in doc["values"].items()}
        histograms: dict[str, dict[str, Histogram]] = {}
        for name, hists in doc["histograms"].items():
            for labels, (counts, total, count) in hists.items():
                if len(counts) == sizes.get(name):
                    histograms.setdefault(name, {})[labels] = Histogram([int(c) for c in counts], float(total),
                                                                        int(count))
        return cls(values, histograms)


def _series(name: str, labels: str, value: float) -> str:
    return f"{name}{{{labels}}} {_number(value)}" if labels else f"{name} {_number(value)}"


def _histogram_lines(family: Family, labels: str, hist: Histogram) -> Iterable[str]:
    prefix = f"{labels}," if labels else ""
    running = 0
    for bound, count in zip((*family.buckets, math.inf), hist.counts, strict=True):
        running += count
        le = "+Inf" if math.isinf(bound) else repr(bound)
        yield f'{family.name}_bucket{{{prefix}le="{le}"}} {running}'
    yield _series(f"{family.name}_sum", labels, hist.sum)
    yield _series(f"{family.name}_count", labels, hist.count)


def render(snapshot: Snapshot) -> str:
    """The exposition text of ``snapshot``: every family of :data:`FAMILIES`, series sorted."""
    lines: list[str] = []
    for family in FAMILIES:
        lines.append(f"# HELP {family.name} {_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        if family.kind == "histogram":
            for labels, hist in sorted(snapshot.histograms.get(family.name, {}).items()):
                lines.extend(_histogram_lines(family, labels, hist))
        else:
            for labels, value in sorted(snapshot.values.get(family.name, {}).items()):
                lines.append(_series(family.name, labels, value))
    return "\n".join(lines) + "\n"
