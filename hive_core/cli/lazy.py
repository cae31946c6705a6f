"""A click group whose subcommands are imported only when they run, and the CLIs' error policy.

``hive --help`` must not import duckdb, polars, pyarrow, httpx or pydantic: each subcommand lives in
its own module, named here with its one-line help, and is imported on first use.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from hive_core.errors import HiveError

__all__ = ["LazyGroup", "run_cli"]


class LazyGroup(click.Group):
    """``lazy``: name -> ("package.module:attribute", one-line help)."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            target, _help = self.lazy[cmd_name]
            module_name, attr = target.split(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{target} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help from the registry, so listing commands imports none of them.
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
            else:
                command = self.commands[name]
                rows.append((name, command.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def run_cli(group: click.Group, args: Sequence[str] | None = None, prog_name: str | None = None) -> None:
    """Run a CLI: expected errors become one line on stderr and exit 1; usage errors exit 2;
    Ctrl-C exits 130. Never a traceback for an expected error."""
    try:
        group.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)
    except HiveError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(0)
