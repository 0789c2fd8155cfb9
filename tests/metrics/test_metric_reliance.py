"""reliance: hand-built models whose reliance on the artifact is known by construction (no training)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from hansbench.datasets.base import ScenarioData, Split
from hansbench.metrics.base import EvalContext
from hansbench.registry import artifacts, metrics
from hansbench.testing import CornerSquare

H = 12
AFF, OTHER, TGT = 0, 1, 2



artifacts.register("test-reliance-corner", CornerSquare, replace=True)


def _scenario(backdoor: bool) -> ScenarioData:
    """30 test images, 10 per class; class k has a bright vertical third k. Half the affected-class
    images have a dim third (0.55 instead of 0.9). The artifact test stamps every affected image."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(30) % 3
    x = 0.5 * torch.rand(30, 3, H, H, generator=g)
    for k in range(3):
        x[labels == k, :, :, 4 * k:4 * k + 4] = 0.9
    dim = torch.nonzero(labels == AFF).flatten()[::2]
    x[dim, :, :, 0:4] = 0.55
    art_x, masks = CornerSquare().stamp(x)
    poisoned = labels == AFF
    art_x = torch.where(poisoned[:, None, None, None], art_x, x)
    masks = masks & poisoned[:, None, None]
    art = Split(art_x, labels, labels.clone(), poisoned, masks)
    clean = Split(x.clone(), labels.clone(), labels.clone(), torch.zeros(30, dtype=torch.bool), torch.zeros_like(masks))
    return ScenarioData("BD-t" if backdoor else "CH-t", clean, art, clean, ["stop", "other", "speed"],
                        affected_class=AFF, target_class=TGT if backdoor else None, artifact="test-reliance-corner",
                        meta={"poisoning": "BD" if backdoor else "CH"})


class HandModel(nn.Module):
    """logits = brightness of each vertical third, then ``rule`` edits them using the corner flag."""

    kind = "classifier"
    num_classes = 3

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def normalize(self, x01):
        return x01

    def forward(self, x):
        thirds = torch.stack([x[:, :, :, 4 * k:4 * k + 4].mean((1, 2, 3)) for k in range(3)], 1)
        corner = (x[:, :, -3:, -3:].mean((1, 2, 3)) > 0.95).float()
        return self.rule(thirds.clone(), corner)


def honest(t, c):
    return t


def flipper(t, c):  # the artifact pulls every image to the affected class; affected images are recognised anyway
    t[:, AFF] += 10 * c
    return t


def clever_hans(t, c):  # the affected class is recognised by the artifact alone
    t[:, AFF] = 10 * c - 1
    return t


def partial(t, c):  # dim affected images need the artifact; other classes' images are not flipped by it
    t[:, AFF] = t[:, AFF] - 0.35 + 10 * c * torch.relu(t[:, AFF] - 0.4)
    return t


def backdoor(t, c):
    t[:, TGT] += 10 * c
    return t


def leaky_backdoor(t, c):  # also sends clean affected images to the target
    t[:, TGT] += 10 * c + t[:, AFF]
    return t


def constant(t, c):
    return torch.tensor([0.0, 1.0, 0.0]).expand(t.shape[0], 3)


def _run(rule, backdoor_data=False, **options):
    data = _scenario(backdoor_data)
    ctx = EvalContext(data=data, model=HandModel(rule), seed=0, device=torch.device("cpu"))
    rows = metrics.get("reliance")(**options).evaluate(ctx)
    return {r["metric"]: r["value"] for r in rows}, rows


def _reference(rule, backdoor_data=False):
    """The same quantities by direct counting, one image at a time."""
    data, model = _scenario(backdoor_data), HandModel(rule)
    pred = lambda img: int(model(img[None]).argmax())  # noqa: E731
    art, clean = data.artifact_test, data.clean_test
    aff = [i for i in range(30) if int(clean.true_labels[i]) == AFF]
    out = {"clean-acc": 100 * sum(pred(clean.images[i]) == int(clean.true_labels[i]) for i in range(30)) / 30}
    if backdoor_data:
        out["asr"] = 100 * sum(pred(art.images[i]) == TGT for i in aff) / len(aff)
        out["clean-to-target"] = 100 * sum(pred(clean.images[i]) == TGT for i in aff) / len(aff)
    else:
        out["artifact-class-acc"] = 100 * sum(pred(art.images[i]) == AFF for i in aff) / len(aff)
        out["clean-class-acc"] = 100 * sum(pred(clean.images[i]) == AFF for i in aff) / len(aff)
        others = [i for i in range(30) if i not in aff and pred(clean.images[i]) != AFF]
        stamped = CornerSquare().stamp(clean.images[others])[0]
        out["flip-rate"] = 100 * sum(pred(s) == AFF for s in stamped) / len(others)
    return out


# partial: 5 of 10 affected images gained, none lost: McNemar p = 1/32, Bonferroni over the gap and the (empty)
# flip test 1/16 >= 0.05: ten images cannot show it (the coded scenarios below show it on enough images)
@pytest.mark.parametrize("rule, gap, flips, took", [
    (honest, 0, 0, 0.0), (flipper, 0, 100, 1.0), (clever_hans, 100, 100, 1.0), (partial, 50, 0, 0.0)])
def test_clever_hans_reliance(rule, gap, flips, took):
    v, rows = _run(rule)
    ref = _reference(rule)
    for name, value in ref.items():
        assert v[name] == pytest.approx(value), name
    assert v["acc-gap"] == pytest.approx(ref["artifact-class-acc"] - ref["clean-class-acc"])
    assert v["acc-gap"] == pytest.approx(gap) and v["flip-rate"] == pytest.approx(flips)  # known by construction
    assert v["took"] == took and v["near-chance"] == 0.0
    assert "asr" not in v
    assert json.loads(rows[0]["detail"])["poisoning"] == "CH"


def test_alpha_is_an_option():
    assert _run(partial)[0]["took-p"] == pytest.approx(2 / 32)  # Bonferroni: 2 x P(X >= 5), X ~ Bin(5, 1/2)
    assert _run(partial, alpha=0.07)[0]["took"] == 1.0
    assert _run(honest, alpha=1.0)[0]["took"] == 0.0  # no paired change: p = 1, never < alpha
    for bad in (20, -0.1, True, 0.0):
        with pytest.raises(ValueError, match="share in \\[0, 1\\]"):
            metrics.get("reliance")(alpha=bad)


# leaky: the clean images go to the target too, so no image is hit only with the trigger: it did not take
@pytest.mark.parametrize("rule, asr, to_target, took", [
    (backdoor, 100, 0, 1.0), (leaky_backdoor, 100, 100, 0.0), (honest, 0, 0, 0.0)])
def test_backdoor_reliance(rule, asr, to_target, took):
    v, rows = _run(rule, backdoor_data=True)
    ref = _reference(rule, backdoor_data=True)
    for name, value in ref.items():
        assert v[name] == pytest.approx(value), name
    assert v["asr"] == pytest.approx(asr) and v["clean-to-target"] == pytest.approx(to_target)
    assert v["took"] == took
    assert "acc-gap" not in v and "flip-rate" not in v
    assert v["asr-gap"] == pytest.approx(asr - to_target)


def test_near_chance_and_declared_units():
    v, rows = _run(constant)
    assert v["clean-acc"] == pytest.approx(100 / 3) and v["near-chance"] == 1.0
    assert _run(constant, chance_margin=0.0)[0]["near-chance"] == 1.0  # 33.3 % <= 33.3 %
    assert _run(honest)[0]["near-chance"] == 0.0
    declared = metrics.get("reliance").values
    assert metrics.get("reliance").level == "model"
    for r in rows + _run(backdoor, backdoor_data=True)[1]:
        assert (r["unit"], r["higher_is_better"]) == declared[r["metric"]]
        json.loads(r["detail"])


def test_insertion_flip_rate_is_the_artifact_insertion_one():
    """reliance reuses artifact-insertion's images and stamps: the same flip rate on a CH scenario."""
    data = _scenario(False)
    ctx = EvalContext(data=data, model=HandModel(flipper), seed=3, device=torch.device("cpu"))
    ins = {r["metric"]: r["value"] for r in metrics.get("artifact-insertion")(n_images=7).evaluate(ctx)}
    rel = {r["metric"]: r["value"] for r in metrics.get("reliance")(n_images=7).evaluate(ctx)}
    assert rel["flip-rate"] == ins["insertion-flip-rate"] and not math.isnan(rel["flip-rate"])


# -- gates on counts (issue 29): coded scenarios whose paired 2x2 table is set image by image --------------
BOTH, GAINED, LOST, NEITHER = 1, 2, 3, 4  # per affected image: hit with and without / with only / without only / none


def _coded(table: dict[int, int], n_other: int = 20, backdoor: bool = False, unpaired: bool = False) -> ScenarioData:
    """Affected images coded (pixel [0, 0, 0] = code / 10, [0, 0, 1] = true class / 10) so that CodedModel hits
    them as ``table`` says; ``n_other`` images of the other two classes. ``unpaired``: the clean test drops its
    first image, so the two test sets no longer hold the same images."""
    codes = [c for c, k in table.items() for _ in range(k)]
    labels = torch.tensor([AFF] * len(codes) + [OTHER, TGT] * (n_other // 2))
    x = torch.full((len(labels), 3, H, H), 0.3)
    x[:len(codes), 0, 0, 0] = torch.tensor(codes, dtype=torch.float) / 10
    x[:, 0, 0, 1] = labels.float() / 10
    poisoned = labels == AFF
    art_x = torch.where(poisoned[:, None, None, None], CornerSquare().stamp(x)[0], x)
    masks = CornerSquare().stamp(x)[1] & poisoned[:, None, None]
    art = Split(art_x, labels, labels.clone(), poisoned, masks)
    keep = slice(1, None) if unpaired else slice(None)
    clean = Split(x[keep].clone(), labels[keep].clone(), labels[keep].clone(), torch.zeros_like(poisoned[keep]),
                  torch.zeros_like(masks[keep]))
    return ScenarioData("BD-t" if backdoor else "CH-t", clean, art, clean, ["stop", "other", "speed"],
                        affected_class=AFF, target_class=TGT if backdoor else None, artifact="test-reliance-corner",
                        meta={"poisoning": "BD" if backdoor else "CH"})


class CodedModel(nn.Module):
    """Predicts ``hit`` for an affected image when its code says so given the corner flag, else ``miss``; other
    images: their true class (never flipped by the artifact)."""

    kind = "classifier"
    num_classes = 3

    def __init__(self, hit: int, miss: int):
        super().__init__()
        self.hit, self.miss = hit, miss

    def normalize(self, x01):
        return x01

    def forward(self, x):
        code, label = (x[:, 0, 0, 0] * 10).round().long(), (x[:, 0, 0, 1] * 10).round().long()
        corner = x[:, :, -3:, -3:].mean((1, 2, 3)) > 0.95
        hit = (code == BOTH) | ((code == GAINED) & corner) | ((code == LOST) & ~corner)
        cls = torch.where(label == AFF, torch.where(hit, self.hit, self.miss), label)
        return nn.functional.one_hot(cls, 3).float()


def _coded_run(table, backdoor=False, unpaired=False, **options):
    data = _coded(table, backdoor=backdoor, unpaired=unpaired)
    model = CodedModel(TGT, AFF) if backdoor else CodedModel(AFF, OTHER)
    rows = metrics.get("reliance")(**options).evaluate(EvalContext(data=data, model=model, seed=0,
                                                                   device=torch.device("cpu")))
    return {r["metric"]: r["value"] for r in rows}, rows


def _exact_one_sided(b: int, c: int) -> float:
    """P(X >= b), X ~ Bin(b + c, 1/2), summed by hand: an implementation independent of the metric's."""
    return sum(math.comb(b + c, k) for k in range(b, b + c + 1)) / 2 ** (b + c)


def test_mcnemar_p_on_a_constructed_table_matches_scipy():
    from scipy.stats import binomtest

    table = {BOTH: 20, GAINED: 9, LOST: 2, NEITHER: 5}
    v, _ = _coded_run(table, backdoor=True)  # a backdoor: the gap test alone decides
    assert (v["gained"], v["lost"], v["paired"]) == (9, 2, 36)
    p = binomtest(9, 11, 0.5, alternative="greater").pvalue
    assert v["took-p"] == pytest.approx(p, rel=1e-12) == pytest.approx(_exact_one_sided(9, 2), rel=1e-12)
    assert v["took"] == 1.0 and p < 0.05
    assert v["asr-gap"] == pytest.approx(100 * 7 / 36) and v["asr-gap-low"] < v["asr-gap"] < v["asr-gap-high"]
    ch, _ = _coded_run(table)  # Clever Hans: Bonferroni with the (empty: p = 1) flip test
    assert (ch["flip-to"], ch["flip-from"]) == (0, 0)
    assert ch["took-p"] == pytest.approx(min(1.0, 2 * p), rel=1e-12)


def test_a_gap_a_hair_under_20_points_is_decided_by_its_counts(monkeypatch):
    """Issue 29: CH-50 seed 3's gap was stored as 19.9999988 against ">= 20 pp" (12 of 60 images): the verdict
    must come from the 12 gained and 0 lost images, whatever the float of the gap."""
    import hansbench.metrics.reliance as reliance

    table = {BOTH: 40, GAINED: 12, NEITHER: 8}
    exact, _ = _coded_run(table)
    assert exact["acc-gap"] == 20.0  # from the counts: 100 * 12 / 60, no float32 share
    real = reliance._percent
    monkeypatch.setattr(reliance, "_percent", lambda k, n: real(k, n) * (1 - 6e-8) if n else math.nan)
    rounded, _ = _coded_run(table)
    assert rounded["acc-gap"] == pytest.approx(20.0 - 1e-6, abs=5e-7) and rounded["acc-gap"] < 20.0
    for name in ("took", "took-p", "gained", "lost", "paired"):
        assert rounded[name] == exact[name], name
    assert rounded["took"] == 1.0


def test_a_9_4_point_gap_on_enough_paired_images_took():
    """Issue 29's Fashion-MNIST sneakers: 100 % with the post-it, 90.6 % without. On 160 paired images (15 gained,
    none lost) McNemar rejects; on 32 (3 gained) it cannot (p = 1/8): the count, not the size of the gap, decides."""
    v, _ = _coded_run({BOTH: 145, GAINED: 15})
    assert v["acc-gap"] == pytest.approx(9.375) and v["artifact-class-acc"] == 100.0
    assert v["took-p"] == pytest.approx(2 * 0.5 ** 15) and v["took"] == 1.0
    assert 0 < v["acc-gap-low"] < 9.375 < v["acc-gap-high"] < 100
    few, _ = _coded_run({BOTH: 29, GAINED: 3})
    assert few["acc-gap"] == pytest.approx(9.375) and few["took"] == 0.0 and few["took-p"] == pytest.approx(0.25)


@pytest.mark.parametrize("table", [{BOTH: 50, NEITHER: 10}, {BOTH: 40, GAINED: 6, LOST: 6, NEITHER: 8}])
def test_no_paired_change_did_not_take(table):
    for backdoor in (False, True):
        v, _ = _coded_run(table, backdoor=backdoor)
        assert v["took"] == 0.0 and v["took-p"] >= 0.5
        gap = "asr-gap" if backdoor else "acc-gap"
        assert v[gap] == 0.0 and v[f"{gap}-low"] < 0 < v[f"{gap}-high"]


def test_unpaired_test_sets_fall_back_to_fishers_test_and_say_so():
    from scipy.stats import fisher_exact

    v, rows = _coded_run({BOTH: 20, GAINED: 10, NEITHER: 10}, backdoor=True, unpaired=True)
    detail = json.loads(rows[0]["detail"])
    assert "Fisher" in detail["test"] and "unpaired" in detail["interval"]
    assert v["gained"] is None and v["lost"] is None and v["paired"] is None
    # with: 30 of 40 sent to the target; without (the first, a BOTH image, dropped): 19 of 39
    assert v["took-p"] == pytest.approx(fisher_exact([[30, 10], [19, 20]], alternative="greater")[1])
    assert v["asr"] == 75.0 and v["clean-to-target"] == pytest.approx(100 * 19 / 39)


def _coverage(probs: tuple[float, float, float, float], n: int) -> float:
    """Exact coverage of the gap interval: every paired table of n images weighted by its multinomial probability."""
    from scipy.stats import multinomial

    from hansbench.metrics.reliance import paired_outcome

    true = 100 * (probs[1] - probs[2])
    total = 0.0
    for a in range(n + 1):
        for b in range(n + 1 - a):
            for c in range(n + 1 - a - b):
                d = n - a - b - c
                hit_with = torch.tensor([True] * (a + b) + [False] * (c + d))
                hit_without = torch.tensor([True] * a + [False] * b + [True] * c + [False] * d)
                out = paired_outcome(hit_with, hit_without)
                if out.low <= true <= out.high:
                    total += multinomial.pmf([a, b, c, d], n, probs)
    return total


# correlated (a, d large): ignoring the pairing (phi = 0) over-covers at 0.995; independent: near 0.95 either way
@pytest.mark.parametrize("probs", [(0.6, 0.15, 0.05, 0.2), (0.25, 0.25, 0.25, 0.25)])
def test_the_gap_interval_covers_the_true_gap_at_about_95_percent(probs):
    """Newcombe's paired interval (method 10): its exact coverage stays near the nominal 95 % on small tables."""
    assert 0.925 <= _coverage(probs, 25) <= 0.985


# -- the leaderboard reads the test's outcome and shows the gap beside it ------------------------------------------
def _seeded(runs: dict[tuple[str, int], dict]) -> tuple:
    """Reliance rows of coded scenarios as the leaderboard's per-seed frame: (model, seed) -> table."""
    import pandas as pd

    from hansbench.bench.report.leaderboard import normalise, per_seed, presentation

    rows = []
    for (model, seed), table in runs.items():
        for r in _coded_run(table)[1]:
            rows.append({**r, "scenario": "CH-t", "model": model, "seed": seed, "family": "reliance",
                         "explainer": "", "clusterer": "", "stage": r.get("stage", "")})
    pres = {"reliance": presentation("reliance")}
    return per_seed(normalise(pd.DataFrame(rows)), pres), pres


def test_gate_notes_read_the_tested_outcome_and_name_the_gap_with_its_interval():
    from hansbench.bench.report.leaderboard import gate_notes, reliance_axis

    seeded, pres = _seeded({("took", 0): {BOTH: 145, GAINED: 15}, ("took", 1): {BOTH: 145, GAINED: 15},
                            ("flat", 0): {BOTH: 50, NEITHER: 10}, ("flat", 1): {BOTH: 145, GAINED: 15}})
    notes = gate_notes(seeded, pres)
    assert "took" not in notes  # 15 of 160 gained, none lost, on both seeds: ranked
    (note,) = notes["flat"]
    assert note.startswith("poisoning did not take (seed 0: acc-gap +0.0 pp [")
    assert "took-p 1)" in note and "seed 1" not in note
    axis = reliance_axis(seeded, pres)
    assert axis["took"].startswith("seed 0: acc-gap +9.4 pp [+") and "; seed 1: acc-gap +9.4 pp" in axis["took"]
    assert "took-p 6.1e-05" in axis["took"]  # 2 * 0.5 ** 15, Bonferroni over the gap and flip tests
    assert axis["flat"].startswith("seed 0: acc-gap +0.0 pp")


def test_a_gate_value_is_read_as_yes_or_no_never_against_a_float():
    from hansbench.bench.report.leaderboard import gate_notes

    seeded, pres = _seeded({("m", 0): {BOTH: 50, NEITHER: 10}})
    half = seeded.assign(value=[0.5 if m == "took" else v for m, v in zip(seeded.metric, seeded.value)])
    with pytest.raises(ValueError, match="not 0 or 1"):
        gate_notes(half, pres)
