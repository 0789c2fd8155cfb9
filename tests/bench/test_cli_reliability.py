"""The CLI on bad command-line input and interrupted runs: one line, exit 2, nothing written or lost."""

from __future__ import annotations

import sqlite3

import pytest
import torch

from hansbench.bench.cli import main

pytestmark = pytest.mark.filterwarnings("ignore")


def _err_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "results.txt"
    f.write_text("x")
    assert main(["run", "--suite", "smoke", "--out", str(f), "--no-progress"]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "is a file, not a directory" in lines[0] and str(f) in lines[0]
    assert f.read_text() == "x"


def test_device_typo_and_missing_cuda_fail_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "--suite", "smoke", "--out", str(out), "--device", "gpu"]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "auto, cpu, cuda, cuda:N" in lines[0]
    if not torch.cuda.is_available():
        assert main(["run", "--suite", "smoke", "--out", str(out), "--device", "cuda"]) == 2
        assert "CUDA is not available" in _err_lines(capsys)[0]
    assert not out.exists()


def test_a_second_run_on_a_locked_directory_stops_at_once(tmp_path, capsys):
    from hansbench.bench.engine.runner import DirectoryLock

    out = tmp_path / "o"
    out.mkdir()
    with DirectoryLock(out):
        assert main(["run", "--suite", "smoke", "--out", str(out), "--no-progress"]) == 2
    lines = _err_lines(capsys)
    assert any("another hansbench run" in line and "--wait" in line for line in lines)
    assert not (out / "metrics.csv").exists()


def test_runs_left_running_by_a_killed_process_are_marked_crashed(tmp_path):
    from hansbench.bench.engine.store import ResultsStore

    store = ResultsStore(tmp_path / "results.sqlite")
    run_id = store.start_run("x", {}, "cpu")  # then the process dies: never finished
    store.close()
    again = ResultsStore(tmp_path / "results.sqlite")
    assert again.mark_stale_runs() == 1
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        assert db.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()[0] == "crashed"


def test_an_interrupted_run_still_writes_its_finished_rows_and_ignores_a_second_ctrl_c(tmp_path, monkeypatch):
    import signal

    import pandas as pd

    from hansbench.bench import cli
    from hansbench.bench.engine.nodes.metric import MetricNode

    original = MetricNode.compute

    def interrupt_on_detection(node, env):
        if node.params["metric"] == "cluster-detection":
            raise KeyboardInterrupt
        return original(node, env)

    seen = {}
    write = cli.write_outputs

    def recording_write(runner, summary, **kw):
        seen["sigint"] = signal.getsignal(signal.SIGINT)
        return write(runner, summary, **kw)

    monkeypatch.setattr(MetricNode, "compute", interrupt_on_detection)
    monkeypatch.setattr(cli, "write_outputs", recording_write)
    out = tmp_path / "o"
    assert main(["run", "--suite", "smoke", "--out", str(out), "--no-progress"]) == 130
    assert seen["sigint"] is signal.SIG_IGN  # a second Ctrl-C while writing cannot cut it short
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN  # and Ctrl-C works again afterwards
    rows = pd.read_csv(out / "metrics.csv", keep_default_na=False)
    assert len(rows) > 0 and "cluster-detection" not in set(rows.family)
    board = (out / "leaderboard.md").read_text()
    assert "PARTIAL RESULTS: the run was interrupted" in board.splitlines()[2]
    assert "PARTIAL RESULTS" in (out / "leaderboard.html").read_text()
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("SELECT status FROM runs").fetchone()[0] == "interrupted"


def test_ray_executor_without_ray_fails_before_anything_is_written(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    out = tmp_path / "o"
    assert main(["run", "--suite", "smoke", "--out", str(out), "--executor", "ray"]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "pip install 'hansbench[ray]'" in lines[0]
    assert not out.exists()


# -- --seed ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["--seed", "5", "--seed", "6"], ["--seed", "5", "6"]])
def test_both_seed_spellings_give_both_seeds(argv):
    from hansbench.bench.cli import build_parser

    assert build_parser().parse_args(["run", *argv]).seed == [5, 6]


class _StopAtRun:
    """Stands in for the Runner: records the suite it was given and stops before any work."""

    seen: dict = {}

    def __init__(self, suite, out, **kw):
        _StopAtRun.seen.update(seeds=list(suite.seeds), config=suite.raw, node_timeout_s=suite.node_timeout_s)

    def log(self, msg):
        print(f"[hansbench] {msg}")

    device = "cpu"

    def run(self):
        from hansbench.bench.engine.runner import ResultsLocked

        raise ResultsLocked("stopped by the test")


def test_seed_runs_the_given_seeds_says_so_and_refuses_duplicates(tmp_path, capsys, monkeypatch):
    from hansbench.bench.engine import runner

    monkeypatch.setattr(runner, "Runner", _StopAtRun)
    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nextends = "smoke"\ndev_seeds = [0, 1]\n')
    out = tmp_path / "o"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--seed", "5", "--seed", "6"]) == 2
    captured = capsys.readouterr()
    assert _StopAtRun.seen["seeds"] == [5, 6] and _StopAtRun.seen["config"]["suite"]["seeds"] == [5, 6]
    assert "running evaluation seeds 5, 6 (settings tuned on 0, 1)" in captured.out
    assert "overlap" not in captured.err
    # the suite's own seed 0 is a dev seed: a warning line, and the run goes on
    assert main(["run", "--suite", str(suite), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "stopped by the test" in captured.err  # it reached the run: the overlap is no error
    assert any(line.startswith("warning: suite.seeds overlap suite.dev_seeds (0)") for line in captured.err.splitlines())
    _StopAtRun.seen.clear()
    assert main(["run", "--suite", str(suite), "--out", str(out), "--seed", "5", "--seed", "5"]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "--seed: seed(s) 5 given more than once" in lines[0]
    assert _StopAtRun.seen == {} and not out.exists()


@pytest.mark.parametrize("flag", ["--threads", "--jobs", "--node-timeout"])
def test_a_non_positive_run_setting_is_named_as_the_user_wrote_it(flag, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "--suite", "smoke", "--out", str(out), flag, "0"]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"hansbench: {flag} 0:") and not out.exists()


def test_the_node_timeout_flag_is_what_the_run_records(tmp_path, monkeypatch):
    from hansbench.bench.engine import runner

    monkeypatch.setattr(runner, "Runner", _StopAtRun)
    assert main(["run", "--suite", "smoke", "--out", str(tmp_path / "o"), "--node-timeout", "7"]) == 2
    assert _StopAtRun.seen["node_timeout_s"] == 7.0
