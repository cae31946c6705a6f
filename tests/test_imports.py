"""The import rules of STYLE.md, checked: one-way package imports, lazy heavy imports, leaf modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("duckdb", "polars", "pyarrow", "httpx", "numpy", "pydantic")


def _imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _ours(path: Path) -> set[str]:
    return {m for m in _imports(path) if m.split(".")[0] in PACKAGES}


#: what each top-level package may import of ours: imports point one way, towards hive_core.
#: hive_cli is the composition root (it may import everything; nothing imports it), ``hive`` is the
#: library's front door (a Session that records into the event log and reads the store), and the
#: emulator is its own program over hive_core's pricing.
ALLOWED = {
    "hive_core": {"hive_core"},
    "ingest": {"hive_core", "ingest"},
    "queries": {"hive_core", "queries"},
    "jobs": {"hive_core", "ingest", "queries", "jobs"},
    "hive_emulator": {"hive_core", "hive_emulator"},
    "hive": {"hive_core", "ingest", "queries", "hive"},
    "hive_gateway": {"hive_core", "ingest", "queries", "hive", "hive_gateway"},
    "hive_cli": {"hive_core", "ingest", "queries", "jobs", "hive", "hive_gateway", "hive_cli"},
}
PACKAGES = set(ALLOWED)


@pytest.mark.parametrize("path", [p for pkg in sorted(ALLOWED) for p in _modules(pkg)],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_one_way(path: Path) -> None:
    package = path.relative_to(REPO).parts[0]
    bad = {m for m in _ours(path) if m.split(".")[0] not in ALLOWED[package]}
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}: {package} may import only {sorted(ALLOWED[package])}"


@pytest.mark.parametrize("path", [p for pkg in ("jobs", "hive_cli") for p in _modules(pkg)],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_others_use_only_the_public_surface_of_ingest(path: Path) -> None:
    assert not {m for m in _imports(path) if m.startswith("ingest.")}, "import from `ingest`, not its modules"


@pytest.mark.parametrize("name", ["errors", "ids", "clock", "store/layout", "store/pinning"])
def test_leaf_modules_import_nothing_internal(name: str) -> None:
    assert not _ours(REPO / "hive_core" / f"{name}.py")


@pytest.mark.parametrize("package", ["hive_cli", "hive_cli/hive", "hive_cli/hive_jobs"])
def test_cli_modules_import_heavy_libraries_lazily(package: str) -> None:
    for path in sorted((REPO / package).glob("*.py")):
        eager = {m for m in _imports(path, top_level_only=True) if m.split(".")[0] in HEAVY}
        assert not eager, f"{path} imports {eager} at module level: import them inside the command"


@pytest.mark.parametrize("tool", ["hive_cli.hive", "hive_cli.hive_jobs"])
def test_help_loads_no_heavy_library(tool: str) -> None:
    code = (
        "import sys\n"
        f"from {tool} import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY:' + ','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.splitlines()[-1] == "HEAVY:", f"--help imported {out.stdout.splitlines()[-1]}"


def test_daily_rollup_process_stays_off_the_slow_imports(tmp_path: Path) -> None:
    """pyarrow.compute, pyarrow.dataset and numpy.ma are 60-70 ms of a 0.5 s one-day rollup
    (the README's performance notes): a rollup with its post steps must not import them."""
    from jobs.simulate.simulate import simulate

    simulate(tmp_path, days=2, calls_per_day=300, seed=3)
    slow = ("pyarrow.compute", "pyarrow.dataset", "pyarrow.acero", "numpy.ma", "pydantic", "polars")
    code = (
        "import sys\n"
        "from hive_cli.hive_jobs import main\n"
        f"try:\n    main(['--data-dir', {str(tmp_path)!r}, 'rollup', '--daily'])\nexcept SystemExit:\n    pass\n"
        f"print('SLOW:' + ','.join(m for m in {slow!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert "rolled up 2 day(s)" in out.stdout
    assert out.stdout.splitlines()[-1] == "SLOW:", f"the rollup imported {out.stdout.splitlines()[-1]}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path, known: set[str]) -> set[str]:
    """Our modules ``path`` imports at run time, at any depth (``if TYPE_CHECKING:`` blocks excluded:
    they never execute). ``from package import module`` counts as importing the module."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return {m for m in found if m in known}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    """No two modules import each other, directly or around a loop, even from inside a function:
    a cycle means two modules share one concept and neither owns it. A package's ``__init__``
    re-exporting its modules is the one edge left out (a package may re-export what it contains)."""
    paths = {_module_name(p): p for pkg in sorted(ALLOWED) for p in _modules(pkg)}
    known = set(paths)
    graph = {name: {m for m in _runtime_imports(path, known) if m != name and not name.startswith(f"{m}.")}
             for name, path in paths.items()}
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


#: the batch stages in pipeline order: a stage imports only stages before it (rankings and budget
#: are siblings), so the rollup never calls up into what consumes it. simulate stands alone: it
#: writes synthetic events and neither imports nor is imported by another stage.
STAGES = {"rollup": 1, "rankings": 2, "budget": 2, "eval": 3, "insights": 3, "pipeline": 4, "reports": 5}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "jobs" and len(parts) > 1 else None


@pytest.mark.parametrize("path", _modules("jobs"), ids=lambda p: str(p.relative_to(REPO)))
def test_stages_import_only_earlier_stages(path: Path) -> None:
    own = _stage(_module_name(path))
    if own is None:
        return
    for imported in {_stage(m) for m in _ours(path)} - {None, own}:
        assert imported in STAGES, f"{path.relative_to(REPO)} imports the {imported} stage (no stage does)"
        assert own in STAGES and STAGES[imported] < STAGES[own], (
            f"{path.relative_to(REPO)} ({own}) imports the {imported} stage: stages import only earlier ones "
            f"({' < '.join(STAGES)})")


def test_ingest_loads_only_what_a_caller_takes() -> None:
    """``import ingest`` imports none of its modules (PEP 562); each public name is what its module
    defines, also after ``ingest.verify`` imported ``ingest.compact`` (a submodule named like a
    function must not shadow it), and ``from ingest import EventLog`` leaves compaction out."""
    import ingest

    code = (
        "import sys\n"
        "import ingest\n"
        "print(sorted(m for m in sys.modules if m.startswith('ingest.')))\n"
        "from ingest import EventLog\n"
        "print('ingest.compact' in sys.modules, 'ingest.verify' in sys.modules)\n"
        "import ingest.verify\n"
        "from ingest import compact, verify\n"
        "print(compact.__module__, verify.__module__, ingest.compact is compact)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.splitlines() == ["[]", "False False", "ingest.compact ingest.verify True"]
    for name in ingest.__all__:
        value = getattr(ingest, name)
        assert value.__name__ == name and value.__module__.startswith("ingest."), name
    assert set(ingest.__all__) <= set(dir(ingest))
