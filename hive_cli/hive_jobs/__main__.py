"""``python -m hive_cli.hive_jobs`` is ``hive-jobs``; so is this file given to ``spark-submit``
(which needs a ``.py`` path): ``spark-submit .../hive_cli/hive_jobs/__main__.py rollup --engine spark``."""

from hive_cli.hive_jobs import main

if __name__ == "__main__":
    main(None)
