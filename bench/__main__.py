"""``make bench``: run every ``bench/bench_*.py`` module's ``run()`` and print one table.

Each module returns a list of :class:`bench.common.Figure`. The table and ``bench/results.json``
list each figure, its target from the issue, and the peer ratio where a peer ran side by side.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import traceback
from pathlib import Path

from bench.common import Figure

HERE = Path(__file__).resolve().parent


def main(selected: list[str]) -> int:
    figures: list[Figure] = []
    failures: list[str] = []
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    for name in names:
        if selected and not any(s in name for s in selected):
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            figures.extend(module.run())
        except Exception:
            failures.append(name)
            traceback.print_exc()
    width = max((len(f.name) for f in figures), default=10)
    print(f"{'figure':<{width}}  {'value':>12} {'unit':<8} {'target':<14} {'met':<4} {'peer (same run)':<34} ratio")
    for f in figures:
        met = "-" if f.ok is None else ("yes" if f.ok else "NO")
        peer = "" if f.peer is None else f"{f.peer} = {f.peer_value:.4g}"
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}x"
        print(f"{f.name:<{width}}  {f.value:>12.4g} {f.unit:<8} {f.target:<14} {met:<4} {peer:<34} {ratio}")
        if f.note:
            print(f"{'':<{width}}  ({f.note})")
    (HERE / "results.json").write_text(json.dumps([f.as_dict() for f in figures], indent=2) + "\n")
    if failures:
        print(f"bench modules that failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
