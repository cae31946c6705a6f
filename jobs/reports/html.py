"""Rendering a report (:func:`jobs.reports.report.build_report`) as Markdown or as one self-contained HTML file.

The HTML has no script, no external font, image or stylesheet: charts are inline SVG (cost per day
by model as stacked bars, latency P50/P95/P99 per model as grouped bars), styles are one inline
``<style>`` block plus the SVG's own attributes, so it reads the same offline, in a browser and in
an email client that strips scripts. Every text that comes from data is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from hive_core.format import ms, pct, usd

__all__ = ["latency_chart", "render_html", "render_markdown", "stacked_cost_chart"]

#: colour-blind-safe palette (Okabe-Ito), "other" last in grey
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
OTHER = "#999999"
_W, _H, _PAD = 720, 260, 48


def _trend(spend: dict[str, Any]) -> str:
    change = spend["change_pct"]
    return "no spend in the previous period" if change is None else f"{change:+.1f}% vs previous period"


def _axis(max_value: float, fmt: Any) -> str:
    parts = []
    for i in range(5):
        y = _H - _PAD - i * (_H - 2 * _PAD) / 4
        parts.append(f'<line x1="{_PAD}" x2="{_W - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
                     f'<text x="{_PAD - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#555">'
                     f"{escape(fmt(max_value * i / 4))}</text>")
    return "".join(parts)


def _legend(names: list[str], colours: list[str], y: float) -> str:
    out: list[str] = []
    x = float(_PAD)
    for name, colour in zip(names, colours, strict=True):
        out.append(f'<rect x="{x:.1f}" y="{y}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{x + 14:.1f}" y="{y + 9}" font-size="10" fill="#333">{escape(name)}</text>')
        x += 20 + 6.2 * len(name)
    return "".join(out)


def stacked_cost_chart(cost_by_day: dict[str, Any]) -> str:
    """Inline SVG: one stacked bar per day, one colour per model."""
    days, series = cost_by_day["days"], cost_by_day["series"]
    colours = [OTHER if s["model"] == "other" else PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]
    totals = [sum(s["values"][i] for s in series) for i in range(len(days))]
    top = max(totals, default=0.0) or 1.0
    slot = (_W - _PAD - 10) / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        y = _H - _PAD
        for s, colour in zip(series, colours, strict=True):
            h = s["values"][i] / top * (_H - 2 * _PAD)
            if h <= 0:
                continue
            y -= h
            bars.append(f'<rect class="bar" x="{_PAD + i * slot + slot * 0.1:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" '
                        f'height="{h:.1f}" fill="{colour}"><title>{escape(day)} {escape(s["model"])}: '
                        f'{escape(usd(s["values"][i]))}</title></rect>')
        if len(days) <= 10 or i % max(len(days) // 8, 1) == 0:
            bars.append(f'<text x="{_PAD + (i + 0.5) * slot:.1f}" y="{_H - _PAD + 14}" text-anchor="middle" '
                        f'font-size="10" fill="#555">{escape(day[5:])}</text>')
    legend = _legend([s["model"] for s in series], colours, _H - 18)
    return (f'<svg id="cost-chart" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
            f'viewBox="0 0 {_W} {_H}" role="img" aria-label="Cost per day by model">'
            f"{_axis(top, usd)}{''.join(bars)}{legend}</svg>")


def latency_chart(models: list[dict[str, Any]]) -> str:
    """Inline SVG: P50/P95/P99 latency bars per model."""
    keys = (("latency_p50_ms", "P50", PALETTE[0]), ("latency_p95_ms", "P95", PALETTE[1]),
            ("latency_p99_ms", "P99", PALETTE[5]))
    top = max((m[k] or 0.0 for m in models for k, _, _ in keys), default=0.0) or 1.0
    slot = (_W - _PAD - 10) / max(len(models), 1)
    bars = []
    for i, m in enumerate(models):
        for j, (key, label, colour) in enumerate(keys):
            value = m[key] or 0.0
            h = value / top * (_H - 2 * _PAD)
            x = _PAD + i * slot + slot * (0.1 + 0.27 * j)
            bars.append(f'<rect class="bar" x="{x:.1f}" y="{_H - _PAD - h:.1f}" width="{slot * 0.25:.1f}" '
                        f'height="{h:.1f}" fill="{colour}"><title>{escape(m["model"])} {label}: '
                        f"{escape(ms(m[key]))}</title></rect>")
        short = m["model"].split("/")[-1][:18]
        bars.append(f'<text x="{_PAD + (i + 0.5) * slot:.1f}" y="{_H - _PAD + 14}" text-anchor="middle" '
                    f'font-size="9" fill="#555">{escape(short)}</text>')
    legend = _legend([k[1] for k in keys], [k[2] for k in keys], _H - 18)
    return (f'<svg id="latency-chart" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
            f'viewBox="0 0 {_W} {_H}" role="img" aria-label="Latency percentiles per model">'
            f"{_axis(top, ms)}{''.join(bars)}{legend}</svg>")


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
