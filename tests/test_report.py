"""Reports: the sections from a simulated history, md/html/json through the library and the CLI, and
the HTML rendered once in a real headless chromium (loads, no console errors, charts drawn, no
external requests)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from hive_core.experiments import create_experiment
from hive_core.period import Period, parse_period
from hive_core.settings import Settings
from jobs.reports.report import build_report, write_report
from jobs.simulate.simulate import simulate
from tests.plugins.cli import run_cli

END = date(2026, 5, 20)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("report") / "data"
    simulate(data_dir, days=14, calls_per_day=400, seed=3, end=END)
    create_experiment(data_dir, "mini-vs-haiku", model_a="openai/gpt-4o-mini", model_b="anthropic/claude-haiku-4.5")
    return data_dir


def test_report(store: Path, tmp_path: Path) -> None:
    report = build_report(Settings(data_dir=store), Period.report("week", END))
    assert report["period"] == {"kind": "week", "since": "2026-05-14", "until": "2026-05-20"}
    assert report["spend"]["total_usd"] > 0 and report["spend"]["previous_total_usd"] > 0
    assert len(report["cost_by_day"]["days"]) == 7
    chart_total = sum(sum(s["values"]) for s in report["cost_by_day"]["series"])
    assert chart_total == pytest.approx(report["spend"]["total_usd"], rel=1e-9)
    top = report["models"][0]
    assert top["latency_p50_ms"] <= top["latency_p95_ms"] <= top["latency_p99_ms"]
    assert report["errors"]["errors"] > 0 and "rate_limited" in report["errors"]["by_status"]
    assert report["budget"][0]["scope"] == "global"
    assert [e["name"] for e in report["experiments"]] == ["mini-vs-haiku"]
    for fmt in ("md", "html", "json"):
        path = write_report(report, fmt, tmp_path)
        assert path.name == f"hive-week-2026-05-20.{fmt}" and path.stat().st_size > 500
    assert json.loads((tmp_path / "hive-week-2026-05-20.json").read_text())["period"]["kind"] == "week"
    assert "## Top models" in (tmp_path / "hive-week-2026-05-20.md").read_text()


def test_report_cli(store: Path, tmp_path: Path) -> None:
    env = {"HIVE_DATA_DIR": str(store), "PATH": "/usr/bin:/bin"}
    out = run_cli("hive-jobs", ["report", "--period", str(END), "--format", "json"], env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["period"] == {"kind": "day", "since": str(END), "until": str(END)}
    written = run_cli("hive-jobs", ["report", "--period", "2026-05", "--format", "html", "--out", str(tmp_path)], env)
    assert written.returncode == 0 and (tmp_path / "hive-month-2026-05-31.html").exists()
    span = run_cli("hive-jobs", ["report", "--period", "2026-05-10..2026-05-20", "--out", str(tmp_path)], env)
    assert span.returncode == 0 and (tmp_path / "hive-2026-05-10..2026-05-20.md").exists()
    bad = run_cli("hive-jobs", ["report", "--period", "yesterday-ish"], env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown period 'yesterday-ish': use today, ")


def test_default_report_includes_today_provisional(store: Path) -> None:
    """A new user's first report shows today's calls beside today's budget spend, marked provisional;
    a complete period is not."""
    noon = datetime(END.year, END.month, END.day, 12, tzinfo=UTC)
    settings = Settings(data_dir=store, as_of=noon)
    week = build_report(settings, parse_period("week", noon))
    assert week["period"] == {"kind": "week", "since": "2026-05-14", "until": str(END)} and week["provisional"]
    assert week["title"].endswith("(provisional: the period has not ended)")
    assert week["cost_by_day"]["days"][-1] == str(END) and week["spend"]["requests"] > 0
    done = build_report(settings, parse_period("yesterday", noon))
    assert not done["provisional"] and "provisional" not in done["title"]


def test_default_report_includes_today_provisional_cli(store: Path) -> None:
    env = {"HIVE_DATA_DIR": str(store), "HIVE_AS_OF": f"{END}T12:00:00Z", "PATH": "/usr/bin:/bin"}
    out = run_cli("hive-jobs", ["report", "--format", "json"], env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["period"]["until"] == str(END) and doc["provisional"] is True


def test_html_is_self_contained(store: Path) -> None:
    from jobs.reports.html import render_html

    html = render_html(build_report(Settings(data_dir=store), Period.report("week", END)))
    assert "<script" not in html.lower() and "@import" not in html and "url(" not in html
    # the only URL is the SVG namespace identifier, which is never fetched
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    assert not re.search(r"\s(src|href)=", html)


def test_html_renders_in_headless_chromium(store: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium); "
                    "the HTML report must be rendered in a real browser")
    path = write_report(build_report(Settings(data_dir=store), Period.report("month", END)), "html", tmp_path)
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND",  # any external fetch would fail and be logged
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert 'id="cost-chart"' in dom and 'id="latency-chart"' in dom
    assert len(re.findall(r'<rect class="bar"', dom)) > 20
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "net::ERR" in line]
    assert console == [], console


def test_report_success_rates_match_models_performance(store: Path) -> None:
    """One rule for success rates: the report says what `hive models performance` says (cancels excluded)."""
    from hive_core.period import Period
    from jobs.insights.performance import performance

    settings = Settings(data_dir=store)
    report = build_report(settings, Period.report("week", END))
    measured = {m.model: m.success_rate for m in performance(settings, Period.report("week", END))}
    for row in report["models"]:
        assert row["success_rate"] == pytest.approx(measured[row["model"]])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The demo month (``make demo``'s simulation, fewer calls per day), rolled up: many models, P99s of
    tens of seconds ("43,640 ms"), sub-cent costs per request."""
    from jobs.pipeline import rollup

    settings = Settings(data_dir=tmp_path_factory.mktemp("demo") / "data",
                        as_of=datetime(END.year, END.month, END.day, 6, tzinfo=UTC) + timedelta(days=1))
    simulate(settings.data_dir, days=30, calls_per_day=1500, seed=7, end=END, now=settings.now())
    rollup(settings)
    return settings


@pytest.mark.parametrize("kind", ["day", "week", "month"])
def test_every_label_is_inside_its_chart(demo: Settings, kind: str, tmp_path: Path) -> None:
    """Measured in a real Chromium: every text of both charts inside its SVG and over no other text; ticks
    at 1-2-5 steps from "$0"; distinct model labels; every cost segment (the largest, "other", too) named."""
    from jobs.reports.html import short_labels
    from tests.chromium import measure, overflows, overlaps

    report = build_report(demo, Period.report(kind, END))
    measured = {svg["id"]: svg for svg in measure(write_report(report, "html", tmp_path), tmp_path)["svgs"]}
    assert set(measured) == {"cost-chart", "latency-chart"}
    for svg in measured.values():
        assert overflows(svg) == [] and overlaps(svg) == []
    cost = [t["text"] for t in measured["cost-chart"]["texts"]]
    latency = [t["text"] for t in measured["latency-chart"]["texts"]]
    assert cost[0] == "$0" and latency[0] == "0 ms" and "$0.0000" not in cost
    assert any(len(text) >= len("40,000 ms") for text in latency)  # long latencies, whole
    names = short_labels([s["model"] for s in report["cost_by_day"]["series"]])
    assert "other" in names and set(names) <= set(cost)  # the legend names every segment
    models = short_labels([m["model"] for m in report["models"]])
    assert len(set(models)) == len(models) and set(models) <= set(latency)


def test_chart_helpers() -> None:
    from jobs.reports.html import nice_ticks, short_labels, usd_ticks

    assert nice_ticks(43_640) == [0, 20_000, 40_000, 60_000] and nice_ticks(1.7) == [0, 0.5, 1, 1.5, 2]
    assert usd_ticks(nice_ticks(0.0037)) == ["$0", "$0.001", "$0.002", "$0.003", "$0.004"]
    assert usd_ticks(nice_ticks(151)) == ["$0", "$50", "$100", "$150", "$200"]
    assert short_labels(["openai/gpt-4o", "azure/gpt-4o", "anthropic/claude-haiku-4.5", "other"]) == [
        "openai/gpt-4o", "azure/gpt-4o", "claude-haiku-4.5", "other"]
