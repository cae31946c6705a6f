"""Shared fixtures. Each plugin module hands out one kind of real, cheap thing (see STYLE.md #12)."""

pytest_plugins = [
    "tests.plugins.cli",
    "tests.plugins.clock",
    "tests.plugins.env",
    "tests.plugins.emulator",
    "tests.plugins.processes",
    "tests.plugins.store",
    "tests.plugins.postgres",
    "tests.plugins.s3",
    "tests.plugins.azurite",
    "tests.plugins.gateway",  # last: it uses the others
]
