"""Docs are tested: every command has help and is in the README with it; settings and events documented."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from tests.docs_gen import README, all_commands, packages, render

COMMANDS = all_commands()


def test_readme_reference_sections_are_current() -> None:
    text = README.read_text()
    assert render(text) == text, "README.md is out of date: run `make docs`"


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_has_help_and_is_in_the_readme(name: str, command: click.Command) -> None:
    assert (command.help or "").strip(), f"{name} has no help text"
    text = README.read_text()
    assert f"### `{name}`" in text
    first_line = command.help.strip().splitlines()[0]  # type: ignore[union-attr]
    assert first_line in text


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_option_has_help(name: str, command: click.Command) -> None:
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{name} {param.opts[0]} has no help text"


def test_quick_start_is_exactly_the_two_commands() -> None:
    quick = README.read_text().split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in quick.splitlines()[1:] if line.strip()]
    assert commands == ["make demo", "make test"]


def test_every_setting_and_event_column_is_documented() -> None:
    from hive_core.settings import SETTINGS
    from hive_core.store.events import EVENT_TYPES

    text = README.read_text()
    for setting in SETTINGS.values():
        assert f"`{setting.env}`" in text
    for type_name, cls in EVENT_TYPES.items():
        assert f"`{type_name}`" in text
        for column in cls.model_fields:
            assert re.search(rf"\| `{column}` \|", text), (type_name, column)


@pytest.mark.parametrize(("folder", "first_line"), packages(), ids=[folder for folder, _ in packages()])
def test_every_package_says_what_it_is(folder: str, first_line: str) -> None:
    """The README's layout section is these first lines: a package without one would be a blank row."""
    assert first_line.endswith(".") and len(first_line) <= 120, f"{folder}/__init__.py: {first_line!r}"


def test_readme_mentions_no_missing_make_target() -> None:
    makefile = (README.parent / "Makefile").read_text()
    for target in set(re.findall(r"`make (\w+)`", README.read_text())):
        assert re.search(rf"^{target}:", makefile, re.M), f"README mentions `make {target}`, the Makefile lacks it"


def test_readme_is_at_the_repo_root() -> None:
    assert Path(__file__).resolve().parents[1] / "README.md" == README
