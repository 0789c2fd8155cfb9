"""Issue 28 item 2 and issue 29 item 5: the summary answers two questions (does the detector separate the poison?
can it flag it unaided?), the detection matrix is one table per scenario and model with a header per value, the
floors and baselines in it, and rows of the old protocol are named so instead of failing."""

from __future__ import annotations

import pandas as pd
import pytest

from hansbench.bench.engine.store import ROW_COLUMNS
from hansbench.bench.report.leaderboard import build_sections
from hansbench.bench.report.summary import BY_COLUMN, FLAG_COLUMN
from hansbench.bench.report.verdicts.protocol import OLD_RULE

SEEDS = range(6)
BASE = dict(scenario="CH-50", seed=0, model="classifier", explainer="", clusterer="", rule="", split="", stage="",
            detail="", unit="", family="cluster-detection", higher_is_better=True)


def frame(records: list[dict], columns=ROW_COLUMNS) -> pd.DataFrame:
    return pd.DataFrame([{**BASE, **r} for r in records])[[c for c in columns]]


def split_rows(e, c, ari, f1, scenario="CH-50", model="classifier", auroc=None):
    out = []
    for s in SEEDS:
        out += [dict(scenario=scenario, model=model, explainer=e, clusterer=c, metric="cluster-ari", value=ari, seed=s),
                dict(scenario=scenario, model=model, explainer=e, clusterer=c, metric="cluster-f1", value=f1, seed=s)]
        if auroc is not None:
            out.append(dict(scenario=scenario, model=model, explainer=e, clusterer=c, metric="auroc", value=auroc,
                            seed=s))
    return out


def flag_rows(e, c, rule, f1s, abstained, false_alarm, model="classifier"):
    """Flag rows here (flag-f1 and abstained by seed), the share flagged here (0.5: never the false alarm) and on
    the clean control (``false_alarm``)."""
    fam = dict(family="flag-detection", explainer=e, clusterer=c, rule=rule, model=model)
    out = []
    for s in SEEDS:
        out += [dict(**fam, metric="flag-f1", value=f1s[s], seed=s),
                dict(**fam, metric="abstained", value=abstained[s], seed=s, unit="bool", higher_is_better=False),
                dict(**fam, metric="flagged-fraction", value=0.5, seed=s, higher_is_better=False),
                dict(**fam, scenario="clean", metric="flagged-fraction", value=false_alarm, seed=s,
                     higher_is_better=False)]
    return out


@pytest.fixture(scope="module")
def config():
    from hansbench.bench.suite.config import validate
    from hansbench.bench.suite.record import to_record

    return to_record(validate({"suite": {"seeds": list(SEEDS)}, "models": {"classifier": {}, "protopnet": {}},
                               "scenarios": [dict(name="CH-50", poisoning="CH", fraction=0.5),
                                             dict(name="clean", poisoning="none", fraction=0.0)]}))


def symmetric_frame() -> pd.DataFrame:
    """lrp x spray separates perfectly (ARI 1) but splits the class 50/50: the smaller-cluster rule flags the clean
    half on half the seeds (flag F1 0) and relative-size abstains on two; gradcam x spray separates worse
    (ARI 0.6) and its flag F1 is steadier."""
    recs = split_rows("lrp", "spray", 1.0, 1.0) + split_rows("gradcam", "spray", 0.6, 0.8)
    recs += split_rows("activations", "activation-clustering", 0.5, 0.7)
    recs += split_rows("label-fit", "training-loss", 0.05, 0.55, auroc=0.9)
    recs += flag_rows("lrp", "spray", "smaller-cluster", [1, 0, 1, 0, 1, 0], [0] * 6, 0.5)
    recs += flag_rows("gradcam", "spray", "smaller-cluster", [0.7] * 6, [0] * 6, 0.4)
    recs += flag_rows("lrp", "spray", "relative-size", [1, 1, 0, 1, 0, 1], [0, 0, 1, 0, 1, 0], 0.1)
    recs += flag_rows("gradcam", "spray", "relative-size", [0.3] * 6, [0] * 6, 0.3)
    return frame(recs)


def test_a_symmetric_split_is_best_separated_and_its_abstentions_and_false_alarms_are_shown(config):
    sec = next(s for s in build_sections(symmetric_frame(), config=config) if s.scenario == "CH-50")
    s = sec.summary[0]
    # does it separate? by ARI (a partition) and, for the score detector, its own AUROC: never by a flag value
    assert s[BY_COLUMN] == "cluster-ari | auroc"
    assert "by cluster-ari: lrp × spray: 1 ± 0" in s["best explanation detector"]
    assert "by auroc: label-fit × training-loss: 0.900 ± 0" in s["best baseline"]
    assert "lrp × spray cluster-f1 1 ± 0" in s["analyst picks the right cluster"]
    # can it flag unaided? per rule: the best flag F1, its abstentions, its false alarms on the clean control
    flag = {t.split(":")[0]: t for t in s[FLAG_COLUMN].split("; ") if ":" in t.split(" ")[0]}
    assert flag["smaller-cluster"].startswith("smaller-cluster: gradcam × spray flag-f1 0.700 ± 0, abstained on 0 "
                                              "of 6 seeds")
    assert "relative-size: lrp × spray flag-f1 0.667" in s[FLAG_COLUMN]
    assert "relative-size: lrp × spray flag-f1 0.667; 4 of 6 seeds" in s[FLAG_COLUMN]
    rel = s[FLAG_COLUMN].split("relative-size: ")[1]
    assert "abstained on 2 of 6 seeds" in rel and "false alarms on clean (flagged-fraction, lower is better) 0.100 ± 0" \
        in rel


def test_the_detection_matrix_is_one_table_per_scenario_and_model_with_a_header_per_value(config):
    recs = symmetric_frame().to_dict("records")
    recs += split_rows("prp", "spray", 0.8, 0.9, model="protopnet")
    recs += flag_rows("prp", "spray", "smaller-cluster", [1.0] * 6, [0] * 6, 0.2, model="protopnet")
    recs += split_rows("label-fit", "prediction-mismatch", 0.1, 0.6, auroc=0.7)
    sections = build_sections(pd.DataFrame(recs)[ROW_COLUMNS], config=config)
    sec = next(s for s in sections if s.scenario == "CH-50")
    det = [t for t in sec.tables if t.id == "cluster-detection"]
    assert [t.title for t in det] == ["Detection matrix: classifier", "Detection matrix: protopnet"]
    t = det[0]
    cols = list(t.frame.columns)
    assert cols[:4] == ["explainer", "clusterer", "kind", "rule"]
    assert {"cluster-ari ↑", "auroc ↑", "flag-f1 ↑", "flagged-fraction ↓"} <= set(cols)
    assert not any(" / " in str(v) for v in t.frame.to_numpy().ravel())  # a header per value, no stacked cells
    f = t.frame.set_index(["explainer", "clusterer", "rule"])
    assert f.loc[("lrp", "spray", "–"), "cluster-ari ↑"].startswith("1 ± 0")
    assert f.loc[("lrp", "spray", "relative-size"), "abstained ↓"] == "abstained on 2 of 6 seeds"
    assert f.loc[("lrp", "spray", "–"), "flag-f1 ↑"] == ""  # the split's row has no flag value
    kinds = dict(zip(zip(t.frame.explainer, t.frame.clusterer), t.frame.kind))
    assert kinds[("label-fit", "training-loss")].startswith("floor")
    assert kinds[("label-fit", "prediction-mismatch")].startswith("floor")
    assert kinds[("activations", "activation-clustering")].startswith("baseline")
    assert list(t.frame.kind).index(kinds[("activations", "activation-clustering")]) > 0  # after the explanations
    assert set(t.tidy.rule) >= {"", "smaller-cluster", "relative-size"}


def test_old_protocol_rows_are_named_so_instead_of_failing(config):
    """A store from before issue 28: no ``rule`` column, the smaller cluster's F1 as ``cluster-f1-unsup``."""
    old_cols = [c for c in ROW_COLUMNS if c != "rule"]
    recs = split_rows("lrp", "spray", 1.0, 1.0) + split_rows("gradcam", "spray", 0.6, 0.8)
    recs += [dict(explainer=e, clusterer="spray", metric=m, value=v, seed=s)
             for s in SEEDS for e, m, v in (("lrp", "cluster-f1-unsup", float(s % 2)), ("gradcam", "cluster-f1-unsup", 0.7),
                                            ("lrp", "cluster-acc-unsup", 50.0))]
    recs += [dict(scenario="clean", explainer="lrp", clusterer="spray", metric="flagged-fraction", value=0.5, seed=s,
                  higher_is_better=False) for s in SEEDS]
    sections = build_sections(frame(recs, old_cols), config=config)
    sec = next(s for s in sections if s.scenario == "CH-50")
    s = sec.summary[0]
    assert "old smaller-cluster rule" in s["protocol"]
    assert s[FLAG_COLUMN].startswith(f"{OLD_RULE}: gradcam × spray flag-f1 0.700 ± 0, abstentions not recorded")
    assert "lrp × spray: 1 ± 0" in s["best explanation detector"]  # separability is untouched by the old flag
    t = next(t for t in sec.tables if t.id == "cluster-detection")
    assert OLD_RULE in set(t.frame.rule) and "old smaller-cluster rule" in t.note
    assert not any("unsup" in c for c in t.frame.columns)
