"""The keys of a row's ``detail`` JSON that the harness reads: the one written protocol between the metrics that
write them and the leaderboard, cells and figures that read them.

``detail`` is free text, usually a JSON object; every other key is for people (the rule the explained
classes followed, a clusterer's diagnostics) and is kept, unread, in the store and ``metrics.csv``.
docs/results-store.md ("The detail column") lists the same keys.
"""

from __future__ import annotations

import json
from typing import Any

CURVE = "curve"
"""A list of floats: the mean curve whose area is the row's value; :mod:`hansbench.bench.report.figures.base` draws it
(``ordering_curves``). Written by relevance-ordering and relevance-deletion."""

MODE = "mode"
"""``"insertion"`` or ``"deletion"``: which way a :data:`CURVE` runs; labels the figure's x-axis
(:mod:`hansbench.bench.report.figures.base`). Written with :data:`CURVE`."""

PER_IMAGE = "per_image"
"""A list of floats, one per image, whose mean is the row's value (contract C5); :mod:`hansbench.bench.report.cells`
bootstraps a cell's interval over seeds x images from it. Written by localisation, randomisation and the
ordering metrics."""

FALLBACK = "fallback"
"""``true`` when the clusterer fell back to a simpler procedure; the leaderboard marks the cell with
``FALLBACK_MARK`` (:func:`hansbench.bench.report.leaderboard.per_seed`). Written by cluster-detection."""

FRACTION = "fraction"
"""The poisoned or removed share a value was measured at; ROAR's :data:`COLUMN_DETAIL` key."""

COLUMN_DETAIL = "column_detail"
"""Not a key of ``detail`` but the ``Metric`` attribute naming one (e.g. :data:`FRACTION`): its value splits a
value into columns (``leaderboard.per_seed``'s ``coldetail``), and the tidy CSVs carry it in a column of this
name."""

UNDEFINED = "undefined"
"""Why a row's value is ``None`` (undefined), in words; read by people, not by the harness."""


def parse(detail: Any) -> dict:
    """The ``detail`` JSON object of a row; {} when it is empty, not JSON or not an object."""
    if not detail:
        return {}
    try:
        value = json.loads(detail)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
