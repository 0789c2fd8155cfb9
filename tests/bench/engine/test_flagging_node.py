"""Flagging rules through the engine (issue 28): a run plans one flagging node per clustering x rule that applies to
the detector's kind, its rows carry the rule, an abstaining rule flags and removes nothing, and data cleaning per
rule sits beside a random filter of the same size and the perfect filter, on a tiny suite."""

from __future__ import annotations

import json

import pandas as pd

from hansbench.bench.cli import main
from hansbench.bench.engine.planner import Planner
from hansbench.bench.engine.store import ResultsStore
from hansbench.bench.suite.config import DEFAULT_RULES, load_suite

from .test_graph import TINY

SUITE = TINY.replace('name = "CH-50"\npoisoning = "CH"\nfraction = 0.5', 'name = "CH-30"\npoisoning = "CH"\nfraction = 0.3')
SUITE = SUITE.replace("activation-clustering = {}", "activation-clustering = {}\nspectral-signatures = {}")
SUITE = SUITE.replace("cluster-detection = {}", """cluster-detection = {}
flag-detection = {}
data-cleaning = { explainers = ["activations"], clusterers = ["activation-clustering"], rules = ["smaller-cluster"] }
data-cleaning-baselines = {}""")


def test_rules_are_planned_per_detector_kind_and_rows_name_their_rule(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SUITE)
    suite = load_suite(path)
    assert tuple(suite.flagging) == DEFAULT_RULES  # no [flagging]: the defaults
    plan = Planner(suite).plan()
    flags = [n for n in plan.all_nodes() if n.type == "flagging"]
    by_clusterer: dict[str, set] = {}
    for n in flags:
        by_clusterer.setdefault(n.ids["clusterer"], set()).add(n.params["rule"])
    assert by_clusterer["spray"] == by_clusterer["activation-clustering"] == {
        "smaller-cluster", "relative-size", "silhouette"}  # partitions: the cluster rules
    assert by_clusterer["spectral-signatures"] == {"true-rate-budget", "upper-bound-budget"}  # scores: budgets

    out = tmp_path / "out"
    assert main(["run", "--suite", str(path), "--out", str(out), "--no-progress", "--no-figures"]) == 0
    rows = ResultsStore(out / "results.sqlite").rows()
    flag = rows[rows.family == "flag-detection"]
    assert set(flag.rule) == {"smaller-cluster", "relative-size", "silhouette", "true-rate-budget",
                              "upper-bound-budget"}
    assert (rows[rows.family == "cluster-detection"].rule == "").all()  # separability: no rule decides it
    wide = flag.pivot_table(index=["explainer", "clusterer", "rule"], columns="metric", values="value")
    abstained = wide[wide.abstained == 1.0]
    assert (abstained["flagged-fraction"] == 0).all() and (abstained["flag-f1"] == 0).all()
    # the true-rate budget flags exactly as many images as are poisoned
    budget = flag[(flag.rule == "true-rate-budget") & (flag.metric == "flag-f1")].iloc[0]
    d = json.loads(budget.detail)
    assert d["n_flagged"] == d["n_poisoned"] > 0

    clean = rows[rows.family == "data-cleaning"]
    assert set(clean.rule) == {"smaller-cluster"} and set(clean.stage) == {"cleaned", "random"}
    removed = clean[clean.metric == "n-removed"].set_index("stage").value
    assert removed["cleaned"] == removed["random"]  # the random filter removes as many
    base = rows[rows.family == "data-cleaning-baselines"]
    assert {"none", "oracle"} <= set(base.stage) and "oracle-restores" in set(base.metric)
    oracle_n = base[(base.stage == "oracle") & (base.metric == "n-removed")].value.iloc[0]
    assert oracle_n == d["n_poisoned"]  # the perfect filter removes exactly the poisoned images
    jobs = ResultsStore(out / "results.sqlite").jobs()
    assert set(jobs[jobs.node_type == "flagging"].rule) >= {"smaller-cluster", "true-rate-budget"}
    assert isinstance(rows, pd.DataFrame)


def test_a_plugin_rule_runs_from_a_suite_and_names_its_rows(tmp_path):
    """An outside rule, registered like a plugin's, is chosen in [flagging] and flags through the engine."""
    import numpy as np

    from hansbench.methods.flagging.base import Flagging, FlaggingRule
    from hansbench.registry import flagging_rules

    with flagging_rules.scratch():
        @flagging_rules.register("largest-cluster")
        class Largest(FlaggingRule):
            """Flags the largest cluster (a deliberately odd rule: a plugin's)."""

            applies_to = frozenset({"clusters"})

            def flag(self, split):
                ids, counts = np.unique(split.labels, return_counts=True)
                c = int(ids[np.argmax(counts)])
                return Flagging.of(split.labels == c, f"cluster {c} is the largest: flagged")

        path = tmp_path / "s.toml"
        path.write_text(SUITE.replace("[metrics]", "[flagging]\nlargest-cluster = {}\n\n[metrics]"))
        out = tmp_path / "out"
        assert main(["run", "--suite", str(path), "--out", str(out), "--no-progress", "--no-figures"]) == 0
        rows = ResultsStore(out / "results.sqlite").rows()
    flag = rows[rows.family == "flag-detection"]
    assert set(flag.rule) == {"largest-cluster"}
    frac = flag[flag.metric == "flagged-fraction"].value
    assert (frac >= 0.5).all()  # the largest cluster holds at least half of a 2-cluster split
    assert "cluster" in json.loads(flag.detail.iloc[0])["reason"]
