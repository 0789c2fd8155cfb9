"""``hansbench explain``: the maps of one image from a finished run's cached models; never trains."""

from __future__ import annotations

import pytest
from PIL import Image

from hansbench.bench.cli import main

TINY = """
[suite]
name = "tiny-explain"
seeds = [0]
device = "cpu"
[data]
dataset = "signs"
artifact = "postit"
image_size = 16
n_train = 120
n_test = 30
[[scenarios]]
name = "BD-30"
poisoning = "BD"
fraction = 0.3
target_class = "speed limit"
[models.classifier]
backbone = "small-resnet"
backbone_options = { widths = [8, 16] }
epochs = 1
[explainers]
gradcam = {}
[metrics]
model-accuracy = {}
[timing]
batch_size = 2
repeats = 1
warmup = 0
"""


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    suite = root / "tiny.toml"
    suite.write_text(TINY)
    out = root / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--no-progress", "--no-figures"]) == 0
    return out


def test_explains_an_index_and_a_file_from_the_cache(finished_run, tmp_path, capsys):
    fig = tmp_path / "idx.png"
    assert main(["explain", "0", "--results", str(finished_run), "--method", "gradcam", "--out", str(fig)]) == 0
    assert fig.stat().st_size > 1000 and str(fig) in capsys.readouterr().out
    with Image.open(fig) as written:
        assert min(written.info["dpi"]) >= 199.9  # printable, with its vector twin beside it
    assert "<svg" in fig.with_suffix(".svg").read_text()[:2000]
    img = tmp_path / "sign.png"
    Image.new("RGB", (40, 40), (200, 30, 30)).save(img)
    fig2 = tmp_path / "file.png"
    assert main(["explain", str(img), "--results", str(finished_run), "--model", "classifier",
                 "--out", str(fig2)]) == 0
    assert fig2.stat().st_size > 1000


def test_clear_errors_and_never_trains(finished_run, tmp_path, capsys):
    assert main(["explain", "0", "--results", str(tmp_path / "none")]) == 2
    assert "run `hansbench run" in capsys.readouterr().err
    assert main(["explain", "0", "--results", str(finished_run), "--method", "nope"]) == 2
    assert "known: gradcam" in capsys.readouterr().err
    assert main(["explain", "0", "--results", str(finished_run), "--scenario", "CH-1"]) == 2
    assert "BD-30" in capsys.readouterr().err
    assert main(["explain", "99999", "--results", str(finished_run)]) == 2
    assert "outside" in capsys.readouterr().err
    models = sorted((finished_run / "cache" / "model").glob("*.pt"))
    assert models
    moved = [m.rename(m.with_suffix(".bak")) for m in models]
    try:
        assert main(["explain", "0", "--results", str(finished_run), "--out", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err
        assert "no cached classifier model" in err and "explain never trains" in err
        assert not list((finished_run / "cache" / "model").glob("*.pt"))  # nothing was trained
        assert not (tmp_path / "x.png").exists()
    finally:
        for m in moved:
            m.rename(m.with_suffix(".pt"))


def test_explain_reads_the_runs_record_and_plans_only_the_chain_it_explains(finished_run, tmp_path, monkeypatch):
    """No re-validation of the stored suite and no whole-graph plan: the record names the scenario, seed and
    recipes; only data -> model -> explainer nodes are built."""
    from hansbench.bench.engine.planner import Planner
    from hansbench.bench.suite import record

    def refuse(*a, **k):
        raise AssertionError("explain must not do this")

    monkeypatch.setattr(Planner, "plan", refuse)
    monkeypatch.setattr(record, "validate", refuse)
    fig = tmp_path / "chain.png"
    assert main(["explain", "0", "--results", str(finished_run), "--method", "gradcam", "--out", str(fig)]) == 0
    assert fig.stat().st_size > 1000
