"""Names as pieces of file names, HTML ids and LaTeX labels: the one rule for every name hansbench writes
(a sweep's figure stem, a table's CSV, a figure's file); the suite and the report both use it."""

from __future__ import annotations


def slug(name: object) -> str:
    """``name`` with letters and digits, ``-``, ``_`` and ``.`` kept, everything else ``_``; never empty (``_``)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name)) or "_"
