"""The one resolved run configuration: the CLI's values go in before validation, the suite is frozen, and the
record stored with a run reads back as the same suite without validating again."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hansbench.bench.suite import record as record_module
from hansbench.bench.suite.config import Suite, SuiteError, load_suite
from hansbench.bench.suite.files import builtin_suites
from hansbench.bench.suite.record import from_stored, is_record, to_record


@pytest.mark.parametrize("name", builtin_suites())
def test_every_builtin_suite_reads_back_from_its_record_through_json(name):
    from pathlib import Path  # the real-data suites need Debian's files (tests/datasets/test_standard.py: the refusal)
    if name.startswith("fashion") and not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("/usr/share/datasets/fashion-mnist absent (apt-get install dataset-fashion-mnist)")
    suite = load_suite(name)
    back = from_stored(json.loads(json.dumps(to_record(suite))))
    assert back == suite
    assert [s.written for s in back.scenarios] == [s.written for s in suite.scenarios]
    assert back.sweep_axes == suite.sweep_axes  # expanded once, by the loader, and stored


def test_the_record_is_read_without_validating_again(monkeypatch):
    stored = json.loads(json.dumps(to_record(load_suite("sweep"))))

    def refuse(*a, **k):
        raise AssertionError("validate() called on a stored record")

    monkeypatch.setattr(record_module, "validate", refuse)
    assert from_stored(stored).name == "sweep"
    with pytest.raises(AssertionError):  # an old run's stored TOML is the one thing validated (once)
        from_stored(load_suite("smoke").raw)


def test_a_validated_suite_is_frozen_and_the_cli_values_are_applied_before_validation():
    suite = load_suite("smoke", seeds=[7, 8], device="cpu", threads=1, figures=False)
    assert (suite.seeds, suite.device, suite.threads, suite.figures) == ((7, 8), "cpu", 1, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        suite.seeds = (1,)  # type: ignore[misc]
    rec = to_record(suite)
    assert is_record(rec) and rec["suite"]["seeds"] == [7, 8] and rec["suite"]["threads"] == 1
    with pytest.raises(SuiteError, match="suite.threads"):
        load_suite("smoke", threads=0)


def test_a_record_of_another_version_is_refused_in_one_line():
    rec = to_record(load_suite("smoke"))
    rec[record_module.RECORD_KEY] = 99
    with pytest.raises(SuiteError, match="version 99"):
        from_stored(rec)


def test_suite_fields_and_record_cover_each_other():
    """A field added to Suite must be stored with the run (else a rerun of publishing or explain loses it)."""
    rec = to_record(load_suite("smoke"))
    stored = set(rec["suite"]) | set(rec) - {"suite", record_module.RECORD_KEY}
    assert {f.name for f in dataclasses.fields(Suite)} <= stored


def test_a_record_written_before_jobs_existed_reads_back_with_jobs_unset():
    """``jobs`` joined the record after version 1: an older record (without it) still reads, as 'not set'."""
    rec = json.loads(json.dumps(to_record(load_suite("smoke", jobs=3))))
    assert rec["suite"]["jobs"] == 3 and from_stored(rec).jobs == 3
    del rec["suite"]["jobs"]
    assert from_stored(rec).jobs is None
