"""``hive rate``: a quality_rating event naming the model that answered; unknown ids refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import queries
from hive_core.errors import ConfigError
from hive_core.settings import Settings
from ingest import EventLog
from jobs.insights.rating import rate
from tests.cases import DAY0, write_history
from tests.plugins.cli import run_hive

RID = f"{DAY0}-0-0"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    write_history(data_dir, days=1, n=5)
    return Settings(data_dir=data_dir, user="ana")


def ratings(settings: Settings) -> list[dict[str, object]]:
    with queries.connect(settings.data_dir) as store:
        cur = store.con.execute("select request_id, score, model, rater from quality_ratings order by ts")
        return [dict(zip(("request_id", "score", "model", "rater"), row, strict=True)) for row in cur.fetchall()]


def answered_by(settings: Settings, request_id: str) -> str:
    with queries.connect(settings.data_dir) as store:
        sql = "select served_model from api_calls where request_id = $r and status = 'ok'"
        return str(store.con.execute(sql, {"r": request_id}).fetchall()[0][0])


def test_rating_names_the_model(settings: Settings) -> None:
    with EventLog(settings.data_dir) as log:
        event = rate(settings, log, RID, 0.75)
    assert event.model == answered_by(settings, RID)
    assert ratings(settings) == [{"request_id": RID, "score": 0.75, "model": event.model, "rater": "ana"}]


def last_of(settings: Settings) -> str:
    with queries.connect(settings.data_dir) as store:
        sql = "select request_id from api_calls order by ts desc limit 1"
        return str(store.con.execute(sql).fetchall()[0][0])


def test_last_rates_the_most_recent_request(settings: Settings) -> None:
    with EventLog(settings.data_dir) as log:
        event = rate(settings, log, "last", 0.5)
    assert event.request_id == last_of(settings) != "last"
    assert event.model == answered_by(settings, event.request_id)


def test_last_on_an_empty_store_says_what_to_do(data_dir: Path) -> None:
    with EventLog(data_dir) as log, pytest.raises(ConfigError, match="no request to rate yet"):
        rate(Settings(data_dir=data_dir), log, "last", 1.0)


def test_unknown_request_is_refused(settings: Settings) -> None:
    with EventLog(settings.data_dir) as log, pytest.raises(ConfigError, match="unknown request id 'nope'"):
        rate(settings, log, "nope", 1.0)
    assert ratings(settings) == []


def test_score_out_of_range(settings: Settings) -> None:
    with EventLog(settings.data_dir) as log, pytest.raises(ConfigError, match=r"outside 0\.\.1"):
        rate(settings, log, RID, 1.5)


class TestCli:
    def test_rating_names_the_model(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run_hive(["--data-dir", str(settings.data_dir), "rate", RID, "--good"], capsys)
        model = answered_by(settings, RID)
        assert code == 0 and out.strip() == f"rated {RID} 1 ({model})"
        code, out, _ = run_hive(["--data-dir", str(settings.data_dir), "rate", RID, "0.2", "--json"], capsys)
        assert code == 0 and json.loads(out)["score"] == 0.2
        code, _, _ = run_hive(["--data-dir", str(settings.data_dir), "rate", RID, "--bad"], capsys)
        assert [r["score"] for r in ratings(settings)] == [1.0, 0.2, 0.0]

    def test_last_rates_the_most_recent_request(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, err = run_hive(["--data-dir", str(settings.data_dir), "rate", "last", "--good"], capsys)
        last = last_of(settings)
        assert code == 0, err
        assert out.strip() == f"rated {last} 1 ({answered_by(settings, last)})"

    def test_unknown_request_is_refused(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, err = run_hive(["--data-dir", str(settings.data_dir), "rate", "nope", "0.5"], capsys)
        assert code == 1 and out == "" and err.startswith("error: unknown request id 'nope'")

    def test_score_out_of_range(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        code, _, err = run_hive(["--data-dir", str(settings.data_dir), "rate", RID, "1.5"], capsys)
        assert code == 2 and "1.5" in err
        code, _, err = run_hive(["--data-dir", str(settings.data_dir), "rate", RID], capsys)
        assert code == 2 and "--good" in err
