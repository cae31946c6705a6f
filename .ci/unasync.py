"""Generate the synchronous OpenRouter client and pool from the asynchronous ones, or check that they agree.

    python .ci/unasync.py            write hive_core/openrouter/client.py from aio.py, pool.py from pool_async.py,
                                     conns.py from conns_async.py
    python .ci/unasync.py --check    exit 1, naming the file, when a twin is not what its source gives

The request logic is written once, in ``aio.py``; two hand-kept copies drift. As in encode/httpcore's
``scripts/unasync.py``, the sync twin is the async source rewritten through a table of token
substitutions (:data:`COMMON` plus the file's own in :data:`TWINS`), and every entry must be used (a file's
own by it, a common one by some file), so a stale one is an error. Where the two
clients differ on purpose, the source says so with the branch directive of psycopg's
``tools/async_to_sync.py``:

    if True:  # ASYNC: why the two differ
        <async statements>
    else:  # why the sync side does this (kept, as a comment)
        <sync statements>

``aio.py`` runs (and mypy reads) the first branch; the sync twin gets the ``else`` body, dedented, or
nothing when there is no ``else``. Any other ``if True:`` is refused.

Optional arguments ``SOURCE TARGET`` name other files (the tests check a drifted copy).
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hive_core" / "openrouter"

HEADER = "# Generated from {source} by .ci/unasync.py; do not edit: edit {source}, then run `python .ci/unasync.py`.\n"

#: the rewrites every twin needs, applied in order to every line after a file's own
COMMON: list[tuple[str, str]] = [
    (r"\bAsync([A-Z]\w*)", r"\1"),  # AsyncOpenRouterClient, httpx.AsyncClient, AsyncIterator, ...
    (r"\basync (def|for|with)\b", r"\1"),
    (r"\bawait ", ""),
    (r"\baclose\b", "close"),
    (r"\b__a(enter|exit|iter|next)__\b", r"__\1__"),
]

#: source -> (target, the file's own rewrites: (regular expression, replacement)). Every rewrite
#: must be used by its file, so a stale one is an error.
TWINS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "aio.py": ("client.py", [
        # the sorted sync names, so that the import stays sorted (ruff's isort rule)
        (r"^from collections\.abc import AsyncGenerator, AsyncIterator, Callable$",
         "from collections.abc import Callable, Generator, Iterator"),
        (r"\bawait asyncio\.shield\((.*)\)", r"\1"),  # no task cancel can interrupt a sync close
        (r"^import asyncio\n", ""),  # the shield's
        (r"\bacall_with_retries\b", "call_with_retries"),
        (r"\baread\b", "read"),
        (r"\baiter_bytes\b", "iter_bytes"),
        (r"^from hive_core\.openrouter\.pool_async import", "from hive_core.openrouter.pool import"),
    ]),
    "conns_async.py": ("conns.py", [
        (r"\bAsyncSocketStream\b", "httpcore.NetworkStream"),  # the sync pool reads httpcore's sockets
    ]),
    "pool_async.py": ("pool.py", [
        (r"^from collections\.abc import AsyncIterable, AsyncIterator, Generator$",
         "from collections.abc import Generator, Iterable, Iterator"),
        (r"^from hive_core\.openrouter\.conns_async import", "from hive_core.openrouter.conns import"),
        (r"\bhttpx\.AsyncByteStream\b", "httpx.SyncByteStream"),  # httpx.ByteStream is the bytes one
        (r"\bhandle_async_request\b", "handle_request"),
        (r"(for chunk in conn\.body\(self\._timeout\):)$", r"\1  # noqa: UP028 (an `async for` in pool_async.py)"),
    ]),
}
_DIRECTIVE = re.compile(r"^( *)if True:(.*)$")
_ELSE = re.compile(r"^( *)else:\s*(?:#\s*(.*))?$")


class UnasyncError(Exception):
    """The source breaks a rule of this tool (a bad directive, a stale substitution)."""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """The index after the block starting at ``start``: its lines are indented deeper than ``indent``
    (blank lines inside count, trailing ones do not)."""
    end = start
    for i in range(start, len(lines)):
        if lines[i].strip():
            if _indent(lines[i]) <= indent:
                break
            end = i + 1
    return end


def apply_directives(lines: list[str], name: str) -> list[str]:
    """Replace every ``if True:  # ASYNC`` branch by its ``else`` body (or by nothing)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        if not re.match(r"\s*#\s*ASYNC\b", match[2]):
            raise UnasyncError(f"{name}:{i + 1}: `if True:` without `# ASYNC` (the only directive)")
        indent = len(match[1])
        i = _block_end(lines, i + 1, indent)
        after = i
        while after < len(lines) and not lines[after].strip():
            after += 1
        other = _ELSE.match(lines[after]) if after < len(lines) else None
        if other is None or len(other[1]) != indent:
            continue  # async only: nothing in the sync twin
        body_end = _block_end(lines, after + 1, indent)
        body = lines[after + 1 : body_end]
        if other[2]:
            out.append(f"{' ' * indent}# {other[2]}\n")
        shift = min(_indent(line) for line in body if line.strip()) - indent
        out.extend(line[shift:] if line.strip() else line for line in body)
        i = body_end
    return out


def unasync(source: str, name: str = "aio.py", common_used: set[int] | None = None) -> str:
    """The sync twin of ``source`` (a file named in :data:`TWINS`): the header, then the directives,
    the file's own rewrites and :data:`COMMON` applied. Each of the file's own rewrites must be
    used by it; the indices of the :data:`COMMON` ones it used are added to ``common_used`` (each
    must be used by some file: :func:`main` checks)."""
    if name not in TWINS:
        raise UnasyncError(f"{name}: not an async source (known: {', '.join(TWINS)})")
    own = TWINS[name][1]
    subs = own + COMMON
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in subs]
    used: set[int] = set()
    out = [HEADER.format(source=name)]
    for line in apply_directives(source.splitlines(keepends=True), name):
        for index, (pattern, replacement) in enumerate(compiled):
            line, count = pattern.subn(replacement, line)
            if count:
                used.add(index)
        out.append(line)
    stale = [own[i][0] for i in range(len(own)) if i not in used]
    if stale:
        raise UnasyncError(f"{name}: substitutions no longer used (remove them from .ci/unasync.py): {stale}")
    if common_used is not None:
        common_used.update(i - len(own) for i in used if i >= len(own))
    return "".join(out)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"]
    if len(paths) not in (0, 2):
        print("usage: python .ci/unasync.py [--check] [SOURCE TARGET]", file=sys.stderr)
        return 2
    pairs = [(paths[0], paths[1])] if paths else [(PACKAGE / s, PACKAGE / t) for s, (t, _) in TWINS.items()]
    common_used: set[int] = set()
    status = max([_one(source, target, check, common_used) for source, target in pairs])
    stale = [COMMON[i][0] for i in range(len(COMMON)) if i not in common_used]
    if not paths and stale:
        print(f"unasync: common substitutions no file uses (remove them from .ci/unasync.py): {stale}", file=sys.stderr)
        return 1
    return status


def _one(source: Path, target: Path, check: bool, common_used: set[int]) -> int:
    try:
        expected = unasync(source.read_text(), source.name, common_used)
    except UnasyncError as exc:
        print(f"unasync: {exc}", file=sys.stderr)
        return 1
    shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
    if not check:
        if not target.exists() or target.read_text() != expected:
            target.write_text(expected)
            print(f"unasync: wrote {shown}")
        return 0
    actual = target.read_text() if target.exists() else ""
    if actual == expected:
        return 0
    diff = difflib.unified_diff(actual.splitlines(keepends=True), expected.splitlines(keepends=True),
                                f"{shown} (as it is)", f"{shown} (generated from {source.name})", n=1)
    print(f"unasync: {shown} differs from what {source.name} gives; run `python .ci/unasync.py`", file=sys.stderr)
    sys.stderr.writelines(list(diff)[:60])
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
