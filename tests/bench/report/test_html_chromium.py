"""The HTML leaderboard as a reader sees it: rendered by headless Chromium (Debian package ``chromium``).

Checks that every table and every figure of the page is there (images decoded, not broken links), that a
name carrying ``<``, ``&`` and ``%`` shows as that text, and that clicking a header sorts the table by the
numbers behind the cells (``data-sort``), that at 1280 px no table runs past the window (no clipped column), and
that figures open large. Skipped, with the reason, where no Chromium is installed.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from hansbench.bench.engine.store import ROW_COLUMNS  # noqa: E402
from hansbench.bench.report.figures.base import Figure  # noqa: E402
from hansbench.bench.report.leaderboard import build_sections  # noqa: E402
from hansbench.bench.report.writers import write_leaderboard  # noqa: E402

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                                          "(apt-get install -y chromium)")
EVIL = "ev<il> & 5% co"

# Appended to a copy of the page: reports what the reader would see in the document title.
PROBE = """<script>
window.addEventListener('load', function () {
  var tables = document.querySelectorAll('table');
  var imgs = Array.from(document.images).map(function (i) { return [i.getAttribute('src'), i.naturalWidth]; });
  var cells = Array.from(document.querySelectorAll('td')).map(function (td) { return td.textContent; });
  var t = Array.from(document.querySelectorAll('table.sortable[id^="t-"]')).sort(function (a, b) {
    return b.tBodies[0].rows.length - a.tBodies[0].rows.length; })[0];  // the table with the most rows
  var th = t.tHead.rows[0].cells[1];
  th.click();
  var asc = Array.from(t.tBodies[0].rows).map(function (r) { return r.cells[1].getAttribute('data-sort'); });
  th.click();
  var desc = Array.from(t.tBodies[0].rows).map(function (r) { return r.cells[1].getAttribute('data-sort'); });
  var W = window.innerWidth, clipped = [];
  tables.forEach(function (tb) { var r = tb.getBoundingClientRect(); if (r.right > W + 0.5) clipped.push([tb.id, r.right]); });
  var links = Array.from(document.querySelectorAll('figure a')).map(function (a) { return a.getAttribute('href'); });
  document.title = JSON.stringify({tables: tables.length, imgs: imgs, cells: cells, asc: asc, desc: desc,
                                   h1: document.querySelector('h1').textContent, width: W, clipped: clipped,
                                   scroll: document.documentElement.scrollWidth, links: links});
});
</script>"""


class _Title(HTMLParser):
    def __init__(self):
        super().__init__()
        self.inside, self.text = False, ""

    def handle_starttag(self, tag, attrs):
        self.inside = self.inside or tag == "title"

    def handle_endtag(self, tag):
        self.inside = self.inside and tag != "title"

    def handle_data(self, data):
        if self.inside:
            self.text += data


def rows():
    base = dict(scenario="CH-50", model="classifier", clusterer="", rule="", split="clean_test", stage="", unit="",
                higher_is_better=True)
    recs = []
    for seed in (0, 1):
        for e, v in ((EVIL, 3.0 + seed), ("plain", 1.0 + seed), ("random", 0.5)):
            recs.append(dict(explainer=e, family="relevance-ordering", metric="ordering-auc-class", value=v, seed=seed,
                             detail=json.dumps({"curve": [0, v]})))
        recs.append(dict(explainer=EVIL, clusterer="spray", family="cluster-detection", metric="cluster-acc",
                         value=70.0 + seed, seed=seed, split="", detail=json.dumps({"fallback": seed == 1})))
        recs.append(dict(explainer=EVIL, clusterer="spray", family="cluster-detection", metric="cluster-ari",
                         value=0.6 + 0.1 * seed, seed=seed, split="", detail=json.dumps({"fallback": seed == 1})))
    return pd.DataFrame([{**base, **r} for r in recs])[ROW_COLUMNS]


def render(path) -> dict:
    env = {**os.environ, "HOME": str(path.parent)}
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
           "--window-size=1280,2000",
           "--virtual-time-budget=5000", "--dump-dom", path.as_uri()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    parser = _Title()
    parser.feed(out.stdout)
    assert parser.text.startswith("{"), f"the probe did not run: {out.stdout[:500]}"
    return json.loads(parser.text)


def test_page_shows_every_table_figure_and_name_as_text(tmp_path):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(tmp_path / "curve 1%.png")
    plt.close(fig)
    figures = [Figure("CH-50", "curve 1%.png", f"curve of {EVIL}")]
    paths = write_leaderboard(rows(), tmp_path, suite=EVIL, figures=figures)
    page = paths["leaderboard.html"]
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    seen = render(probe)

    n_tables = 1 + sum(len(s.tables) for s in build_sections(rows()))  # + the summary (no table is split here)
    assert seen["tables"] == n_tables
    srcs = {src for src, _ in seen["imgs"]}
    assert "curve 1%.png" in srcs and all(s == "curve 1%.png" or s.startswith("cd-") for s in srcs)
    assert all(width > 0 for _, width in seen["imgs"]), f"a figure did not load: {seen['imgs']}"
    assert "curve 1%.png" in seen["links"] and any(x.startswith("#fig-") for x in seen["links"])  # full image, lightbox
    assert seen["h1"] == f"hansbench leaderboard: suite {EVIL}"
    assert any(c.startswith(EVIL) for c in seen["cells"]), "the name is not shown as its text"
    assert any(c.startswith(f"{EVIL} × spray") for c in seen["cells"])  # the summary names the best pair
    asc = [float(v) for v in seen["asc"] if v is not None]
    desc = [float(v) for v in seen["desc"] if v is not None]
    assert asc == sorted(asc) and desc == sorted(desc, reverse=True) and len(asc) >= 2
    assert html.escape(EVIL) in page.read_text()  # and escaped in the source


def wide_rows():
    """Twelve explainers x fourteen value columns with long names: wider than 1280 px as one table."""
    recs = []
    for seed in (0, 1, 2):
        for i in range(12):
            for j in range(14):
                recs.append(dict(scenario="CH-50", model="classifier", clusterer="", rule="", stage="", unit="%",
                                 higher_is_better=True, explainer=f"explainer-with-a-long-name-{i}",
                                 family="wide-plugin", metric=f"relevance-mass-acc-variant-{j}",
                                 split="artifact_test", value=0.1 * i + 0.01 * j + 0.003 * seed, seed=seed,
                                 detail=""))
    return pd.DataFrame(recs)[ROW_COLUMNS]


def test_no_column_is_clipped_at_1280_px(tmp_path):
    paths = write_leaderboard(wide_rows(), tmp_path, suite="wide")
    probe = tmp_path / "probe.html"
    probe.write_text(paths["leaderboard.html"].read_text().replace("</body>", PROBE + "</body>"))
    seen = render(probe)
    assert seen["width"] == 1280
    assert seen["clipped"] == [] and seen["scroll"] <= 1280, seen["clipped"]
    assert seen["tables"] > 1 + len(build_sections(wide_rows())[0].tables)  # the wide table was split into parts
