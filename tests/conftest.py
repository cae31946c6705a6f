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
    "tests.plugins.gcs",
    "tests.plugins.objstore",
    "tests.plugins.gateway",  # last: it uses the others
]

# Hypothesis's "input generation is slow" health check measures the machine, not the code: under
# CI's load (or a second suite beside it) a recursive JSON strategy once drew one input in 1.5 s and
# failed the run. The properties and their example counts stay as each test sets them.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("hive", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("hive")
