"""The winner's curse is said in words (issue 29 item 3): the summary's best detectors are chosen on the seeds
they are reported on, and the page names those seeds and the suite's development seeds."""

from __future__ import annotations

import pandas as pd

from hansbench.bench.report.page import selection_note
from hansbench.bench.suite.config import load_suite
from hansbench.bench.suite.record import to_record


def test_the_selection_note_names_the_reported_seeds_and_the_development_seeds():
    rows = pd.DataFrame({"seed": [3, 4, 3, 5, 6]})
    note = selection_note(rows, to_record(load_suite("quick")))  # dev_seeds 0-2
    assert "chosen on the seeds they are reported on (3-6)" in note and "winner's curse" in note
    assert "development seeds 0-2" in note
    assert "development seeds" not in selection_note(rows, {})
    assert selection_note(pd.DataFrame({"seed": []}), {}) == ""


def test_the_summary_carries_the_selection_note_in_every_format(tmp_path):
    from hansbench.bench.report.writers import write_leaderboard
    from hansbench.registry import metrics
    from tests.bench.report.test_leaderboard import Detection, det_rows

    with metrics.scratch():
        metrics.register("det", Detection)
        rows = det_rows({("a", "k"): [0.9, 0.8, 0.85], ("pixels", "k"): [0.4, 0.5, 0.45]})
        paths = write_leaderboard(rows, tmp_path, suite="s", config={})
    for name in ("leaderboard.md", "leaderboard.tex", "leaderboard.html"):
        text = paths[name].read_text()
        assert "winner" in text and "reported on (0-2)" in text, name
