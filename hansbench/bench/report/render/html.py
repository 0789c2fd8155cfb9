"""The HTML writer: one static page of a page document. Tables are split into parts that fit a 1280 px window
(:func:`hansbench.bench.report.render.columns.split_columns`) and sort by a click on a header (by the numbers
behind the cells, ``data-sort``); a figure opens in a CSS-only lightbox. Every text is escaped
(:func:`hansbench.bench.report.escape.html_text`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hansbench.bench.report import document as node
from hansbench.bench.report.escape import html_text
from hansbench.bench.report.figures.strip import cell_strip_svg
from hansbench.bench.report.leaderboard import Table, format_value
from hansbench.bench.report.render.columns import HTML_BUDGET, split_columns
from hansbench.bench.report.results import Grid
from hansbench.bench.report.tables import head

SORT_JS = """<script>
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], i = th.cellIndex;
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var key = function (tr) {
      var td = tr.cells[i], v = td && td.getAttribute('data-sort');
      return v === null || v === undefined ? [1, td ? td.textContent : ''] : [0, parseFloat(v)];
    };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x[0] !== y[0]) return x[0] - y[0];
      var c = typeof x[1] === 'number' ? x[1] - y[1] : String(x[1]).localeCompare(String(y[1]));
      return asc ? c : -c;
    }).forEach(function (tr) { body.appendChild(tr); });
  });
});
</script>"""

# No max-width on the page (a table is never clipped); headers wrap at spaces, cells do not; a figure opens in
# a CSS-only lightbox (its :target) and links to the full image and its vector twin.
CSS = ("body{font-family:system-ui,sans-serif;margin:1.2em;color:#222}"
       "table{border-collapse:collapse;margin:.6em 0;max-width:100%}"
       "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;font-size:13px;vertical-align:bottom}"
       "td{white-space:nowrap}th{white-space:normal;min-width:3em;background:#f2f2f2;cursor:pointer}"
       "td:first-child,th:first-child{text-align:left;white-space:normal}"
       "table.prose td{white-space:normal;text-align:left;min-width:6em}"
       "th[aria-sort=ascending]::after{content:' \\25B2'}th[aria-sort=descending]::after{content:' \\25BC'}"
       ".note,.part,.csv{color:#555;font-size:12px;max-width:1100px}.part{margin:.8em 0 0}"
       "figure{display:inline-block;margin:.5em;vertical-align:top}"
       "figure img{max-width:600px;border:1px solid #ddd}figcaption{font-size:12px;color:#444;max-width:600px}"
       ".lightbox{display:none}.lightbox:target{display:flex;position:fixed;inset:0;background:rgba(0,0,0,.85);"
       "align-items:center;justify-content:center;z-index:9}.lightbox img{max-width:96vw;max-height:92vh;"
       "background:#fff}.lightbox .close{position:absolute;top:8px;right:16px;color:#fff;font-size:28px;"
       "text-decoration:none}nav a{margin-right:1em}svg.strip{vertical-align:middle;margin-left:.3em}")


def _strip(t: Table, i: int, c) -> str:
    """The strip of dots of the table's cell at row ``i``, column header ``c`` when its seeds split (a bimodal
    cell shows its values, not an interval: issue 29); "" for every other cell and for tables without typed
    results. The frame's rows are the grid's rows in order, its headers the columns' :func:`head`."""
    grid = t.result
    if not isinstance(grid, Grid) or i >= len(grid.rows):
        return ""
    col = next((x for x in grid.columns if head(x) == c), None)
    cell = grid.cells.get((*grid.rows[i], col.name)) if col is not None else None
    return cell_strip_svg(cell, unit=col.unit) if cell is not None else ""


def _cell(t: Table, part, i: int, c) -> str:
    """One body cell: numeric cells carry ``data-sort`` (the number behind the text), others sort as text; a cell
    whose seeds split carries its strip of dots (already escaped markup) beside the text."""
    num = t.sort.iloc[i][c] if t.sort is not None and c in t.sort and i < len(t.sort) else None
    attr = " class='t'"
    if isinstance(num, (float, int, np.floating, np.integer)) and not isinstance(num, bool) and np.isfinite(num):
        attr = f" data-sort='{float(num):.10g}'"
    strip = _strip(t, i, c)
    text, href = html_text(format_value(part.iloc[i][c])), _links(t).get((i, c))
    text = f"<a href='{html_text(href)}'>{text}</a>" if href and text else text
    return f"<td{attr}>{text}{' ' + strip if strip else ''}</td>"


def _links(t: Table) -> dict:
    """A table's cell links by (row, header): its results' ``extra["links"]`` (e.g. the detection matrix's cells
    into the cluster explorer, :mod:`hansbench.bench.report.explorer`)."""
    r = t.result
    links = r.extra.get("links") if isinstance(r, Grid) else r.get("links") if isinstance(r, dict) else None
    return links or {}


def html_table(t: Table, anchor: str, prose: bool = False) -> str:
    """Parts of at most :data:`HTML_BUDGET` characters. ``prose``: cells are sentences (the summary): one part,
    cells wrap."""
    out = []
    parts = [t.frame] if prose else split_columns(t.frame, HTML_BUDGET)
    for j, part in enumerate(parts):
        cols = list(part.columns)
        head = "".join(f"<th scope='col' title='click to sort'>{html_text(c)}</th>" for c in cols)
        body = ["<tr>" + "".join(_cell(t, part, i, c) for c in cols) + "</tr>" for i in range(len(part))]
        pid = anchor if len(parts) == 1 else f"{anchor}-p{j + 1}"
        part_note = f"<p class='part'>part {j + 1} of {len(parts)}</p>" if len(parts) > 1 else ""
        cls = "sortable prose" if prose else "sortable"
        out.append(f"{part_note}<table class='{cls}' id='{html_text(pid)}'><thead><tr>{head}</tr></thead>"
                   f"<tbody>{''.join(body)}</tbody></table>")
    return "".join(out)


def html_figure(b: node.FigureBlock, n: int) -> str:
    """The figure (its caption, links to the full image and the vector twin) and its lightbox ``fig-<n>``."""
    box = f"fig-{n}"
    links = f"<a href='{html_text(b.file)}'>full image</a>" + (f" · <a href='{html_text(b.vector)}'>vector</a>"
                                                               if b.vector else "")
    return (f"<figure><a href='#{box}'><img src='{html_text(b.file)}' alt='{html_text(b.caption)}'></a>"
            f"<figcaption>{html_text(b.caption)} ({links})</figcaption></figure>"
            f"<div class='lightbox' id='{box}'><a class='close' href='#_' aria-label='close'>×</a>"
            f"<a href='#_'><img src='{html_text(b.file)}' alt='{html_text(b.caption)}'></a></div>")


@dataclass
class _Writer:
    """Walks the document; numbers the figures (their lightboxes) in reading order."""

    chunks: list[str]
    figures: int = 0

    def block(self, b: node.Block) -> None:
        if isinstance(b, node.Section):
            anchor = f" id='{html_text(b.anchor)}'" if b.anchor else ""
            self.chunks.append(f"<h{b.level}{anchor}>{html_text(b.title)}</h{b.level}>")
            for c in b.blocks:
                self.block(c)
        elif isinstance(b, node.TableBlock):
            t = b.table
            self.chunks += ([f"<h4>{html_text(t.title)}</h4>"] if b.heading else []) + [
                html_table(t, b.anchor, b.prose)] + ([f"<p class='note'>{html_text(t.note)}</p>"] if t.note else []) + (
                [f"<p class='csv'>Numbers: <a href='{html_text(b.csv)}'>{html_text(b.csv)}</a></p>"] if b.csv else [])
        elif isinstance(b, node.FigureBlock):
            self.figures += 1
            self.chunks.append(html_figure(b, self.figures))
        elif isinstance(b, node.BulletList):
            self.chunks += ["<ul>"] + [f"<li>{html_text(x)}</li>" for x in b.items] + ["</ul>"]
        elif isinstance(b, node.Banner):
            self.chunks.append(f"<p class='partial'><strong>{html_text(b.text)}</strong></p>")
        elif isinstance(b, node.Paragraph):
            self.chunks.append(f"<p>{html_text(b.text)}</p>")
        elif isinstance(b, node.Contents):
            self.chunks.append("<nav>" + "".join(f"<a href='#{html_text(anchor)}'>{html_text(title)}</a>"
                                                 for title, anchor in b.entries) + "</nav>")
        else:
            raise TypeError(f"no HTML for {type(b).__name__}")


def render(doc: node.Document) -> str:
    """The page as one HTML file (styles and the sorting script inline)."""
    w = _Writer([f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                 f"<meta name='viewport' content='width=device-width'><title>{html_text(doc.title)}</title>"
                 f"<style>{CSS}</style></head><body>", f"<h1>{html_text(doc.title)}</h1>"])
    for b in doc.blocks:
        w.block(b)
    return "\n".join(w.chunks + [SORT_JS, "</body></html>"])
