"""Running the CLIs in tests, one way each (STYLE.md #12): every test module that runs ``hive`` or
``hive-jobs`` uses these, none defines its own.

* as a user does: :func:`run_cli` runs the installed console script in a subprocess with the
  environment :func:`hive_env` builds (an emulator, a data directory, fast retries);
* in-process, fast: :func:`run` (any entry point), :func:`run_hive` and :func:`run_jobs` return
  ``(exit status, stdout, stderr)`` exactly as a user would see them - the CLIs' error policy
  (:func:`hive_cli.lazy.run_cli`) included, so a test never sees a traceback a user would not.

:func:`cli_commands` lists every command of both CLIs, for tests that must cover each one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import pytest

__all__ = ["BIN", "budgeted_store", "cli_commands", "hive_env", "run", "run_cli", "run_hive", "run_jobs"]

#: where the console scripts (``hive``, ``hive-jobs``, ``hive-emulator``) are installed
BIN = Path(sys.executable).parent

#: seconds a CLI subprocess may take before the test fails
TIMEOUT_S = 60


def hive_env(emu: Any, data_dir: Path, key: str | None = None) -> dict[str, str]:
    """The environment of a CLI subprocess: the caller's minus any ``HIVE_*``/``OPENROUTER_*``, plus the
    emulator's URL and key (or ``key``), ``data_dir``, and timeouts and retries short enough for tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIVE_", "OPENROUTER_"))}
    env.update({"OPENROUTER_API_KEY": key or emu.api_key, "OPENROUTER_BASE_URL": emu.base_url,
                "HIVE_DATA_DIR": str(data_dir), "HIVE_READ_TIMEOUT": "5", "HIVE_RETRY_MAX_WAIT": "0.05",
                "HIVE_MAX_ATTEMPTS": "2"})
    return env


def run_cli(tool: str, args: list[str], env: dict[str, str], *,
            timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """``tool`` (``hive``, ``hive-jobs``...) as a subprocess; its output as text."""
    return subprocess.run([str(BIN / tool), *args], env=env, capture_output=True, text=True, timeout=timeout)


def run(tool_main: Callable[[Sequence[str]], None], capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """A console entry point in-process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        tool_main(list(args))
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def run_hive(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``hive ARGS`` in-process: (exit status, stdout, stderr)."""
    from hive_cli.hive import main

    return run(main, capsys, *args)


def run_jobs(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``hive-jobs ARGS`` in-process: (exit status, stdout, stderr)."""
    from hive_cli.hive_jobs import main

    return run(main, capsys, *args)


def budgeted_store(data_dir: Path, catalog_path: Path, env: dict[str, str]) -> None:
    """A data directory with the real catalog (so a cancelled stream is priced) and a generous limit."""
    from hive_core.store.datadir import DataDir

    target = DataDir(data_dir).catalog_file
    target.parent.mkdir(parents=True)
    shutil.copy(catalog_path, target)
    done = run_cli("hive", ["budget", "set", "--daily", "100"], env)
    assert done.returncode == 0, done.stderr


def cli_commands(*, groups: bool = True) -> list[tuple[str, click.Command]]:
    """Every command of ``hive`` and ``hive-jobs`` as (full name, command), the tools themselves first,
    loaded from their registries (the walk the README's CLI reference is written from,
    :func:`tests.docs_gen.all_commands`); ``groups=False``: only the commands that run something."""
    from tests.docs_gen import all_commands

    return [(name, command) for name, command in all_commands() if groups or not isinstance(command, click.Group)]
