"""Suites are validated before any work; errors name the key path and the fix."""

from __future__ import annotations

import pytest

from hansbench.bench.config import SuiteError, builtin_suites, load_suite


def write(tmp_path, text: str, name: str = "s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_builtin_quick_is_valid_and_default():
    assert "quick" in builtin_suites()
    suite = load_suite()
    assert suite.name == "quick" and suite.scenarios and suite.models


def test_extends_overrides_fields(tmp_path):
    p = write(tmp_path, '[suite]\nextends = "quick"\nname = "mine"\nseeds = [3, 4]\n[data]\nimage_size = 24\n')
    suite = load_suite(p)
    assert suite.name == "mine" and suite.seeds == [3, 4]
    assert all(s["image_size"] == 24 for s in suite.scenarios)


@pytest.mark.parametrize(
    "text, path_fragment",
    [
        ('[suite]\nextends = "quick"\n[explainers]\ngradcamm = {}\n', "explainers.gradcamm"),
        ('[suite]\nextends = "quick"\n[explainers]\ngradcam = {bogus = 1}\n', "explainers.gradcam.bogus"),
        ('[suite]\nextends = "quick"\nseeds = "zero"\n', "suite.seeds"),
        ('[suite]\nextends = "quick"\n[[scenarios]]\nname = "x"\nfraction = 1.5\n', "fraction"),
        ('[suite]\nextends = "quick"\n[models.transformer]\n', "models.transformer"),
        ('[suite]\nextends = "quick"\n[models.classifier]\nepochz = 3\n', "models.classifier"),
        ('[suite]\nextends = "quick"\n[scenarios_typo]\n', "scenarios_typo"),
    ],
)
def test_errors_name_the_key_path(tmp_path, text, path_fragment):
    with pytest.raises(SuiteError) as err:
        load_suite(write(tmp_path, text))
    assert path_fragment in str(err.value)


def test_unknown_name_suggests_closest(tmp_path):
    with pytest.raises(SuiteError, match="Did you mean 'gradcam'"):
        load_suite(write(tmp_path, '[suite]\nextends = "quick"\n[explainers]\ngradcan = {}\n'))


def test_unknown_builtin_suite_lists_known():
    with pytest.raises(SuiteError, match="quick"):
        load_suite("no-such-suite")


def test_extends_cycle_detected(tmp_path):
    write(tmp_path, '[suite]\nextends = "b.toml"\n', "a.toml")
    write(tmp_path, '[suite]\nextends = "a.toml"\n', "b.toml")
    with pytest.raises(SuiteError, match="cycle"):
        load_suite(tmp_path / "a.toml")


def test_replace_takes_sections_from_the_child_alone(tmp_path):
    merged = load_suite(write(tmp_path, '[suite]\nextends = "quick"\n[explainers]\nrandom = {}\n'))
    assert "gradcam" in merged.explainers and "random" in merged.explainers
    p = write(tmp_path, '[suite]\nextends = "quick"\nreplace = ["explainers", "metrics"]\n[explainers]\nrandom = {}\n'
                        '[metrics]\ncluster-detection = {}\n', "r.toml")
    only = load_suite(p)
    assert list(only.explainers) == ["random"] and list(only.metrics) == ["cluster-detection"]
    with pytest.raises(SuiteError, match="suite.replace"):
        load_suite(write(tmp_path, '[suite]\nextends = "quick"\nreplace = ["explainerz"]\n', "bad.toml"))


def test_filter_typo_is_refused(tmp_path):
    with pytest.raises(SuiteError, match="clusterers.coreg.explainers: unknown name 'prpp'"):
        load_suite(write(tmp_path, '[suite]\nextends = "quick"\n[clusterers]\ncoreg = { explainers = ["prpp"] }\n'))
