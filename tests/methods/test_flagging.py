"""Flagging rules (issue 28 item 1; PAPERS.md §9): each rule on constructed clusterings and scores.

A 50/50 split (smaller-cluster and relative-size abstain), a poisoned majority (relative-size flags the clean
minority: its documented assumption), a clean class (relative-size on balanced clusters, silhouette on a low
silhouette: abstain), a 30/70 split (relative-size flags the 30), the silhouette against scikit-learn and an
independent implementation, score budgets (F1 1 on planted outliers at the true rate; the 1.5 × 0.2 size),
own-flag, exclusionary reclassification with a fake retraining, apply_rule's refusals and the CLI listing.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, silhouette_score

from hansbench.bench.cli import main
from hansbench.methods.flagging.base import (
    DETECTS_BY,
    Flagging,
    FlaggingError,
    FlaggingRule,
    Split,
    apply_rule,
    silhouette_of,
)
from hansbench.registry import clusterers, flagging_rules

BUILTINS = ("smaller-cluster", "relative-size", "silhouette", "exclusionary-reclassification", "true-rate-budget",
            "upper-bound-budget", "own-flag")


def split_of(labels, *, scores=None, detects_by="clusters", own_flagged=None, silhouette=None, true_rate=0.0,
             reclassify=None, inspected_class=-1) -> Split:
    return Split(np.asarray(labels, dtype=np.int64), None if scores is None else np.asarray(scores, dtype=float),
                 detects_by, own_flagged, silhouette, true_rate, reclassify, inspected_class)


def blocks(*sizes: int) -> np.ndarray:
    """Labels 0, 1, ... in consecutive blocks of ``sizes``."""
    return np.repeat(np.arange(len(sizes)), sizes)


def rule(name: str, **options) -> FlaggingRule:
    return flagging_rules.get(name)(**options)


def run(name: str, split: Split, **options) -> Flagging:
    return apply_rule(rule(name, **options), split)


# -- smaller cluster and relative size ------------------------------------------------------------------------

def test_a_symmetric_split_has_no_smaller_cluster_and_no_small_cluster():
    split = split_of(blocks(100, 100))
    out = run("smaller-cluster", split)
    assert out.abstained and not out.flagged.any()
    assert "2 clusters of 0.50 each" in out.reason and "symmetric" in out.reason
    out = run("relative-size", split)
    assert out.abstained and "0.50" in out.reason


def test_smaller_cluster_flags_the_strictly_smaller_one_and_abstains_on_a_tie_for_smallest():
    out = run("smaller-cluster", split_of(blocks(70, 30)))
    assert not out.abstained and out.flagged.tolist() == [False] * 70 + [True] * 30
    assert "cluster 1 holds 0.30" in out.reason
    assert run("smaller-cluster", split_of(blocks(50, 25, 25))).abstained  # two tie for smallest
    assert run("smaller-cluster", split_of(blocks(51, 49))).flagged.sum() == 49  # one image decides
    assert run("smaller-cluster", split_of(np.zeros(10, dtype=int))).abstained  # one cluster


def test_relative_size_flags_the_30_of_a_30_70_split():
    poisoned = np.r_[np.zeros(70, bool), np.ones(30, bool)]
    out = run("relative-size", split_of(blocks(70, 30)))
    assert not out.abstained and f1_score(poisoned, out.flagged) == 1.0
    assert out.reason == "cluster 1 holds 0.30 of the class, under 0.35: flagged"
    assert out.info["flagged_clusters"] == [1] and out.info["n_flagged"] == 30


def test_relative_size_at_its_threshold_does_not_flag():
    """Less than the threshold, as ART's: a cluster of exactly 35 of 100 stays; 34 of 100 is flagged."""
    assert run("relative-size", split_of(blocks(65, 35))).abstained
    assert run("relative-size", split_of(blocks(66, 34))).flagged.sum() == 34
    assert run("relative-size", split_of(blocks(60, 40)), threshold=0.4).abstained
    assert run("relative-size", split_of(blocks(61, 39)), threshold=0.4).flagged.sum() == 39


def test_a_poisoned_majority_makes_relative_size_flag_the_clean_minority():
    """70 poisoned and 30 clean images, perfectly separated: the rule assumes poison is the minority, so it flags
    the 30 clean images (F1 0 against the poison) — its documented behaviour, which the tables must show."""
    labels = blocks(70, 30)
    poisoned = labels == 0
    out = run("relative-size", split_of(labels, true_rate=0.7))
    assert not out.abstained and out.flagged.sum() == 30 and not (out.flagged & poisoned).any()
    assert f1_score(poisoned, out.flagged) == 0.0
    assert not run("smaller-cluster", split_of(labels)).flagged[poisoned].any()  # the same for the smaller cluster


def test_a_clean_class_split_into_balanced_clusters_makes_relative_size_abstain():
    for sizes in [(100, 100), (55, 45), (40, 30), (36, 64)]:
        out = run("relative-size", split_of(blocks(*sizes)))
        assert out.abstained and not out.flagged.any() and "no cluster holds under 0.35" in out.reason, sizes


def test_relative_size_flags_every_small_cluster_of_several():
    out = run("relative-size", split_of(blocks(60, 20, 20)))
    assert not out.abstained and out.flagged.tolist() == [False] * 60 + [True] * 40
    assert out.info["flagged_clusters"] == [1, 2]


# -- silhouette -------------------------------------------------------------------------------------------------

def two_blobs(gap: float, n: tuple[int, int] = (70, 30), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.r_[rng.normal(0.0, 1.0, (n[0], 5)), rng.normal(gap, 1.0, (n[1], 5))]
    return x[:, None, :], blocks(*n)


def naive_silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Rousseeuw 1987 written out: s_i = (b_i - a_i) / max(a_i, b_i), a mean over the samples."""
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    s = []
    for i in range(len(x)):
        own = labels == labels[i]
        a = d[i, own].sum() / (own.sum() - 1)
        b = min(d[i, labels == c].mean() for c in np.unique(labels) if c != labels[i])
        s.append((b - a) / max(a, b))
    return float(np.mean(s))


def test_silhouette_of_is_scikit_learns_and_rousseeuws():
    views, labels = two_blobs(4.0)
    value = silhouette_of(views, labels)
    assert value == pytest.approx(silhouette_score(views[:, 0], labels))
    assert value == pytest.approx(naive_silhouette(views[:, 0], labels), abs=1e-12)
    assert silhouette_of(views, np.zeros(100, dtype=int)) is None  # one cluster: undefined


def test_silhouette_flags_a_clear_small_cluster_and_abstains_on_an_unclear_split():
    poisoned = blocks(70, 30) == 1
    views, labels = two_blobs(6.0)
    clear = silhouette_score(views[:, 0], labels)
    assert clear > 0.1
    out = run("silhouette", split_of(labels, silhouette=clear))
    assert not out.abstained and f1_score(poisoned, out.flagged) == 1.0 and f"{clear:.3f}" in out.reason
    views, labels = two_blobs(0.0)  # one blob cut in two: no structure
    unclear = silhouette_score(views[:, 0], labels)
    assert unclear < 0.1
    out = run("silhouette", split_of(labels, silhouette=unclear))
    assert out.abstained and "not above 0.1" in out.reason
    assert run("silhouette", split_of(labels, silhouette=None)).abstained  # undefined


def test_silhouette_threshold_and_size_threshold():
    labels = blocks(70, 30)
    assert run("silhouette", split_of(labels, silhouette=0.1)).abstained  # exceed, not reach
    assert not run("silhouette", split_of(labels, silhouette=0.11)).abstained
    assert run("silhouette", split_of(labels, silhouette=0.3), threshold=0.4).abstained
    assert run("silhouette", split_of(labels, silhouette=0.9), size_threshold=0.3).abstained  # 0.30 is not < 0.30
    assert run("silhouette", split_of(blocks(50, 50), silhouette=0.9)).abstained  # a clear but symmetric split


# -- score budgets ----------------------------------------------------------------------------------------------

def planted(n: int = 200, n_poisoned: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores with the poisoned images ranked above every clean one, at shuffled positions."""
    rng = np.random.default_rng(seed)
    poisoned = np.zeros(n, dtype=bool)
    poisoned[rng.choice(n, n_poisoned, replace=False)] = True
    scores = rng.random(n) + 2.0 * poisoned
    return scores, poisoned


@pytest.mark.parametrize("n_poisoned", [1, 20, 67, 150])
def test_the_true_rate_budget_reaches_f1_1_on_planted_outliers(n_poisoned):
    scores, poisoned = planted(n_poisoned=n_poisoned)
    split = split_of(np.zeros(200, dtype=int), scores=scores, detects_by="scores", true_rate=poisoned.mean())
    out = run("true-rate-budget", split)
    assert not out.abstained and f1_score(poisoned, out.flagged) == 1.0 and out.info["budget"] == n_poisoned
    assert "true poison rate" in out.reason and "ground truth" in out.reason


def test_the_true_rate_budget_abstains_on_a_clean_class():
    scores, _ = planted()
    out = run("true-rate-budget", split_of(np.zeros(200, dtype=int), scores=scores, detects_by="scores"))
    assert out.abstained and "budget of 0" in out.reason


def test_the_upper_bound_budget_flags_1_5_times_0_2_of_the_class():
    scores, poisoned = planted(n=200, n_poisoned=20)
    split = split_of(np.zeros(200, dtype=int), scores=scores, detects_by="scores", true_rate=0.1)
    out = run("upper-bound-budget", split)
    assert out.flagged.sum() == 60 and out.info["budget"] == 60 and out.flagged[poisoned].all()  # 1.5 × 0.2 × 200
    assert f1_score(poisoned, out.flagged) == pytest.approx(2 * 20 / (20 + 60))  # the budget caps F1 at 0.5 here
    assert run("upper-bound-budget", split, upper_bound=0.1, multiplier=1.0).flagged.sum() == 20
    tiny = split_of(np.zeros(3, dtype=int), scores=[0.0, 1.0, 2.0], detects_by="scores")
    assert run("upper-bound-budget", tiny).flagged.tolist() == [False, False, True]  # clipped up to 1
    assert run("upper-bound-budget", tiny, upper_bound=0.9).flagged.sum() == 2  # clipped down to N - 1


def test_budgets_break_ties_by_the_lower_index():
    split = split_of(np.zeros(6, dtype=int), scores=[1, 3, 3, 3, 0, 3], detects_by="scores", true_rate=0.5)
    assert run("true-rate-budget", split).flagged.tolist() == [False, True, True, True, False, False]


# -- own flag ---------------------------------------------------------------------------------------------------

def test_own_flag_flags_the_detectors_set_and_abstains_on_an_empty_one():
    out = run("own-flag", split_of([0, 1, 0, 1, 1], detects_by="set", own_flagged=1))
    assert out.flagged.tolist() == [False, True, False, True, True] and not out.abstained
    out = run("own-flag", split_of([0, 0, 0, 0], detects_by="set", own_flagged=1))
    assert out.abstained and not out.flagged.any() and "none of the 4" in out.reason


def test_prediction_mismatch_agreeing_everywhere_gives_own_flag_an_empty_set():
    agree = np.stack([np.linspace(0.1, 0.3, 8), -np.linspace(1.0, 2.0, 8)], axis=1)[:, None, :]
    est = clusterers.get("prediction-mismatch")()
    est.fit_predict(agree)
    res = est.result_
    out = run("own-flag", split_of(res.labels, scores=res.scores, detects_by=est.detects_by, own_flagged=res.flagged))
    assert out.abstained


# -- exclusionary reclassification ------------------------------------------------------------------------------

class FakeRetraining:
    """``reclassify``: the images of ``moved`` go to class 7 once their cluster is left out; others stay in 3."""

    def __init__(self, moved: np.ndarray):
        self.moved, self.calls = np.asarray(moved, dtype=bool), []

    def __call__(self, mask: np.ndarray) -> np.ndarray:
        self.calls.append(np.flatnonzero(mask).tolist())
        return np.where(self.moved[mask], 7, 3)


def test_exclusionary_reclassification_flags_a_cluster_that_goes_to_another_class():
    labels = blocks(70, 30)
    retrain = FakeRetraining(labels == 1)  # the 30: a dirty-label poison, reassigned to its source class
    out = run("exclusionary-reclassification", split_of(labels, reclassify=retrain, inspected_class=3))
    assert not out.abstained and out.flagged.tolist() == (labels == 1).tolist()
    assert retrain.calls == [list(range(70, 100))]  # the 70 are not a candidate (over half the class)
    assert "1.00 of it goes to another class" in out.reason and out.info["moved_share"] == {"1": 1.0}


def test_exclusionary_reclassification_keeps_a_cluster_that_stays_in_the_class():
    labels = blocks(70, 30)
    moved = np.zeros(100, dtype=bool)
    moved[70:80] = True  # a third of the small cluster moves: not more than half
    out = run("exclusionary-reclassification", split_of(labels, reclassify=FakeRetraining(moved), inspected_class=3))
    assert out.abstained and not out.flagged.any() and "0.33" in out.reason
    out = run("exclusionary-reclassification", split_of(labels, reclassify=FakeRetraining(moved), inspected_class=3),
              threshold=0.3)
    assert out.flagged.sum() == 30


def test_exclusionary_reclassification_abstains_without_retraining():
    out = run("exclusionary-reclassification", split_of(blocks(70, 30)))
    assert out.abstained and "no retraining" in out.reason
    assert flagging_rules.get("exclusionary-reclassification").needs_retraining
    with pytest.raises(FlaggingError, match="inspected_class"):
        run("exclusionary-reclassification", split_of(blocks(70, 30), reclassify=FakeRetraining(np.zeros(100))))


# -- the contract -----------------------------------------------------------------------------------------------

class Broken(FlaggingRule):
    """Returns whatever it was given."""

    applies_to = frozenset({"clusters"})

    def __init__(self, *, answer=None):
        self.answer = answer

    def flag(self, split):
        return self.answer


@pytest.mark.parametrize("answer, message", [
    (Flagging(np.ones(4, dtype=bool), True, "abstained"), "abstained but flagged 4"),
    (Flagging(np.ones(3, dtype=bool), False, "flagged"), r"shape \(3,\).*expected \(4,\) bool"),
    (Flagging(np.ones(4, dtype=int), False, "flagged"), "dtype int"),
    (Flagging(np.zeros(4, dtype=bool), False, "flagged"), "flagged no image without abstaining"),
    (Flagging(np.ones(4, dtype=bool), False, ""), "one sentence"),
    (Flagging(np.ones(4, dtype=bool), False, "ok", {"x": np.float32(1)}), "JSON"),
    ("flagged", "returned str, expected a Flagging"),
])
def test_apply_rule_refuses_a_malformed_flagging_naming_the_rule(answer, message):
    broken = Broken(answer=answer)
    broken.name = "broken-rule"
    with pytest.raises(FlaggingError, match=message) as err:
        apply_rule(broken, split_of([0, 0, 1, 1]))
    assert "'broken-rule'" in str(err.value) and "\n" not in str(err.value)


def test_apply_rule_refuses_a_rule_where_it_does_not_apply_and_a_malformed_split():
    with pytest.raises(FlaggingError, match="applies to scores detectors"):
        run("true-rate-budget", split_of([0, 1]))
    with pytest.raises(FlaggingError, match="true_rate"):
        run("smaller-cluster", split_of([0, 1], true_rate=1.5))
    with pytest.raises(FlaggingError, match="scores has shape"):
        run("true-rate-budget", split_of([0, 1], scores=[1.0], detects_by="scores"))


@pytest.mark.parametrize("name", BUILTINS)
def test_every_rules_not_applicable_matches_its_applies_to(name):
    r = rule(name)
    assert r.applies_to and r.applies_to <= set(DETECTS_BY)
    for kind in DETECTS_BY:
        why = r.not_applicable(kind)
        assert (why is None) == (kind in r.applies_to), (name, kind)
        assert why is None or (name in why and kind in why)


@pytest.mark.parametrize("name, options, message", [
    ("relative-size", {"threshold": 1.2}, r"threshold must be in \(0, 1\)"),
    ("relative-size", {"threshold": 0}, "threshold"),
    ("silhouette", {"threshold": 2.0}, r"threshold must be in \[-1, 1\)"),
    ("silhouette", {"size_threshold": -0.1}, "size_threshold"),
    ("exclusionary-reclassification", {"threshold": 1.0}, "threshold"),
    ("upper-bound-budget", {"upper_bound": 0.0}, "upper_bound"),
    ("upper-bound-budget", {"multiplier": -1}, "multiplier must be > 0"),
])
def test_options_out_of_range_fail_in_one_line_naming_the_option(name, options, message):
    with pytest.raises(ValueError, match=message) as err:
        rule(name, **options)
    assert name in str(err.value) and "\n" not in str(err.value)


def test_every_rule_is_deterministic_and_its_options_read_back():
    scores, poisoned = planted()
    for name in BUILTINS:
        r = rule(name)
        kind = sorted(r.applies_to)[0]
        split = split_of(blocks(140, 60), scores=scores, detects_by=kind, own_flagged=1, silhouette=0.5,
                         true_rate=poisoned.mean(), reclassify=FakeRetraining(blocks(140, 60) == 1), inspected_class=3)
        a, b = apply_rule(r, split), apply_rule(rule(name), split)
        assert a.flagged.tolist() == b.flagged.tolist() and a.reason == b.reason, name
        assert type(r)(**r.options).options == r.options


def test_detects_by_of_the_clusterers():
    assert clusterers.get("spray").detects_by == "clusters"
    assert clusterers.get("activation-clustering").detects_by == "clusters"
    for name in ("spectral-signatures", "spectre", "strip", "training-loss", "random-filter"):
        assert clusterers.get(name).detects_by == "scores", name
    assert clusterers.get("prediction-mismatch").detects_by == "set"
    assert {c.detects_by for _, c in clusterers.items()} <= set(DETECTS_BY)


def test_hansbench_list_flagging_shows_every_builtin_rule_with_its_first_docstring_line(capsys):
    assert main(["list", "flagging"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    for name in BUILTINS:
        first = flagging_rules.get(name).__doc__.strip().splitlines()[0]
        assert name in lines and first in lines[name], name
