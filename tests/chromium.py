"""A real headless Chromium for the HTML report: load a page offline, measure what it drew, screenshot it.

The report itself has no script. To measure it, :func:`measure` loads a copy with one script appended
that reads, after layout, the bounding box (``getBoundingClientRect``) of every ``<svg>`` and of every
``<text>`` inside it, and writes them as JSON into the DOM, which ``--dump-dom`` prints. Nothing is
mocked: the browser lays out the fonts it has, which is what a reader sees.

Used by ``tests/test_report.py`` (labels inside their box, no overlaps) and by ``tests/screenshots.py``
(the README's pictures).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["WIDTH", "chromium", "measure", "overflows", "overlaps", "screenshot"]

#: the window width pages are measured and pictured at
WIDTH = 1280
TIMEOUT_S = 120

_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--host-resolver-rules=MAP * ~NOTFOUND")  # any external fetch would fail and be logged

_MEASURE = """<script>
(function () {
  function box(r) { return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; }
  var out = {height: Math.ceil(document.documentElement.scrollHeight), svgs: []};
  document.querySelectorAll("svg").forEach(function (svg) {
    var texts = [];
    svg.querySelectorAll("text").forEach(function (t) {
      texts.push({text: t.textContent, box: box(t.getBoundingClientRect())});
    });
    out.svgs.push({id: svg.id, box: box(svg.getBoundingClientRect()), texts: texts});
  });
  var pre = document.createElement("pre");
  pre.id = "hive-measure";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def chromium() -> str:
    """The Chromium binary; a clear failure when it is missing (the report must be checked in a browser)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("chromium is not installed: `make test` installs it (apt-get install chromium); "
                           "the HTML report must be rendered in a real browser")
    return found


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium(), *_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def measure(html: Path, work: Path, *, width: int = WIDTH) -> dict[str, Any]:
    """Load ``html`` (a copy with the measuring script, in ``work``) at ``width`` px; the page's height and
    each SVG's box and text boxes (CSS pixels)."""
    work.mkdir(parents=True, exist_ok=True)
    page = work / f"measured-{html.name}"
    page.write_text(html.read_text().replace("</body>", _MEASURE + "</body>"))
    proc = _run([f"--window-size={width},900", "--dump-dom", page.as_uri()], work / "profile")
    if proc.returncode != 0:
        raise RuntimeError(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}")
    start = proc.stdout.index('<pre id="hive-measure">') + len('<pre id="hive-measure">')
    raw = proc.stdout[start:proc.stdout.index("</pre>", start)]
    return json.loads(raw.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&"))  # type: ignore[no-any-return]


def overflows(svg: dict[str, Any], slack: float = 0.5) -> list[str]:
    """The texts of ``svg`` whose box leaves the SVG's box (by more than ``slack`` px)."""
    outer = svg["box"]
    return [f"{t['text']!r} {t['box']} outside {outer}" for t in svg["texts"]
            if t["box"]["left"] < outer["left"] - slack or t["box"]["right"] > outer["right"] + slack
            or t["box"]["top"] < outer["top"] - slack or t["box"]["bottom"] > outer["bottom"] + slack]


def overlaps(svg: dict[str, Any], slack: float = 0.5) -> list[str]:
    """Pairs of texts of ``svg`` whose boxes overlap (by more than ``slack`` px each way)."""
    found = []
    texts = svg["texts"]
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            x = min(a["box"]["right"], b["box"]["right"]) - max(a["box"]["left"], b["box"]["left"])
            y = min(a["box"]["bottom"], b["box"]["bottom"]) - max(a["box"]["top"], b["box"]["top"])
            if x > slack and y > slack:
                found.append(f"{a['text']!r} overlaps {b['text']!r}")
    return found


def screenshot(html: Path, png: Path, work: Path, *, width: int = WIDTH) -> Path:
    """A PNG of the whole page ``html`` at ``width`` px (its height measured first)."""
    height = measure(html, work, width=width)["height"]
    png.parent.mkdir(parents=True, exist_ok=True)
    proc = _run([f"--window-size={width},{height}", f"--screenshot={png}", html.as_uri()], work / "profile")
    if proc.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot ({proc.returncode}): {proc.stderr[-2000:]}")
    return png
