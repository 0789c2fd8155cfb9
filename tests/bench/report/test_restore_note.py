"""Where the perfect filter itself does not restore the model, the cleaning table says so in words (issue 28 item 4),
and says nothing where it does."""

from __future__ import annotations

import json

import pandas as pd

from hansbench.bench.engine.store import ROW_COLUMNS
from hansbench.bench.report.leaderboard import build_sections


def _rows(restores: tuple[float, ...]) -> pd.DataFrame:
    base = dict(scenario="CH-33", model="classifier", explainer="", clusterer="", rule="", family="data-cleaning-baselines",
                split="clean_test", detail="", unit="%", higher_is_better=True)
    recs = []
    for seed, ok in enumerate(restores):
        recs += [dict(seed=seed, stage="none", metric="class-acc", value=80.0),
                 dict(seed=seed, stage="oracle", metric="class-acc", value=1.7 if not ok else 79.0),
                 dict(seed=seed, stage="oracle", metric="oracle-restores", value=ok, unit="bool",
                      detail=json.dumps({"restores": "the perfect filter leaves 1.7 % clean stop accuracy"
                                         if not ok else "it restores the model"}))]
    return pd.DataFrame([{**base, **r} for r in recs])[ROW_COLUMNS]


def _notes(rows: pd.DataFrame) -> str:
    return " ".join(t.note for s in build_sections(rows) for t in s.tables if t.id == "cleaning")


def test_a_perfect_filter_that_fails_is_said_in_words():
    note = _notes(_rows((0.0, 1.0, 0.0)))
    assert "does not restore the model on 2 of 3 seeds" in note
    assert "leaves 1.7 % clean accuracy on the affected class, the poisoned model 80.0 %" in note
    assert "does not restore" not in _notes(_rows((1.0, 1.0, 1.0)))
