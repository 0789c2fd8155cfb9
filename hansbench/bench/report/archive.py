"""The run packed as one archive beside the page (issue 29 item 5): ``run.zip`` holds the page in every format,
every CSV, every figure, ``run.json`` (the record of every run in the store: suite configuration, commit, package
versions, device, CPU, threads, jobs, executor, wall time) and the results store itself while it is at most
:data:`STORE_MAX_BYTES` (a larger store stays out: ``run.json`` and the CSVs carry what the page shows). The
models' cache is never packed. Built by ``hansbench run`` and ``hansbench report`` after the page; never
committed (``.gitignore``: ``results/*/run.zip``).

The archive is reproducible: its members are sorted and carry a fixed timestamp, so the same files give the
same bytes.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

ARCHIVE = "run.zip"
RECORD = "run.json"
STORE = "results.sqlite"
STORE_MAX_BYTES = 50 * 2**20  # a results store above this stays out of the archive
PACKED_SUFFIXES = (".md", ".tex", ".html", ".csv", ".png", ".svg", ".pdf", ".json")
LEFT_OUT = (ARCHIVE, "outputs.json")  # the archive itself; the publish manifest (rewritten after packing)
_STAMP = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the same files give the same archive


def run_record(runs: Iterable) -> str:
    """The runs' records (:class:`hansbench.bench.engine.store.RunRecord`) as JSON, oldest first."""
    return json.dumps([asdict(r) for r in runs if r is not None], indent=1, sort_keys=True, default=str)


def members(out: Path, names: Iterable[str]) -> list[str]:
    """What goes into the archive: ``names`` and every page, CSV and figure file directly in ``out``, plus the
    store when it is small enough; never the archive itself or the manifest; sorted."""
    out = Path(out)
    found = {p.name for p in out.iterdir() if p.is_file() and p.suffix in PACKED_SUFFIXES}
    found |= {n for n in names if (out / n).is_file()}
    store = out / STORE
    if store.is_file() and store.stat().st_size <= STORE_MAX_BYTES:
        found.add(STORE)
    found -= set(LEFT_OUT)
    return sorted(found)


def pack(out: str | Path, runs: Iterable = (), names: Iterable[str] = ()) -> Path:
    """Write ``out/run.zip`` (see the module's docstring); its path. ``runs``: the store's run records, written as
    ``run.json`` into the archive; ``names``: more files in ``out`` to pack (figures in a subfolder, say)."""
    out = Path(out)
    path = out / ARCHIVE
    tmp = path.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo(RECORD, _STAMP), run_record(runs))
        for name in members(out, names):
            if name == RECORD:
                continue
            info = zipfile.ZipInfo(name, _STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, (out / name).read_bytes())
    tmp.replace(path)
    return path
