"""Budget alerts: thresholds and the burn-rate forecast fire once per period, scope and threshold,
are recorded as budget_alert events, and reach a real local webhook (retried after a receiver
failure, kept in the outbox when it is down). Library and ``hive-jobs alerts`` under the same names."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hive_cli.hive_jobs import main as jobs_main
from hive_core.budget.admin import set_budget
from hive_core.store.datadir import DataDir
from hive_core.store.events import Usage
from ingest.log import EventLog
from jobs.budget.alerts import run_alerts
from jobs.budget.webhook import WebhookPolicy
from tests.plugins.cli import run

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
FAST = WebhookPolicy(timeout_s=2.0, attempts=3, backoff_s=0.01)


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST; the first ``fail`` ones get a 500."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.fail = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.posts.append(body)
                failing = receiver.fail > 0
                receiver.fail -= failing
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def spend(data_dir: Path, *costs: float, at: datetime = NOW, app: str | None = None) -> None:
    with EventLog(data_dir) as log:
        for i, cost in enumerate(costs):
            log.record(Usage(ts=at - timedelta(minutes=i), request_id=f"r-{at.timestamp()}-{i}", app=app,
                             model="openai/gpt-4o-mini", cost_usd=cost, cost_source="billed"))


def alerts_in_store(data_dir: Path) -> list[tuple[str, str, str, float | None]]:
    from queries import connect

    with connect(data_dir) as store:
        return store.con.execute("SELECT scope, period, kind, threshold_pct FROM budget_alerts "
                                 "ORDER BY period, kind, threshold_pct").fetchall()


def alerts_now(data_dir: Path, now: datetime = NOW, policy: WebhookPolicy = FAST) -> Any:
    with EventLog(data_dir) as log:
        return run_alerts(data_dir, now=now, sink=log, policy=policy)


def test_run_alerts(data_dir: Path, receiver: Receiver) -> None:
    set_budget(DataDir(data_dir).config_file, daily=10, webhook_url=receiver.url)
    spend(data_dir, 4.0, 4.5)  # 85% of the daily limit
    first = alerts_now(data_dir)
    assert [a.threshold_pct for a in first.fired] == [50, 80]
    assert first.fired[1].message == ("budget alert: global daily spend reached 80% of its limit: "
                                      "$8.50 of $10.00 (2026-11-20, UTC)")
    assert (first.delivered, first.failures, first.pending) == (2, [], 0)
    post = receiver.posts[1]
    assert post["text"] == first.fired[1].message
    assert post["alert"] | {"event_id": "-", "ts": "-"} == {
        "event_id": "-", "ts": "-", "scope": "global", "period": "daily", "period_start": "2026-11-20",
        "kind": "threshold", "threshold_pct": 80.0, "limit_usd": 10.0, "spent_usd": 8.5, "forecast_usd": None,
        "app": None}
    again = alerts_now(data_dir, NOW + timedelta(minutes=5))
    assert again.fired == [] and len(receiver.posts) == 2  # once per period, scope and threshold
    spend(data_dir, 2.0, at=NOW + timedelta(minutes=6))
    third = alerts_now(data_dir, NOW + timedelta(minutes=10))
    assert [a.threshold_pct for a in third.fired] == [100]
    assert third.fired[0].message.endswith("; requests that do not fit are refused")
    assert alerts_in_store(data_dir) == [("global", "daily", "threshold", p) for p in (50.0, 80.0, 100.0)]
    tomorrow = alerts_now(data_dir, NOW + timedelta(days=1))
    assert tomorrow.fired == []  # a new day: nothing spent yet


def test_run_alerts_cli(data_dir: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    set_budget(DataDir(data_dir).config_file, scope="app:search", daily=1, webhook_url=receiver.url)
    spend(data_dir, 0.6, at=now, app="search")
    spend(data_dir, 5.0, at=now)  # another app's spend does not count against app:search
    code, out, err = run(jobs_main, capsys, "--data-dir", str(data_dir), "alerts")
    assert code == 0 and err == ""
    assert out.startswith("budget alert: app:search daily spend reached 50% of its limit: $0.60 of $1.00")
    assert [p["alert"]["scope"] for p in receiver.posts] == ["app:search"]
    code, out, _ = run(jobs_main, capsys, "--data-dir", str(data_dir), "alerts")
    assert code == 0 and out == "no new budget alerts\n"


def test_webhook_retried_after_receiver_failure(data_dir: Path, receiver: Receiver) -> None:
    set_budget(DataDir(data_dir).config_file, daily=10, webhook_url=receiver.url, thresholds="50")
    spend(data_dir, 6.0)
    receiver.fail = 2
    result = alerts_now(data_dir)
    assert (len(result.fired), result.delivered, result.failures) == (1, 1, [])
    assert len(receiver.posts) == 3 and receiver.posts[0] == receiver.posts[2]  # same payload, retried


def test_webhook_retried_after_receiver_failure_cli(data_dir: Path, receiver: Receiver,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    set_budget(DataDir(data_dir).config_file, daily=10, webhook_url=receiver.url, thresholds="50")
    spend(data_dir, 6.0, at=now)
    receiver.fail = 1
    code, out, err = run(jobs_main, capsys, "--data-dir", str(data_dir), "alerts")
    assert code == 0 and err == "" and "reached 50%" in out and len(receiver.posts) == 2


def test_undelivered_alerts_wait_in_outbox(data_dir: Path, receiver: Receiver) -> None:
    set_budget(DataDir(data_dir).config_file, daily=10, webhook_url=receiver.url)
    spend(data_dir, 9.0)
    receiver.fail = 10**6  # down for the whole run
    down = alerts_now(data_dir)
    assert len(down.fired) == 2 and down.delivered == 0 and down.pending == 2
    (failure,) = down.failures
    port = receiver.server.server_address[1]
    assert failure == f"webhook http://127.0.0.1:{port}/... did not accept the alert after 3 attempt(s): HTTP 500"
    assert "secret-token" not in failure
    outbox = DataDir(data_dir).alert_outbox
    assert len(json.loads(outbox.read_text())) == 2
    assert outbox.stat().st_mode & 0o777 == 0o600  # alert text is the user's alone
    receiver.fail = 0
    receiver.posts.clear()
    back = alerts_now(data_dir, NOW + timedelta(minutes=1))
    assert back.fired == [] and back.delivered == 2 and back.pending == 0
    assert [p["alert"]["threshold_pct"] for p in receiver.posts] == [50, 80]
    assert len(alerts_in_store(data_dir)) == 2  # recorded once, delivered late


def test_undelivered_alerts_wait_in_outbox_cli(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    set_budget(DataDir(data_dir).config_file, daily=10, webhook_url=f"http://127.0.0.1:{port}/hook", thresholds="50")
    spend(data_dir, 6.0, at=datetime.now(UTC))
    code, out, err = run(jobs_main, capsys, "--data-dir", str(data_dir), "alerts")
    assert code == 1 and "reached 50%" in out
    assert err.startswith(f"error: webhook http://127.0.0.1:{port}/... did not accept the alert after 3 attempt(s): "
                          "ConnectError; 1 alert(s) kept for the next run")


def test_a_corrupt_outbox_is_kept_aside(data_dir: Path, receiver: Receiver) -> None:
    set_budget(DataDir(data_dir).config_file, daily=10, webhook_url=receiver.url, thresholds="50")
    spend(data_dir, 6.0)
    outbox = DataDir(data_dir).alert_outbox
    outbox.parent.mkdir()
    outbox.write_bytes(b"\xff\xfe half-written")
    run_ = alerts_now(data_dir)
    assert len(run_.fired) == 1 and run_.delivered == 1 and run_.pending == 0  # new alerts still go out
    (failure,) = run_.failures
    assert failure.startswith(f"the alert outbox {outbox} was unreadable: moved to {outbox}.corrupt-1")
    assert Path(f"{outbox}.corrupt-1").read_bytes() == b"\xff\xfe half-written"  # kept, not lost


def test_a_corrupt_outbox_is_kept_aside_cli(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_budget(DataDir(data_dir).config_file, daily=10, thresholds="50")
    outbox = DataDir(data_dir).alert_outbox
    outbox.parent.mkdir()
    for n in (1, 2):
        outbox.write_text("[{not json")
        code, _, err = run(jobs_main, capsys, "--data-dir", str(data_dir), "alerts")
        assert code == 1 and err.count("\n") == 1
        assert err.startswith(f"error: the alert outbox {outbox} was unreadable: moved to {outbox}.corrupt-{n},")
    assert Path(f"{outbox}.corrupt-1").exists()

def test_forecast_alert(data_dir: Path) -> None:
    set_budget(DataDir(data_dir).config_file, monthly=60)
    for days_ago in range(7):
        spend(data_dir, 4.0, at=NOW - timedelta(days=days_ago))
    result = alerts_now(data_dir)
    (forecast,) = [a for a in result.fired if a.kind == "forecast"]
    assert [a.threshold_pct for a in result.fired if a.kind == "threshold"] == []  # $28 < 50% of $60
    # $28 over 6 days and 15 hours; 10 days and 9 hours left: ~$71.6 by the end of November
    assert forecast.forecast_usd == pytest.approx(28 + 28 / (6 + 15 / 24) * (10 + 9 / 24))
    assert forecast.message == (
        "budget forecast: at the last 7 days' rate ($4.23/day) global will spend $71.85 by 2026-11-30, "
        "over its $60.00 monthly limit on the 28th")
    assert alerts_now(data_dir, NOW + timedelta(hours=1)).fired == []  # once per month


def test_every_rollup_evaluates_alerts(data_dir: Path) -> None:
    from hive_core.settings import Settings
    from jobs.pipeline import rollup

    set_budget(DataDir(data_dir).config_file, daily=10, thresholds="50")
    spend(data_dir, 6.0, at=datetime.now(UTC))
    report = rollup(Settings(data_dir=data_dir))
    assert [a.threshold_pct for a in report.steps["budget-alerts"].fired] == [50]
    assert rollup(Settings(data_dir=data_dir)).steps["budget-alerts"].fired == []
    assert len(alerts_in_store(data_dir)) == 1


def threshold_alerts(run: Any) -> list[tuple[str, float | None, str]]:
    """(period, threshold, period start) of the threshold alerts a run fired (forecasts left out:
    a new month's burn-rate forecast reads the last days of the old one, as it should)."""
    return [(a.period, a.threshold_pct, a.period_start) for a in run.fired if a.kind == "threshold"]


def test_alert_periods_turn_over_at_utc_midnight_of_a_new_year(data_dir: Path) -> None:
    """Spend in the last minute of a year fires that day's and that month's thresholds; a microsecond
    later a new day and a new month (and year) start from zero: the same percentages fire again only
    for spend of the new periods."""
    last = datetime(2028, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    set_budget(DataDir(data_dir).config_file, daily=10, monthly=20)
    spend(data_dir, 4.0, 4.5, 3.0, at=last)  # $11.50: 115% of the day, 57.5% of December
    old = alerts_now(data_dir, last)
    assert sorted(threshold_alerts(old)) == [
        ("daily", 50, "2028-12-31"), ("daily", 80, "2028-12-31"), ("daily", 100, "2028-12-31"),
        ("monthly", 50, "2028-12-01")]
    first = last + timedelta(microseconds=1)
    assert threshold_alerts(alerts_now(data_dir, first)) == []  # January and its first day start from zero
    spend(data_dir, 5.5, at=first + timedelta(seconds=1))
    new = alerts_now(data_dir, first + timedelta(seconds=2))
    assert sorted(threshold_alerts(new)) == [
        ("daily", 50, "2029-01-01")]  # 55% of the day, 27.5% of January


def test_a_kill_switch_raises_no_threshold_alerts(data_dir: Path) -> None:
    """`--daily 0` refuses everything; "$0.00 of $0.00" at 50, 80 and 100% would be noise. The
    monthly limit beside it still alerts."""
    set_budget(DataDir(data_dir).config_file, daily=0, monthly=10)
    spend(data_dir, 6.0)  # spent before the switch went on
    fired = alerts_now(data_dir).fired
    assert [(a.period, a.kind, a.threshold_pct) for a in fired] == [("monthly", "threshold", 50),
                                                                     ("monthly", "forecast", None)]
