from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pyarrow as pa
import pytest
from pydantic import ValidationError

from hive_core.ids import uuid7, uuid7_time_ms
from hive_core.store.events import EVENT_ADAPTER, EVENT_TYPES, ApiCall, Usage, arrow_schema, schema_markdown
from tests.cases import T0, sample_events


def test_every_event_type_has_a_sample() -> None:
    assert {e.type for e in sample_events()} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: e.type)
def test_event_round_trips_through_json_and_arrow(event: object) -> None:
    again = EVENT_ADAPTER.validate_json(event.model_dump_json())  # type: ignore[attr-defined]
    assert again == event
    schema = arrow_schema(type(event))  # type: ignore[arg-type]
    table = pa.Table.from_pylist([event.model_dump()], schema=schema)  # type: ignore[attr-defined]
    row = table.to_pylist()[0]
    assert EVENT_ADAPTER.validate_python(row) == event


def test_arrow_schema_follows_the_class() -> None:
    schema = arrow_schema(ApiCall)
    assert schema.names == list(ApiCall.model_fields)
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("ttft_ms").nullable and not schema.field("attempt").nullable
    assert schema.field("tags").type == pa.list_(pa.string())


def test_event_ids_are_time_ordered_uuid7() -> None:
    ids = [uuid7() for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i[14] == "7" and i[19] in "89ab" for i in ids)
    assert abs(uuid7_time_ms(ids[0]) - datetime.now().timestamp() * 1000) < 5000


def test_timestamps_are_utc_and_naive_ones_are_refused() -> None:
    local = T0.astimezone(timezone(timedelta(hours=5)))
    event = ApiCall(ts=local, request_id="r", attempt=1, model="m", status="ok", latency_ms=1)
    assert event.ts == T0 and event.ts.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError):
        ApiCall(ts=datetime(2026, 1, 1), request_id="r", attempt=1, model="m", status="ok", latency_ms=1)


def test_no_event_has_a_text_field() -> None:
    forbidden = {"prompt", "response", "content", "messages", "text", "api_key"}
    for cls in EVENT_TYPES.values():
        assert not forbidden & set(cls.model_fields), cls


def test_usage_cost_source_is_constrained() -> None:
    with pytest.raises(ValidationError):
        Usage(request_id="r", model="m", cost_source="guess")  # type: ignore[arg-type]


def test_schema_markdown_documents_every_column() -> None:
    from hive_core.store.events import Event

    text = schema_markdown()
    for cls in EVENT_TYPES.values():
        for name, info in cls.model_fields.items():
            described = Event.model_fields.get(name, info)
            assert f"`{name}`" in text and described.description, (cls, name)


def test_schema_version_default_follows_the_class() -> None:
    for cls in EVENT_TYPES.values():
        assert cls.model_fields["schema_version"].default == cls.SCHEMA_VERSION, cls


def test_out_of_range_timestamps_are_refused_at_record_time() -> None:
    """One event dated 9999-12-31 once made every rollup fail (day arithmetic overflowed): an event
    cannot be built with it, so Hive's writers never record one, and the error says why."""
    from hive_core.store.layout import TS_MAX, TS_MIN

    def call(ts: datetime) -> ApiCall:
        return ApiCall(ts=ts, request_id="r", attempt=1, model="m", status="ok", latency_ms=1)

    assert call(TS_MIN).ts == TS_MIN and call(TS_MAX - timedelta(microseconds=1)).ts < TS_MAX
    for ts in (TS_MAX, datetime(9999, 12, 31, 23, 59, tzinfo=UTC), TS_MIN - timedelta(microseconds=1),
               datetime(1970, 1, 1, tzinfo=UTC)):
        with pytest.raises(ValidationError, match=r"outside 2000\.\.2199"):
            call(ts)
    with pytest.raises(ValidationError, match="outside"):  # the JSON path too (events read back, the emulator)
        EVENT_ADAPTER.validate_json(call(TS_MIN).model_dump_json().replace("2000-01-01", "9999-12-31"))


def test_the_day_span_is_the_event_span() -> None:
    """Partition days (what the rollup walks) span exactly the timestamps an event may carry."""
    from hive_core.store.layout import FIRST_DAY, LAST_DAY, TS_MAX, TS_MIN, day_in_range

    assert (TS_MIN.date(), (TS_MAX - timedelta(microseconds=1)).date()) == (FIRST_DAY, LAST_DAY)
    assert day_in_range(FIRST_DAY) and day_in_range(LAST_DAY)
    assert not day_in_range(FIRST_DAY - timedelta(days=1)) and not day_in_range(date(9999, 12, 31))
