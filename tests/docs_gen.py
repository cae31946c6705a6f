"""Generates the README's reference sections; ``make docs`` rewrites them, ``test_docs`` checks them.

Sections sit between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` markers: ``tree`` (the data
directory, from ``hive_core.store.datadir.TREE``), ``events`` (the event schema from the event
classes), ``settings`` (from ``hive_core.settings.SETTINGS``), ``layout`` (every package of the
checkout with the first line of its docstring) and ``cli`` (every command of ``hive`` and
``hive-jobs`` with its help text).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

README = Path(__file__).resolve().parents[1] / "README.md"


WIDTH = {"terminal_width": 100, "max_content_width": 100}


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    """A context as click builds one for ``name --help``: the command's settings, the parent's chain."""
    return click.Context(command, parent=parent, info_name=name.split()[-1], **WIDTH, **command.context_settings)


def walk(group: click.Group, prefix: str, ctx: click.Context) -> list[tuple[str, click.Command, click.Context]]:
    """Every command under ``group`` as (full name, command, its context), depth first, sorted."""
    out: list[tuple[str, click.Command, click.Context]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{prefix} {name} is registered but does not load"
        full = f"{prefix} {name}"
        sub = _context(command, full, ctx)
        out.append((full, command, sub))
        if isinstance(command, click.Group):
            out.extend(walk(command, full, sub))
    return out


def _all() -> list[tuple[str, click.Command, click.Context]]:
    from hive_cli.hive import cli as hive
    from hive_cli.hive_jobs import cli as jobs

    out = []
    for name, root in (("hive", hive), ("hive-jobs", jobs)):
        ctx = _context(root, name, None)
        out += [(name, root, ctx), *walk(root, name, ctx)]
    return out


def all_commands() -> list[tuple[str, click.Command]]:
    """Every command of ``hive`` and ``hive-jobs`` as (full name, command), each tool before its
    commands, depth first (the order of the README's CLI reference)."""
    return [(name, command) for name, command, _ctx in _all()]


def cli_section() -> str:
    parts = []
    for full, command, ctx in _all():
        parts.append(f"### `{full}`\n\n```text\n{command.get_help(ctx)}\n```\n")
    return "\n".join(parts)


def settings_section() -> str:
    from hive_core.settings import SETTINGS

    rows = ["| environment variable | setting | meaning |", "|---|---|---|"]
    rows += [f"| `{s.env}` | `{s.name}` | {s.help} |" for s in SETTINGS.values()]
    return "\n".join(rows) + "\n"


def tree_section() -> str:
    from hive_core.store.datadir import TREE

    width = max(len(path) for path, _meaning in TREE) + 2
    lines = ["<data>/", *(f"  {path:<{width}}{meaning}" for path, meaning in TREE)]
    return "```text\n" + "\n".join(lines) + "\n```\n"


#: the checkout's top-level packages, in the direction imports point (towards hive_core), then tests
LAYOUT_ROOTS = ("hive_core", "ingest", "queries", "jobs", "hive", "hive_gateway", "hive_cli", "hive_emulator", "tests", "bench")


def packages() -> list[tuple[str, str]]:
    """``(folder relative to the checkout, first line of its docstring)`` of every package, depth first."""
    import ast

    def walk(folder: Path) -> list[tuple[str, str]]:
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
        first = doc.strip().split("\n")[0].replace("``", "`")  # reST literals read as Markdown ones
        found = [(folder.relative_to(README.parent).as_posix(), first)]
        for sub in sorted(p for p in folder.iterdir() if (p / "__init__.py").is_file()):
            found += walk(sub)
        return found

    return [entry for root in LAYOUT_ROOTS for entry in walk(README.parent / root)]


def layout_section() -> str:
    rows = [("  " * folder.count("/") + folder.rsplit("/", 1)[-1] + "/", doc) for folder, doc in packages()]
    width = max(len(name) for name, _doc in rows) + 2
    return "```text\n" + "\n".join(f"{name:<{width}}{doc}".rstrip() for name, doc in rows) + "\n```\n"


def events_section() -> str:
    from hive_core.store.events import schema_markdown

    return schema_markdown()


def bench_section() -> str | None:
    """The README's bench table with the last ``make bench`` run's figures (bench/results.json) put in:
    a figure's row replaced by name, a new figure's row placed after the row of the figure before it
    in the run (or at the end). Rows of figures the run did not measure stay (``python -m bench
    gateway`` measures one module: the others' rows must not go); None to keep the table as it is."""
    import json

    results = README.parent / "bench" / "results.json"
    if not results.exists():
        return None
    found = re.search(r"<!-- BEGIN bench -->\n(.*?)<!-- END bench -->", README.read_text(), re.S)
    rows = found.group(1).rstrip("\n").split("\n") if found else []
    if len(rows) < 2:
        rows = ["| figure | value | target | met | peer, same run | ratio |", "|---|---|---|---|---|---|"]
    at = {row.split(" | ")[0].removeprefix("| "): i for i, row in enumerate(rows) if i >= 2}
    after = len(rows) - 1
    for f in json.loads(results.read_text()):
        met = "-" if f["ok"] is None else ("yes" if f["ok"] else "**no**")
        peer = "" if f["peer"] is None else f"{f['peer']}: {f['peer_value']:.4g}"
        ratio = "" if f["ratio"] is None else f"{f['ratio']:.2f}x"
        row = f"| {f['name']} | {f['value']:.4g} {f['unit']} | {f['target']} | {met} | {peer} | {ratio} |"
        if f["name"] in at:
            after = at[f["name"]]
            rows[after] = row
        else:
            after += 1
            rows.insert(after, row)
            at = {name: i + (i >= after) for name, i in at.items()} | {f["name"]: after}
    return "\n".join(rows) + "\n"


#: sections checked by tests/test_docs.py (the bench table is a measurement, refreshed by `make docs`)
SECTIONS = {"tree": tree_section, "events": events_section, "settings": settings_section,
            "layout": layout_section, "cli": cli_section}


def render(text: str, *, bench: bool = False) -> str:
    sections = dict(SECTIONS)
    if bench:
        sections["bench"] = bench_section  # type: ignore[assignment]
    for name, make in sections.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no {name} section markers")
        body = make()
        if body is None:
            continue
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


if __name__ == "__main__":
    README.write_text(render(README.read_text(), bench=True))
    print(f"updated {README}", file=sys.stderr)
