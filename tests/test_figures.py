"""Figures are drawn from the rows the relevance-ordering metric writes."""

from __future__ import annotations

import json

import pandas as pd

from hansbench.bench.figures import _curve, ordering_curves
from hansbench.bench.store import ROW_COLUMNS


def test_curves_read_the_metric_detail_and_draw_one_file_per_scenario_model(tmp_path):
    def row(explainer, curve, split):
        return dict(scenario="BD-30", seed=0, model="classifier", explainer=explainer, clusterer="",
                    family="relevance-ordering", metric="ordering-auc-class", split=split, stage="",
                    detail=json.dumps({"n_images": 2, "curve": curve}), value=1.0, unit="", higher_is_better=True)

    rows = pd.DataFrame([row("lrp", [0, 1, 2], "clean_test"), row("random", [0, 0.5, 1], "clean_test"),
                         row("lrp", [0, 2, 2], "artifact_test")])[ROW_COLUMNS]
    files = ordering_curves(rows, tmp_path)
    assert files == ["curves-BD-30-classifier-ordering.png"] and (tmp_path / files[0]).stat().st_size > 1000
    assert _curve("not json") is None and _curve('{"n_images": 3}') is None and _curve("[1, 2]") == [1, 2]
