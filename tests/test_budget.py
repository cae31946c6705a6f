"""Budgets: limits in config.json, the cost bound of a request, reserve/settle/release, and
``hive budget set|show|unset`` (library and CLI under the same test names)."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import hive_core.budget as budget_pkg
from hive_cli.hive import main as hive_main
from hive_core.budget import Budget, BudgetConfig, Limit, forecast, max_cost
from hive_core.budget.admin import scope_of, set_budget, unset_budget
from hive_core.budget.config import load_budget_config
from hive_core.catalog.catalog import Catalog
from hive_core.errors import BudgetExceeded, ConfigError
from hive_core.period import Period
from hive_core.store.datadir import DataDir
from hive_core.store.events import BudgetOverride, Usage
from ingest.log import EventLog
from jobs.budget.status import budget_status
from tests.plugins.cli import run
from tests.plugins.emulator import MODEL, function_tool
from tests.plugins.store import ListSink

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def test_public_surface() -> None:
    assert sorted(budget_pkg.__all__) == sorted(name for name in budget_pkg.__all__ if hasattr(budget_pkg, name))
    assert {"Budget", "Reservation", "Ledger", "BudgetConfig", "max_cost", "forecast"} <= set(budget_pkg.__all__)


# -- forecast -------------------------------------------------------------------------------

def test_forecast_at_the_last_seven_days_rate() -> None:
    daily = {NOW.date() - timedelta(days=d): 10.0 for d in range(1, 8)}
    month = Period.monthly(NOW)
    outlook = forecast(month, 200.0, daily, NOW, limit_usd=300.0)
    # 60 USD over the 6 days + 15 hours of the window, then 10 days and 9 hours left in November
    assert outlook.rate_per_day == pytest.approx(60 / (6 + 15 / 24))
    assert outlook.projected_usd == pytest.approx(200 + outlook.rate_per_day * (10 + 9 / 24))
    assert outlook.over_on is None
    tight = forecast(month, 250.0, daily, NOW, limit_usd=260.0)
    assert tight.over_on == date(2026, 11, 21)


# -- limits in config.json ------------------------------------------------------------------------

def test_set_budget(data_dir: Path) -> None:
    config_path = DataDir(data_dir).config_file
    config_path.write_text(json.dumps({"experiments": {"keep": "me"}}))
    set_budget(config_path, daily="10", monthly=200)
    config = set_budget(config_path, scope=scope_of(app="search"), daily="$2.50", reset_day="15").config
    assert config.limits["global"] == Limit("global", 10.0, 200.0)
    assert config.limits["app:search"] == Limit("app:search", 2.5, None, 15)
    document = json.loads(config_path.read_text())
    assert document["experiments"] == {"keep": "me"}  # other sections are left alone
    assert document["budget"]["limits"]["app:search"] == {"daily_usd": 2.5, "reset_day": 15}
    set_budget(config_path, webhook_url="http://127.0.0.1:9/hook", thresholds="25,75")
    config = unset_budget(config_path, scope="app:search").config
    assert set(config.limits) == {"global"} and config.thresholds_pct == (25.0, 75.0)


def test_set_budget_cli(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "set", "--daily", "10",
                       "--monthly", "200")
    assert code == 0 and "global: daily $10.00, monthly $200.00" in out
    code, out, _ = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "set", "--monthly", "50",
                       "--model", MODEL, "--reset-day", "15")
    assert code == 0 and f"model:{MODEL}: daily -, monthly $50.00 (month starts on day 15" in out
    code, out, _ = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "unset", "--model", MODEL)
    assert code == 0 and json.loads((DataDir(data_dir).config_file).read_text())["budget"]["limits"].keys() == {"global"}


@pytest.mark.parametrize(("args", "message"), [
    (["--daily", "-3"], "a limit must be a positive amount in USD"),
    (["--daily", "ten"], "invalid daily limit 'ten'"),
    (["--monthly", "nan"], "a limit must be a positive amount"),
    (["--daily", "1", "--app", "a", "--model", "m"], "give one of --app, --model or --key"),
    (["--reset-day", "3"], "has no limit"),
    ([], "nothing to set"),
    (["--webhook", "ftp://x"], "invalid webhook URL"),
    (["--thresholds", "50,x"], "invalid thresholds"),
])
def test_bad_budget_values_cli(data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, out, err = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "set", *args)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_reset_day_out_of_range_is_a_usage_error(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "set", "--daily", "1",
                         "--reset-day", "31")
    assert code == 2 and out == "" and "31 is not in the range 1<=x<=28" in err


def test_bad_budget_values(data_dir: Path) -> None:
    (DataDir(data_dir).config_file).write_text('{"budget": {"limits": {"team:x": {"daily_usd": 1}}}}')
    with pytest.raises(ConfigError, match="invalid budget scope 'team:x'"):
        set_budget(DataDir(data_dir).config_file, daily=1)
    (DataDir(data_dir).config_file).write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        set_budget(DataDir(data_dir).config_file, daily=1)



def test_config_json_is_private(data_dir: Path) -> None:
    """config.json holds the webhook URL (Slack's carry their token): created 0600; a file found
    readable by others is tightened when written, and the caller is told."""
    import stat

    config_path = DataDir(data_dir).config_file
    assert set_budget(config_path, webhook_url="https://hooks.example.com/T0/B0/secret").tightened_from is None
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config_path.chmod(0o644)
    change = set_budget(config_path, daily=5)
    assert change.tightened_from == 0o644 and stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config_path.chmod(0o640)
    assert unset_budget(config_path).tightened_from == 0o640
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    assert change.config.webhook_url == json.loads(config_path.read_text())["budget"]["webhook_url"]


def test_config_json_is_private_cli(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import stat

    config_path = DataDir(data_dir).config_file
    code, _, err = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "set", "--webhook",
                       "https://hooks.example.com/T0/B0/secret")
    assert (code, err) == (0, "") and stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config_path.chmod(0o644)
    code, _, err = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "set", "--daily", "5")
    assert code == 0 and err == (f"note: {config_path} was readable by others (mode 0644); it holds the webhook "
                                 "URL, so it is now 0600\n")
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600


CORRUPT_CONFIGS = {
    "binary": (b"\xff\xfe\x00garbage", "is not valid JSON (not UTF-8 text): fix or remove it"),
    "truncated": (b'{"budget": {"limits": {"global": {"daily', "is not valid JSON (line 1): fix or remove it"),
    "invalid": (b'{"budget": {"limits": {"global": {"daily_usd": -1}}}}', "a limit must be a positive amount"),
}


@pytest.mark.parametrize("kind", CORRUPT_CONFIGS)
def test_commands_on_a_corrupt_config_json_say_so_in_one_line(
        kind: str, emulator: Any, data_dir: Path, catalog_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every budget command on a broken config.json: one line naming the file, exit 1, the file
    untouched; ``hive ask`` refuses rather than send a request no budget checked."""
    import shutil

    from hive_cli.hive_jobs import main as jobs_main
    from queries import connect

    (data_dir / "catalog").mkdir()
    shutil.copy(catalog_path, data_dir / "catalog" / "models.json")
    monkeypatch.setenv("OPENROUTER_API_KEY", emulator.api_key)
    monkeypatch.setenv("OPENROUTER_BASE_URL", emulator.base_url)
    content, reason = CORRUPT_CONFIGS[kind]
    config_path = DataDir(data_dir).config_file
    config_path.write_bytes(content)
    runs = [(hive_main, ["budget", "show"]), (hive_main, ["budget", "set", "--daily", "5"]),
            (hive_main, ["budget", "unset"]), (jobs_main, ["rebuild-ledger"]), (jobs_main, ["alerts"]),
            (hive_main, ["ask", "Say hi", "--model", MODEL, "--max-tokens", "20", "--no-stream"])]
    for tool, args in runs:
        code, out, err = run(tool, capsys, "--data-dir", str(data_dir), *args)
        assert (code, out) == (1, ""), (args, out, err)
        assert err.startswith("error: ") and str(config_path) in err and reason in err, (args, err)
        assert err.count("\n") == 1, (args, err)
    assert config_path.read_bytes() == content  # nothing lost
    with connect(data_dir) as store:
        assert store.con.execute("SELECT COUNT(*) FROM api_calls").fetchone() == (0,)  # nothing was sent


# -- the most a request can cost ------------------------------------------------------------------

def test_max_cost(catalog: Catalog) -> None:
    pricing = catalog.get(MODEL).pricing
    bound = max_cost(catalog, MODEL, "x" * 41, max_tokens=100, default_max_tokens=4096)
    assert bound.prompt_tokens == 11 + 4 and bound.completion_tokens == 100
    assert bound.max_usd == pytest.approx(float(15 * pricing.prompt + 100 * pricing.completion + pricing.request))
    assert bound.prompt_usd == pytest.approx(float(15 * pricing.prompt + pricing.request))
    uncapped = max_cost(catalog, MODEL, [{"role": "system", "content": "be brief"},
                                         {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                        max_tokens=None, default_max_tokens=4096)
    assert uncapped.prompt_tokens == (2 + 4) + (1 + 4) and uncapped.completion_tokens == 4096


def test_max_cost_refuses_unpriced_models(catalog: Catalog) -> None:
    with pytest.raises(BudgetExceeded, match="cannot reserve budget for openrouter/auto: its price is variable"):
        max_cost(catalog, "openrouter/auto", "hi", max_tokens=10, default_max_tokens=10)
    with pytest.raises(BudgetExceeded, match="not in the model catalog; run `hive models sync`"):
        max_cost(catalog, "nobody/nothing", "hi", max_tokens=10, default_max_tokens=10)
    with pytest.raises(BudgetExceeded, match="no model catalog"):
        max_cost(None, MODEL, "hi", max_tokens=10, default_max_tokens=10)


# -- reserve, settle, release ---------------------------------------------------------------------

@pytest.fixture
def make_budget(data_dir: Path, catalog: Catalog) -> Any:
    opened: list[Budget] = []

    def make(limits: dict[str, Limit] | None = None, **kwargs: Any) -> Budget:
        from hive_core.budget import save_budget_config

        if limits is not None:
            save_budget_config(DataDir(data_dir).config_file, BudgetConfig(limits=limits))
        kwargs.setdefault("clock", lambda: NOW)
        b = Budget(data_dir, prices=catalog, **kwargs)
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()


def test_reserve_settle_release(make_budget: Any) -> None:
    budget = make_budget({"global": Limit("global", daily_usd=1.0)})
    with budget.reserve(MODEL, "hello", max_tokens=100) as r:
        assert budget.ledger.reserved("global") == pytest.approx(r.amount_usd) and r.amount_usd > 0
        r.settle(0.0001)
        r.settle(5.0)  # idempotent: the first settlement stands
    assert budget.ledger.reserved("global") == 0
    assert budget.ledger.spend("global", Period.monthly(NOW)) == pytest.approx(0.0001)
    with pytest.raises(RuntimeError), budget.reserve(MODEL, "hello", max_tokens=100):
        raise RuntimeError("the request failed")
    assert budget.ledger.states() == {"settled": 1, "released": 1}
    cancelled = budget.reserve(MODEL, "hello", max_tokens=100)
    cancelled.settle(None)  # billed cost unknown: the prompt's cost stands in
    assert budget.ledger.spend("global", Period.monthly(NOW)) == pytest.approx(0.0001 + cancelled.prompt_usd)


def test_reserve_counts_the_tools_offered(make_budget: Any) -> None:
    """Tool definitions are billed as prompt tokens, so an agent turn's reservation holds them, on
    the request path too (the chain passes the request's tools)."""
    from hive_core.ask import AskOptions, ChainRun

    budget = make_budget({"global": Limit("global", daily_usd=1.0)})
    tool = function_tool("lookup", {"type": "object",
                                    "properties": {f"field_{i}": {"type": "string"} for i in range(40)}})
    plain = budget.reserve(MODEL, "hello", max_tokens=10)
    agent = budget.reserve(MODEL, "hello", max_tokens=10, tools=[tool])
    assert agent.prompt_usd > plain.prompt_usd * 5
    step = next(iter(ChainRun("hello", [MODEL], AskOptions(max_tokens=10, params={"tools": [tool]}), budget=budget)))
    assert step.reservation is not None and step.reservation.prompt_usd == pytest.approx(agent.prompt_usd)


def test_refusal_is_one_clear_line(make_budget: Any) -> None:
    budget = make_budget({"app:search": Limit("app:search", daily_usd=0.001)}, app="search")
    held = budget.reserve(MODEL, "x" * 400, max_tokens=1000)
    with pytest.raises(BudgetExceeded) as refused:
        budget.reserve(MODEL, "x" * 400, max_tokens=1000)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("daily budget of app:search exceeded: limit $0.001, spent $0.00, reserved $0.000616 in flight, "
                              "this request may cost up to $0.000616; wait")
    assert "`hive budget set --daily N --app search`" in message and "--over-budget" in message
    assert "2026-11-21 00:00 UTC" in message
    held.release()
    budget.reserve(MODEL, "x" * 400, max_tokens=1000).release()  # fits again once released
    budget.reserve(MODEL, "x" * 400, max_tokens=1000, app="other").release()  # another app's scope


def test_over_budget_is_recorded(make_budget: Any) -> None:
    sink = ListSink()
    budget = make_budget({"global": Limit("global", daily_usd=0.0001, monthly_usd=0.0001)}, sink=sink)
    with budget.reserve(MODEL, "hello", max_tokens=1000, over_budget=True) as r:
        r.settle(0.0003)
    overrides = sink.of(BudgetOverride)
    assert [(o.scope, o.period) for o in overrides] == [("global", "daily"), ("global", "monthly")]
    assert overrides[0].request_id == r.request_id and overrides[0].reserved_usd == pytest.approx(r.amount_usd)
    with pytest.raises(BudgetExceeded, match=r"spent \$0.0003"):
        budget.reserve(MODEL, "hello", max_tokens=10)


def test_unpriced_model_refused_only_under_a_limit(make_budget: Any) -> None:
    sink = ListSink()
    budget = make_budget({f"model:{MODEL}": Limit(f"model:{MODEL}", daily_usd=5)}, sink=sink)
    free_rein = budget.reserve("openrouter/auto", "hi")  # no limit applies to it: reserved at 0
    assert free_rein.amount_usd == 0
    free_rein.settle(0.002, model=MODEL)  # a router bills the model it picked
    assert budget.ledger.spend(f"model:{MODEL}", Period.monthly(NOW)) == pytest.approx(0.002)
    limited = make_budget({"global": Limit("global", daily_usd=5)}, sink=sink)
    with pytest.raises(BudgetExceeded, match="its price is variable"):
        limited.reserve("openrouter/auto", "hi")
    limited.reserve("openrouter/auto", "hi", over_budget=True).release()
    assert [o.reserved_usd for o in sink.of(BudgetOverride)] == [0.0]


def test_settling_sink_settles_from_usage_events(make_budget: Any) -> None:
    inner = ListSink()
    budget = make_budget({"global": Limit("global", daily_usd=1.0)})
    sink = budget.settling_sink(inner)
    r = budget.reserve(MODEL, "hi", max_tokens=50, request_id="req-7")
    usage = Usage(ts=NOW - timedelta(days=1), request_id="req-7", model="openai/gpt-4o", cost_usd=0.00042,
                  cost_source="billed")
    sink.record(usage)
    assert r.state == "settled" and inner.events
    # counted on the usage event's UTC day (the ledger and the events agree day by day)
    assert budget.ledger.spend("model:openai/gpt-4o", Period.daily(NOW - timedelta(days=1))) == pytest.approx(0.00042)
    assert budget.ledger.spend("global", Period.daily(NOW)) == 0


def test_config_changes_reach_a_running_budget(make_budget: Any, data_dir: Path) -> None:
    budget = make_budget({"global": Limit("global", daily_usd=100)})
    budget.reserve(MODEL, "hi", max_tokens=10).release()
    set_budget(DataDir(data_dir).config_file, daily="0.0000001")
    with pytest.raises(BudgetExceeded):
        budget.reserve(MODEL, "hi", max_tokens=10)



def test_a_limit_governs_requests_that_start_after_it(make_budget: Any, data_dir: Path) -> None:
    """Without a limit nothing is written until the request settles (one transaction, not two); its
    spend is still recorded on every scope, so a limit set while it was in flight counts it once
    it settles and refuses the next request that does not fit."""
    budget = make_budget()
    in_flight = budget.reserve(MODEL, "hello", max_tokens=100)
    failed = budget.reserve(MODEL, "hello", max_tokens=100)
    assert budget.ledger.states() == {}  # nothing held: there was nothing to check
    set_budget(DataDir(data_dir).config_file, daily="0.0005")
    admitted = budget.reserve(MODEL, "hello", max_tokens=100)  # the one in flight is not seen yet
    assert budget.ledger.reserved("global") == pytest.approx(admitted.amount_usd)
    in_flight.settle(0.001)
    failed.release()
    assert budget.ledger.spend("global", Period.daily(NOW)) == pytest.approx(0.001)
    assert budget.ledger.spend(f"model:{MODEL}", Period.daily(NOW)) == pytest.approx(0.001)
    with pytest.raises(BudgetExceeded, match=r"spent \$0.001, reserved \$0.000061 in flight"):
        budget.reserve(MODEL, "hello", max_tokens=100)
    admitted.release()
    assert budget.ledger.states() == {"settled": 1, "released": 1}


def test_unlimited_requests_settle_with_over_budget(make_budget: Any) -> None:
    """``over_budget`` with no limit to pass is an ordinary unlimited request (one row, settled once)."""
    budget = make_budget()
    with budget.reserve(MODEL, "hello", max_tokens=100, over_budget=True) as r:
        r.settle(0.0002)
    r.settle(0.5)  # idempotent
    assert budget.ledger.states() == {"settled": 1}
    assert budget.ledger.spend("global", Period.monthly(NOW)) == pytest.approx(0.0002)


# -- the kill switch: a limit of 0 refuses every request, and says how to lift it -------------------

FREE_MODEL = "cohere/north-mini-code:free"
KILLED = ("the daily budget of global is 0, so every request is refused (a kill switch, --over-budget included); "
          "lift it with `hive budget set --daily N` or `hive budget unset`")


def test_kill_switch(make_budget: Any, data_dir: Path) -> None:
    """``--daily 0`` refuses priced, free and unpriced models alike, ``over_budget`` too, before the
    ledger is touched; raising the limit lifts it."""
    sink = ListSink()
    budget = make_budget(sink=sink)
    config = set_budget(DataDir(data_dir).config_file, daily="0").config
    assert config.limits["global"] == Limit("global", 0.0, None) and config.limits["global"].off() == ["daily"]
    for model, over_budget in [(MODEL, False), (MODEL, True), (FREE_MODEL, False), ("openrouter/auto", True)]:
        with pytest.raises(BudgetExceeded) as refused:
            budget.reserve(model, "hi", max_tokens=10, over_budget=over_budget)
        assert str(refused.value) == KILLED
    assert sink.events == [] and budget.ledger.states() == {}
    set_budget(DataDir(data_dir).config_file, daily="5")
    budget.reserve(MODEL, "hi", max_tokens=10).release()


def test_kill_switch_cli(emulator: Any, data_dir: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    from queries import connect

    monkeypatch.setenv("OPENROUTER_API_KEY", emulator.api_key)
    monkeypatch.setenv("OPENROUTER_BASE_URL", emulator.base_url)
    home = ["--data-dir", str(data_dir)]
    code, out, _ = run(hive_main, capsys, *home, "budget", "set", "--daily", "0")
    assert code == 0 and out.startswith("global: daily $0.00, monthly -")
    assert "global: the daily limit is 0: every request is refused until it is raised or unset" in out
    ask = [*home, "ask", "Say hi", "--model", MODEL, "--max-tokens", "5", "--no-stream"]
    for extra in ([], ["--over-budget"]):
        code, out, err = run(hive_main, capsys, *ask, *extra)
        fetched = [line for line in err.splitlines() if line.startswith("fetched the model catalog")]
        assert (code, out, err.splitlines()[len(fetched):]) == (1, "", [f"error: {KILLED}"])
    code, out, _ = run(hive_main, capsys, *home, "budget", "show")
    assert code == 0 and "today: spent $0.00 of $0.00" in out
    with connect(data_dir) as store:
        assert store.con.execute("SELECT count(*) FROM api_calls").fetchone() == (0,)  # nothing was sent
    code, _, _ = run(hive_main, capsys, *home, "budget", "unset")
    code, out, _ = run(hive_main, capsys, *ask)
    assert code == 0 and out.strip()


# -- per-model and per-app limits block their model or app, not the others ----------------------------

OTHER_MODEL = "anthropic/claude-3-haiku"


@pytest.mark.parametrize("scope", [f"model:{MODEL}", "app:search"])
def test_scoped_limit_blocks(make_budget: Any, data_dir: Path, scope: str) -> None:
    budget = make_budget(app="search")
    kind, _, name = scope.partition(":")
    set_budget(DataDir(data_dir).config_file, scope=scope, daily="0.00001")
    with pytest.raises(BudgetExceeded, match=f"daily budget of {scope} exceeded.*--daily N --{kind} {name}"):
        budget.reserve(MODEL, "hi", max_tokens=500)
    if kind == "model":
        budget.reserve(OTHER_MODEL, "hi", max_tokens=500).release()  # another model is not blocked
    budget.reserve(MODEL, "hi", max_tokens=500, app="other" if kind == "app" else "search",
                   over_budget=kind == "model").release()
    set_budget(DataDir(data_dir).config_file, scope=scope, daily="0")
    with pytest.raises(BudgetExceeded, match=f"the daily budget of {scope} is 0.*`hive budget unset --{kind} {name}`"):
        budget.reserve(MODEL, "hi", max_tokens=1, over_budget=True)


def test_a_model_limit_covers_its_routing_shortcuts(make_budget: Any, data_dir: Path) -> None:
    """``:nitro`` / ``:online`` are the model routed another way: reserved, settled and limited
    under the model's own scope (a limit on the base id that a shortcut escaped could overshoot);
    a limit set on a shortcut itself, which nothing would ever count against, is refused."""
    config = DataDir(data_dir).config_file
    budget = make_budget()
    set_budget(config, scope=f"model:{MODEL}", daily="0.0011")
    with budget.reserve(f"{MODEL}:nitro", "hi", max_tokens=100) as reservation:
        assert budget.ledger.reserved(f"model:{MODEL}") == pytest.approx(reservation.amount_usd)
        assert reservation.amount_usd > 0
        reservation.settle(0.001)
    assert budget.ledger.spend(f"model:{MODEL}", Period.daily(NOW)) == pytest.approx(0.001)
    with pytest.raises(BudgetExceeded, match=f"daily budget of model:{MODEL} exceeded"):
        budget.reserve(f"{MODEL}:online", "hi", max_tokens=500)
    with pytest.raises(ConfigError, match=f":nitro is a routing shortcut of {MODEL}.*use model:{MODEL}$"):
        set_budget(config, scope=f"model:{MODEL}:nitro", daily="1")
    # one already in a file (set by hand) is never met, but the file still loads: requests go on
    document = json.loads(config.read_text())
    document["budget"]["limits"][f"model:{MODEL}:floor"] = {"daily_usd": 1}
    config.write_text(json.dumps(document))
    assert f"model:{MODEL}:floor" in load_budget_config(config).limits


@pytest.mark.parametrize("scope", [f"model:{MODEL}", "app:search"])
def test_scoped_limit_blocks_cli(emulator: Any, data_dir: Path, catalog_path: Path, scope: str,
                                 capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    (data_dir / "catalog").mkdir()
    shutil.copy(catalog_path, data_dir / "catalog" / "models.json")
    monkeypatch.setenv("OPENROUTER_API_KEY", emulator.api_key)
    monkeypatch.setenv("OPENROUTER_BASE_URL", emulator.base_url)
    monkeypatch.setenv("HIVE_APP", "search")
    kind, _, name = scope.partition(":")
    home = ["--data-dir", str(data_dir)]
    assert run(hive_main, capsys, *home, "budget", "set", "--daily", "0.00001", f"--{kind}", name)[0] == 0
    ask = [*home, "ask", "Say hi", "--max-tokens", "500", "--no-stream"]
    code, out, err = run(hive_main, capsys, *ask, "--model", MODEL)
    assert (code, out) == (1, "") and err.startswith(f"error: daily budget of {scope} exceeded")
    if kind == "model":
        assert run(hive_main, capsys, *ask, "--model", OTHER_MODEL)[0] == 0
    else:
        monkeypatch.setenv("HIVE_APP", "other")
        assert run(hive_main, capsys, *ask, "--model", MODEL)[0] == 0


# -- hive budget show agrees with the raw events to the cent ---------------------------------------

COSTS = [0.1 + 0.2, 1e-7, 0.0049999, 0.333333333, 2.675, 0.005, 1.1, 0.07]


def write_usage(data_dir: Path) -> float:
    with EventLog(data_dir) as log:
        for i, cost in enumerate(COSTS):
            app = "search" if i % 2 else None
            log.record(Usage(ts=NOW - timedelta(days=i % 3, minutes=i), request_id=f"r{i}", app=app,
                             model=MODEL, cost_usd=cost, cost_source="billed"))
        log.record(Usage(ts=NOW, request_id="unknown", model=MODEL, cost_usd=None, cost_source="unknown"))
    from queries import connect

    with connect(data_dir) as store:
        (raw,) = store.con.execute("SELECT SUM(cost_usd) FROM usage").fetchone()
    return float(raw)


def test_budget_show(data_dir: Path) -> None:
    raw = write_usage(data_dir)
    set_budget(DataDir(data_dir).config_file, daily=5, monthly=20)
    set_budget(DataDir(data_dir).config_file, scope="app:search", monthly=3)
    statuses = budget_status(data_dir, now=NOW)
    assert [s.scope for s in statuses] == ["global", "app:search"]
    glob = statuses[0]
    assert round(glob.spent_month_usd, 2) == round(raw, 2)
    assert math.isclose(glob.spent_month_usd, raw, abs_tol=1e-9)
    assert glob.remaining_month_usd == pytest.approx(20 - raw)
    assert statuses[1].spent_month_usd == pytest.approx(sum(COSTS[1::2]))
    assert glob.projected_month_usd > glob.spent_month_usd


def test_budget_show_cli(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = write_usage(data_dir)
    set_budget(DataDir(data_dir).config_file, daily=5, monthly=20)
    code, out, _ = run(hive_main, capsys, "--data-dir", str(data_dir), "--as-of", NOW.isoformat(), "budget", "show", "--json")
    assert code == 0
    shown = json.loads(out)["scopes"][0]
    assert shown["scope"] == "global" and round(shown["spent_month_usd"], 2) == round(raw, 2)
    code, out, _ = run(hive_main, capsys, "--data-dir", str(data_dir), "--as-of", NOW.isoformat(), "budget", "show")
    assert code == 0 and f"spent ${raw:,.2f} of $20.00" in out and "projected month-end" in out
    # the ledger never saw these requests (written straight to the log): show says how to fix it
    assert "run `hive-jobs rebuild-ledger`" in out


# -- hive ask under a budget: refused with what to do, or sent and recorded with --over-budget --------

def test_over_budget_is_recorded_cli(emulator: Any, data_dir: Path, catalog_path: Path,
                                     capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from hive_core.budget import Ledger
    from queries import connect

    (data_dir / "catalog").mkdir()
    shutil.copy(catalog_path, data_dir / "catalog" / "models.json")
    monkeypatch.setenv("OPENROUTER_API_KEY", emulator.api_key)
    monkeypatch.setenv("OPENROUTER_BASE_URL", emulator.base_url)
    set_budget(DataDir(data_dir).config_file, daily="0.00001")
    ask_args = ["--data-dir", str(data_dir), "ask", "Say hi", "--model", MODEL, "--max-tokens", "50", "--no-stream"]
    code, out, err = run(hive_main, capsys, *ask_args)
    assert code == 1 and out == ""
    assert err.startswith("error: daily budget of global exceeded: limit $0.00001") and "--over-budget" in err
    code, out, err = run(hive_main, capsys, *ask_args, "--over-budget")
    assert code == 0 and out.strip()
    with connect(data_dir) as store:
        overrides = store.con.execute("SELECT scope, period, request_id FROM budget_overrides").fetchall()
        usage = store.con.execute("SELECT request_id, cost_usd FROM usage").fetchall()
        calls = store.con.execute("SELECT COUNT(*) FROM api_calls").fetchone()
    assert calls == (1,)  # the refused request never reached OpenRouter
    assert [(s, p) for s, p, _ in overrides] == [("global", "daily")] and overrides[0][2] == usage[0][0]
    with Ledger(DataDir(data_dir).ledger) as ledger:
        assert ledger.spend("global", Period.monthly(datetime.now(UTC))) == pytest.approx(usage[0][1])
        assert ledger.reserved("global") == 0


def test_budget_show_agrees_with_analytics_cost(data_dir: Path) -> None:
    from hive_core.settings import Settings
    from jobs.insights.analytics import cost
    from jobs.rollup.daily import rollup

    raw = write_usage(data_dir)
    set_budget(DataDir(data_dir).config_file, monthly=20)
    month = Period.monthly(NOW)
    settings = Settings(data_dir=data_dir)
    live = cost(settings, Period.of_days(month.first_day, NOW.date())).total_usd
    rollup(settings)
    rolled = cost(settings, Period.of_days(month.first_day, NOW.date())).total_usd
    shown = budget_status(data_dir, now=NOW)[0].spent_month_usd
    assert round(live, 2) == round(rolled, 2) == round(shown, 2) == round(raw, 2)


def test_a_request_without_max_tokens_is_sent_with_the_reserved_cap(emulator_factory: Any, tmp_path: Path) -> None:
    """Under a limit, the reservation's output cap is sent, so the reservation is a real maximum."""
    from hive_core.ask import AskOptions, ask
    from hive_core.budget import save_budget_config
    from hive_core.catalog.catalog import load_catalog
    from hive_core.openrouter import OpenRouterClient
    from hive_core.store.events import ApiCall
    from tests.plugins.emulator import emu_settings
    from tests.plugins.env import shared_path

    emu = emulator_factory()
    settings = emu_settings(emu, tmp_path)
    catalog_dir = settings.datadir.catalog_file.parent
    catalog_dir.mkdir(parents=True)
    settings.datadir.catalog_file.write_bytes(shared_path("models-2026-06.json").read_bytes())
    prices = load_catalog(settings.datadir.catalog_file)
    sink = ListSink()
    for limited in (False, True):
        if limited:
            save_budget_config(settings.datadir.config_file, BudgetConfig(limits={"global": Limit(scope="global", daily_usd=5.0)}))
        with Budget(settings.data_dir, prices=prices, sink=sink) as budget, \
                OpenRouterClient(settings, sink=budget.settling_sink(sink), prices=prices) as client:
            ask(client, "hi", [MODEL], AskOptions(stream=False), budget=budget)
    caps = [c.max_tokens for c in sink.of(ApiCall)]
    assert caps[0] is None and caps[-1] == BudgetConfig().default_max_tokens


def test_lazy_package_exports_resolve_to_the_objects_not_submodules() -> None:
    import importlib
    import types

    for sub in ("config", "estimate", "forecast", "ledger", "reservation"):
        importlib.import_module(f"hive_core.budget.{sub}")  # importing a submodule binds its name on the package
    for name in budget_pkg.__all__:
        assert not isinstance(getattr(budget_pkg, name), types.ModuleType), name
