"""Rendering a report (:func:`jobs.reports.report.build_report`) as Markdown or as one self-contained HTML file.

The HTML has no script, no external font, image or stylesheet: charts are inline SVG (cost per day
by model as stacked bars, latency P50/P95/P99 per model as grouped bars), styles are one inline
``<style>`` block plus the SVG's own attributes, so it reads the same offline, in a browser and in
an email client that strips scripts. Every text that comes from data is escaped.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from hive_core.format import ms, pct, usd

__all__ = ["latency_chart", "nice_ticks", "render_html", "render_markdown", "short_labels", "stacked_cost_chart", "usd_ticks"]

#: colour-blind-safe palette (Okabe-Ito), "other" last in grey
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
OTHER = "#999999"
#: the SVG's width, the plot's height, the margins outside the plot
_W, _PLOT_H, _TOP, _RIGHT = 720, 180, 12, 12
_FONT = 10
#: a character's width as a share of the font size, on the wide side (DejaVu Sans, a headless browser's
#: fallback, is wider than Helvetica): every box is sized from it, so labels never leave their SVG
_CHAR = 0.66
#: the longest model name a label shows before it is shortened with an ellipsis
_MAX_LABEL = 22


def _text_width(text: str, size: float = _FONT) -> float:
    return len(text) * size * _CHAR


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Ticks from 0 at a 1-2-5 step (..., 0.01, 0.02, 0.05, 0.1, ...) whose last is >= ``top``: a reader
    reads "$0, $0.50, $1.00, $1.50", never "$0, $0.3712, $0.7424"."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    ticks = [0.0]
    while ticks[-1] < top * (1 - 1e-9):
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def short_labels(names: list[str]) -> list[str]:
    """Model ids without their provider prefix (``openai/gpt-4o`` -> ``gpt-4o``), shortened to
    :data:`_MAX_LABEL` characters - and still distinct: names that would read the same keep their
    provider (and, if still equal, a number)."""
    def shorten(text: str) -> str:
        return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "\u2026"

    labels = [shorten(n.split("/")[-1]) for n in names]
    for label in list(labels):
        if labels.count(label) > 1:
            labels = [shorten(n) if labels[j] == label else labels[j] for j, n in enumerate(names)]
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 and labels.count(label) == 1 else f"{label} ({seen[label]})")
    return out


def _text(x: float, y: float, text: str, anchor: str = "start", *, fill: str = "#555", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{_FONT}" fill="{fill}"{extra}>'
            f"{escape(text)}</text>")


class _Frame:
    """One chart's geometry: the left margin fits the longest tick label, the bottom fits the x labels
    (turned upright when a few long ones do not fit side by side, thinned to every k-th when many short
    ones do not) and the legend, wrapped onto as many rows as it needs."""

    def __init__(self, ticks: list[float], tick_text: list[str], x_labels: list[str], legend: list[str]) -> None:
        self.ticks, self.tick_text = ticks, tick_text
        self.left = 8 + max(_text_width(t) for t in self.tick_text)
        self.plot_w = _W - self.left - _RIGHT
        n = max(len(x_labels), 1)
        self.slot = self.plot_w / n
        widest = max((_text_width(x) for x in x_labels), default=0.0)
        self.rotate = widest + 6 > self.slot and len(x_labels) <= 12
        # thin horizontal labels to every k-th so neighbours never touch
        self.every = 1 if self.rotate else max(1, math.ceil((widest + 8) / self.slot))
        label_h = widest + 10 if self.rotate else _FONT + 8
        self.base = _TOP + _PLOT_H  # the plot's bottom edge
        self.rows = self._legend_rows(legend)
        self.legend_y = self.base + label_h + 8
        self.height = self.legend_y + 16 * len(self.rows) + 4

    @staticmethod
    def _legend_rows(names: list[str]) -> list[list[tuple[int, float]]]:
        rows: list[list[tuple[int, float]]] = [[]]
        x = 8.0
        for i, name in enumerate(names):
            width = 14 + _text_width(name) + 12
            if rows[-1] and x + width > _W - _RIGHT:
                rows.append([])
                x = 8.0
            rows[-1].append((i, x))
            x += width
        return rows

    def y(self, value: float) -> float:
        return self.base - value / self.ticks[-1] * _PLOT_H

    def axis(self) -> str:
        parts = []
        for tick, text in zip(self.ticks, self.tick_text, strict=True):
            y = self.y(tick)
            parts.append(f'<line x1="{self.left:.1f}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
                         + _text(self.left - 4, y + 3.5, text, "end"))
        return "".join(parts)

    def x_labels(self, labels: list[str]) -> str:
        parts = []
        for i, label in enumerate(labels):
            if i % self.every:
                continue
            x = self.left + (i + 0.5) * self.slot
            if self.rotate:  # upright text reads down from the axis; its glyphs centred on the slot
                x, y = x + _FONT * 0.35, self.base + 6
                parts.append(_text(x, y, label, "end", extra=f' transform="rotate(-90 {x:.1f} {y:.1f})"'))
            else:
                parts.append(_text(x, self.base + 14, label, "middle"))
        return "".join(parts)

    def legend(self, names: list[str], colours: list[str]) -> str:
        out: list[str] = []
        for r, row in enumerate(self.rows):
            y = self.legend_y + 16 * r
            for i, x in row:
                out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="10" height="10" fill="{colours[i]}"/>'
                           + _text(x + 14, y + 9, names[i], fill="#333"))
        return "".join(out)

    def svg(self, ident: str, label: str, body: str) -> str:
        return (f'<svg id="{ident}" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{self.height:.0f}" '
                f'viewBox="0 0 {_W} {self.height:.0f}" role="img" aria-label="{escape(label)}" '
                f'font-family="Helvetica, Arial, sans-serif">{body}</svg>')


def usd_ticks(ticks: list[float]) -> list[str]:
    """Money ticks with the decimals their step needs, the same for all: ``$0 $50 $100``,
    ``$0 $0.50 $1.00``, ``$0 $0.002 $0.004`` (the base is ``$0``, never ``$0.0000``)."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    places = 0 if step >= 1 else max(2, -math.floor(math.log10(step) + 1e-9))
    return ["$0" if t == 0 else f"${t:,.{places}f}" for t in ticks]


def stacked_cost_chart(cost_by_day: dict[str, Any]) -> str:
    """Inline SVG: one stacked bar per day, one colour per model, the legend naming every segment."""
    days, series = cost_by_day["days"], cost_by_day["series"]
    colours = [OTHER if s["model"] == "other" else PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]
    names = short_labels([s["model"] for s in series])
    totals = [sum(s["values"][i] for s in series) for i in range(len(days))]
    ticks = nice_ticks(max(totals, default=0.0))
    frame = _Frame(ticks, usd_ticks(ticks), [d[5:] for d in days], names)
    bars = []
    for i, day in enumerate(days):
        top = frame.base
        for s, colour in zip(series, colours, strict=True):
            h = s["values"][i] / ticks[-1] * _PLOT_H
            if h <= 0:
                continue
            top -= h
            bars.append(f'<rect class="bar" x="{frame.left + i * frame.slot + frame.slot * 0.1:.1f}" y="{top:.1f}" '
                        f'width="{frame.slot * 0.8:.1f}" height="{h:.1f}" fill="{colour}"><title>{escape(day)} '
                        f'{escape(s["model"])}: {escape(usd(s["values"][i]))}</title></rect>')
    body = frame.axis() + "".join(bars) + frame.x_labels([d[5:] for d in days]) + frame.legend(names, colours)
    return frame.svg("cost-chart", "Cost per day by model", body)


def latency_chart(models: list[dict[str, Any]]) -> str:
    """Inline SVG: P50/P95/P99 latency bars per model."""
    keys = (("latency_p50_ms", "P50", PALETTE[0]), ("latency_p95_ms", "P95", PALETTE[1]),
            ("latency_p99_ms", "P99", PALETTE[5]))
    ticks = nice_ticks(max((m[k] or 0.0 for m in models for k, _, _ in keys), default=0.0))
    labels = short_labels([m["model"] for m in models])
    frame = _Frame(ticks, [ms(t) for t in ticks], labels, [k[1] for k in keys])
    bars = []
    for i, m in enumerate(models):
        for j, (key, label, colour) in enumerate(keys):
            h = (m[key] or 0.0) / ticks[-1] * _PLOT_H
            x = frame.left + i * frame.slot + frame.slot * (0.1 + 0.27 * j)
            bars.append(f'<rect class="bar" x="{x:.1f}" y="{frame.base - h:.1f}" width="{frame.slot * 0.25:.1f}" '
                        f'height="{h:.1f}" fill="{colour}"><title>{escape(m["model"])} {label}: '
                        f"{escape(ms(m[key]))}</title></rect>")
    body = (frame.axis() + "".join(bars) + frame.x_labels(labels)
            + frame.legend([k[1] for k in keys], [k[2] for k in keys]))
    return frame.svg("latency-chart", "Latency percentiles per model", body)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sections(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of every tabular section: shared by Markdown and HTML."""
    models = [[m["model"], f"{m['requests']:,}", usd(m["cost_usd"]), pct(m["success_rate"]),
               ms(m["latency_p50_ms"]), ms(m["latency_p95_ms"]), ms(m["latency_p99_ms"])]
              for m in report["models"]]
    errors = [[status, f"{n:,}"] for status, n in report["errors"]["by_status"].items()]
    budget = [[b["scope"], usd(b["spent_today_usd"]), usd(b["spent_month_usd"]), usd(b["monthly_limit_usd"]),
               usd(b["remaining_month_usd"]), usd(b["projected_month_usd"])] for b in report["budget"]]
    alerts = [[a["ts"][:16], a["scope"], a["kind"], a["message"]] for a in report["alerts"]]
    suggestions = [[s["kind"], s["action"], usd(s["monthly_saving_usd"])] for s in report["suggestions"]]
    experiments = [[e["name"], e["status"], f"{e['model_a']} / {e['model_b']}", f"{e['requests'][0]} / {e['requests'][1]}",
                    e["recommendation"] or "no significant difference yet"] for e in report["experiments"]]
    return [
        ("Top models", ["model", "requests", "cost", "success", "P50", "P95", "P99"], models),
        ("Errors", ["status", "attempts"], errors),
        ("Budget status", ["scope", "today", "this month", "monthly limit", "remaining", "projected"], budget),
        ("Alerts", ["when", "scope", "kind", "message"], alerts),
        ("Suggestions", ["kind", "what to change", "saving / month"], suggestions),
        ("A/B experiments", ["name", "status", "models (a / b)", "requests (a / b)", "verdict"], experiments),
    ]


def _trend(spend: dict[str, Any]) -> str:
    change = spend["change_pct"]
    return "no spend in the previous period" if change is None else f"{change:+.1f}% vs previous period"


def _summary(report: dict[str, Any]) -> str:
    spend, errors = report["spend"], report["errors"]
    rate = errors["errors"] / errors["attempts"] if errors["attempts"] else None
    return (f"Spend {usd(spend['total_usd'])} over {spend['requests']:,} billed requests "
            f"({_trend(spend)}: {usd(spend['previous_total_usd'])}). Error rate {pct(rate)} of "
            f"{errors['attempts']:,} attempts.")


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (tables; no charts)."""
    out = [f"# {report['title']}", "", _summary(report), ""]
    for title, headers, rows in _sections(report):
        out += [f"## {title}", ""]
        if not rows:
            out += ["none", ""]
            continue
        out.append("| " + " | ".join(headers) + " |")
        out.append("|" + "---|" * len(headers))
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        out.append("")
    out.append(f"_generated {report['generated_at']}_")
    return "\n".join(out) + "\n"


_STYLE = """body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;max-width:760px;margin:16px auto;padding:0 12px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:12px}th,td{border:1px solid #ddd;padding:4px 6px;text-align:left}
th{background:#f5f5f5}.muted{color:#777;font-size:11px}"""


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML document with inline SVG charts."""
    parts = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(report["title"])}</title>'
             f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head><body>',
             f"<h1>{escape(report['title'])}</h1><p>{escape(_summary(report))}</p>",
             "<h2>Cost per day by model</h2>", stacked_cost_chart(report["cost_by_day"]),
             "<h2>Latency percentiles per model</h2>", latency_chart(report["models"])]
    for title, headers, rows in _sections(report):
        parts.append(f"<h2>{escape(title)}</h2>")
        parts.append(_table(headers, rows) if rows else '<p class="muted">none</p>')
    parts.append(f'<p class="muted">generated {escape(report["generated_at"])}</p></body></html>\n')
    return "".join(parts)
