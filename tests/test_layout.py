from __future__ import annotations

from datetime import date
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hive_core.ids import writer_id
from hive_core.store.layout import (
    EventFileName,
    compact_journal_name,
    is_compact_journal,
    is_temporary,
    parse_file_name,
    partition_date,
    partition_name,
    temporary_name,
)

writers = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,30}[A-Za-z0-9]", fullmatch=True)


@given(writers, st.integers(min_value=0, max_value=10**9))
def test_file_name_format_and_parse_are_symmetric(writer: str, seq: int) -> None:
    name = EventFileName(writer, seq)
    assert parse_file_name(name.format()) == name


def test_names_sort_in_time_order_within_a_writer() -> None:
    w = writer_id()
    names = [EventFileName(w, s).format() for s in (1, 2, 10, 999, 1000)]
    assert names == sorted(names)


def test_temporary_names_are_never_data() -> None:
    tmp = temporary_name("w-000001.parquet")
    assert is_temporary(tmp) and not tmp.endswith(".parquet") and parse_file_name(tmp) is None
    assert parse_file_name("notes.txt") is None


@given(st.dates())
def test_partition_name_and_date_are_symmetric(day: date) -> None:
    assert partition_date(Path("events") / partition_name(day)) == day


def test_partition_names() -> None:
    assert partition_name(date(2026, 2, 28)) == "date=2026-02-28"
    assert partition_date(Path("date=2026-02-30")) is None and partition_date(Path("day=2026-02-28")) is None


def test_only_the_writers_names_are_data() -> None:
    """The file-name rule: copies a human or a tool leaves in a partition are strays."""
    for stray in ("w-000001.parquet.bak", "w-000001.parquet~", "backup", "copy of w-000001.parquet",
                  "w-000001 (1).parquet", "w-1.parquet", ".w-000001.parquet", "w-000001.PARQUET",
                  "w-000001.parquet\n"):
        assert parse_file_name(stray) is None, stray
    assert parse_file_name("20261120T120000-host-42-abcdefc-000001.parquet") is not None  # a compaction's output
    # writer ids keep the host name's alphanumerics, in any script: their files stay data
    assert parse_file_name("20261120T120000-café東京-42-abcdef-000001.parquet") is not None


def test_compaction_journal_names() -> None:
    journal = compact_journal_name("w-000001.parquet")
    assert journal == ".compact-w-000001.json" and is_compact_journal(journal)
    assert not is_compact_journal("w-000001.parquet") and not is_temporary(journal)
