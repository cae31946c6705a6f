"""UUIDv7 ids: valid RFC 9562 strings, strictly increasing, the millisecond they carry right."""

from __future__ import annotations

import time
import uuid

from hive_core import ids
from hive_core.ids import uuid7, uuid7_time_ms


def check(values: list[str]) -> None:
    assert values == sorted(values) and len(set(values)) == len(values)
    for value in values:
        parsed = uuid.UUID(value)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == value


def test_ids_are_valid_increasing_and_carry_their_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    values = [uuid7() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    check(values)
    assert before <= uuid7_time_ms(values[0]) <= uuid7_time_ms(values[-1]) <= after + 1


def test_a_full_millisecond_borrows_the_next_one() -> None:
    """4096 ids in one millisecond: the next id moves to the next millisecond, formatted anew."""
    uuid7()
    with ids._lock:  # as if this millisecond's counter were used up
        ids._counter = ids._COUNTER_MAX - 1
        ids._last_ms += 200  # ahead of the clock, so the first two ids below share this millisecond
        ids._prefix = f"{ids._last_ms >> 16:08x}-{ids._last_ms & 0xFFFF:04x}-7"
        start = ids._last_ms
    values = [uuid7(), uuid7(), uuid7()]
    check(values)
    assert [uuid7_time_ms(v) for v in values] == [start, start + 1, start + 1]
