"""The README's pictures of the day, week and month reports: ``python -m tests.screenshots``.

Builds the demo store as ``make demo`` does (``hive-jobs simulate --days 30 --calls-per-day 20000 --seed 7``
then the rollup), at a fixed instant so the pictures only change when the report does, renders the three
reports of the day before it in headless Chromium at 1280 px wide (:mod:`tests.chromium`) and writes
``data/screenshots/report-<kind>.png``. It checks first what ``tests/test_report.py`` checks: every label
inside its chart, none over another.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["AS_OF", "OUT", "main"]

#: the instant the demo is built and reported at (its reports end the day before)
AS_OF = datetime(2026, 5, 21, 6, 0, tzinfo=UTC)
OUT = Path(__file__).resolve().parents[1] / "data" / "screenshots"


def main(argv: list[str] | None = None) -> None:
    """Write the three PNGs (see the module docstring)."""
    from hive_core.period import Period
    from hive_core.settings import Settings
    from jobs.pipeline import rollup
    from jobs.reports.report import build_report, write_report
    from jobs.simulate.simulate import simulate
    from tests.chromium import WIDTH, measure, overflows, overlaps, screenshot

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls-per-day", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    end = AS_OF.date() - timedelta(days=1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = Settings(data_dir=work / "data", as_of=AS_OF)
        simulate(settings.data_dir, days=30, calls_per_day=args.calls_per_day, seed=7, end=end, now=AS_OF)
        rollup(settings)
        for kind in ("day", "week", "month"):
            page = write_report(build_report(settings, Period.report(kind, end)), "html", work)
            bad = [line for svg in measure(page, work)["svgs"] for line in overflows(svg) + overlaps(svg)]
            if bad:
                raise SystemExit(f"{page.name}: {bad[0]}")
            png = screenshot(page, args.out / f"report-{kind}.png", work, width=WIDTH)
            print(png)


if __name__ == "__main__":
    main()
