"""The sync client is generated from the async one by ``.ci/unasync.py``: the tree agrees with the
generator (CI fails on drift), the check names a drifted file, and the tool's rules hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / ".ci" / "unasync.py"
AIO = REPO / "hive_core" / "openrouter" / "aio.py"
CLIENT = REPO / "hive_core" / "openrouter" / "client.py"


def unasync(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, check=False)


def copies(tmp_path: Path) -> tuple[Path, Path]:
    source, target = tmp_path / "aio.py", tmp_path / "client.py"
    shutil.copy(AIO, source)
    shutil.copy(CLIENT, target)
    return source, target


def test_client_is_generated_from_aio() -> None:
    out = unasync("--check")
    assert out.returncode == 0, out.stderr
    assert CLIENT.read_text().startswith("# Generated from aio.py by .ci/unasync.py; do not edit")


def test_check_names_a_drifted_file_and_writing_fixes_it(tmp_path: Path) -> None:
    source, target = copies(tmp_path)
    target.write_text(target.read_text().replace("raise Cancelled(CANCELLED)", "return", 1))
    out = unasync("--check", source, target)
    assert out.returncode == 1
    assert f"{target} differs from what aio.py gives" in out.stderr and "+            raise Cancelled(CANCELLED)" in out.stderr
    assert unasync(source, target).returncode == 0
    assert unasync("--check", source, target).returncode == 0
    assert target.read_text() == CLIENT.read_text()


def test_async_branch_is_replaced_by_the_else_body(tmp_path: Path) -> None:
    source, target = copies(tmp_path)
    with source.open("a") as f:
        f.write("\n\ndef extra() -> str:\n"
                "    if True:  # ASYNC: only here\n        value = 'async'\n"
                "    else:  # the sync reason\n        value = 'sync'\n\n        value += '!'\n"
                "    return value\n"
                "\n\nif True:  # ASYNC: no sync twin\n    ONLY_ASYNC = 1\n")
    assert unasync(source, target).returncode == 0
    assert target.read_text().endswith("\n\ndef extra() -> str:\n"
                                       "    # the sync reason\n    value = 'sync'\n\n    value += '!'\n"
                                       "    return value\n\n\n")


def test_an_unmarked_directive_and_a_stale_substitution_are_refused(tmp_path: Path) -> None:
    source, target = copies(tmp_path)
    text = source.read_text()
    source.write_text(text + "\nif True:\n    pass\n")
    out = unasync("--check", source, target)
    assert out.returncode == 1 and "`if True:` without `# ASYNC`" in out.stderr
    source.write_text(text.replace("aiter_bytes", "iter_chunks"))
    out = unasync("--check", source, target)
    assert out.returncode == 1 and "aiter_bytes" in out.stderr and "no longer used" in out.stderr
