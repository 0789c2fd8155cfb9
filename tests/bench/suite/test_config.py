"""Suites are validated before any work; errors name the key path and the fix."""

from __future__ import annotations

import pytest

from hansbench.bench.suite.config import SuiteError, load_suite
from hansbench.bench.suite.files import builtin_suites
from hansbench.bench.suite.record import to_record
from hansbench.datasets.scenarios import SCENARIO_DEFAULTS


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
    assert suite.name == "mine" and suite.seeds == (3, 4)
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


# ----------------------------------------------------------------------------- scenario-level settings

# quick's [data] defaults (signs' own dataset_options) are dropped: these tests switch datasets.
QUICK = '[suite]\nextends = "quick"\nreplace = ["data"]\n'
# Replaces quick's scenarios with one backdoor scenario, to which each test adds one setting.
BD = QUICK + '[[scenarios]]\nname = "BD"\npoisoning = "BD"\n'


@pytest.mark.parametrize(
    "extra, expected",
    [
        ('target_class = "speed limt"\n',
         "scenarios[0].target_class: 'speed limt' is not a class of dataset 'signs'; classes: 'restriction', "
         "'speed limit', 'stop', 'warning', 'yield'. Did you mean 'speed limit'?"),
        ('affected_class = "stpo"\n', "scenarios[0].affected_class: 'stpo' is not a class of dataset 'signs'"),
        ('affected_class = 7\n', "scenarios[0].affected_class: index 7 is out of range: dataset 'signs' has 5"),
        ('target_class = "stop"\n', "scenarios[0].target_class: 'stop' equals affected_class"),
        ('dataset_options = { rotaton = 5 }\n', "scenarios[0].dataset_options.rotaton: unknown option; dataset 'signs' "
                                                 "accepts ['scale', 'rotation', "),
        ('dataset_options = { rotation = 90 }\n', "scenarios[0].dataset_options: signs: rotation must be in [0, 30]"),
        ('artifact_options = { sise = 0.2 }\n', "scenarios[0].artifact_options.sise: unknown option; artifact 'postit' "
                                                "accepts ['size', 'min_px', 'margin', 'jitter', 'colour'] (defaults: "
                                                "size=0.18, min_px=3, margin=0.08, jitter=0.1, colour=(1.0, 0.88, 0.12))"),
        ('artifact_options = { size = -1 }\n', "scenarios[0].artifact_options: postit: need 0 < size <= 1"),
        ('artifact_options = "big"\n', "scenarios[0].artifact_options: expected a table of options"),
        ('dataset = "digits"\naffected_class = "7"\n',
         "scenarios[0].target_class: 'speed limit' (the default) is not a class of dataset 'digits'"),
        ('dataset = "digits"\n', "scenarios[0].affected_class: 'stop' (the default) is not a class of dataset 'digits'"),
        ('dataset = "folder"\ndataset_options = { root = "/no/such/dir" }\n',
         "scenarios[0].dataset_options: folder: root '/no/such/dir' is not a directory"),
        ('dataset = "folder"\n', "scenarios[0].dataset_options: folder: the option 'root' is required"),
        ('n_train = 0\n', "scenarios[0].n_train: 0; expected a positive number of images"),
        ('n_test = "many"\n', "scenarios[0].n_test: 'many'"),
        ('fraction = true\n', "scenarios[0].fraction: True"),
        ('image_size = true\n', "scenarios[0].image_size: True"),
    ],
)
def test_scenario_settings_are_checked_before_any_work(tmp_path, monkeypatch, extra, expected):
    from hansbench.datasets.signs import TrafficSigns

    monkeypatch.setattr(TrafficSigns, "generate", lambda *a, **k: pytest.fail("validation must not draw images"))
    with pytest.raises(SuiteError) as err:
        load_suite(write(tmp_path, BD + extra))
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_poisoning_typo_is_refused_with_the_known_ones(tmp_path):
    import re

    from hansbench.registry import poisonings

    known = re.escape(", ".join(poisonings.names()))  # BD, CH, none and the controls (BD-A2O, LF, ...)
    assert {"BD", "CH", "none"} <= set(poisonings.names())
    with pytest.raises(SuiteError, match=r"scenarios\[0\]\.poisoning: unknown poisoning 'bd'\. Did you mean 'BD'\? "
                                         rf"Known poisonings: {known}\."):
        load_suite(write(tmp_path, QUICK + '[[scenarios]]\npoisoning = "bd"\n'))
    with pytest.raises(SuiteError, match=r"scenarios\[0\]\.poisoning: unknown poisoning 'blend'"):
        load_suite(write(tmp_path, QUICK + '[[scenarios]]\npoisoning = "blend"\n'))


@pytest.mark.parametrize("text, expected", [
    ('[models.transformer]\n', "models.transformer: unknown model kind 'transformer'. Known model kinds: classifier, "
                               "protopnet."),
    ('[models.classifier]\nbackbone = "resnet19"\n', "models.classifier.backbone: unknown backbone 'resnet19'. "
                                                     "Did you mean 'resnet18'?"),
    ('[models.classifier]\nbackbone_options = { widthz = [8] }\n',
     "models.classifier.backbone_options.widthz: unknown option; models.classifier.backbone_options accepts "
     "['widths', 'weights']"),
    ('[models.protopnet]\nbackbone = "vgg16"\nbackbone_options = { widths = [8] }\n',
     "models.protopnet.backbone_options.widths: unknown option; models.protopnet.backbone_options accepts "
     "['weights']"),
    ('[clusterers]\nspray = { models = ["protopnett"] }\n', "clusterers.spray.models: unknown name 'protopnett'"),
])
def test_model_kinds_and_backbones_are_checked_against_their_registries(tmp_path, text, expected):
    with pytest.raises(SuiteError) as err:
        load_suite(write(tmp_path, QUICK + text))
    assert expected in str(err.value)


def test_data_defaults_are_checked_in_every_scenario(tmp_path):
    """A typo in [data] fails once, with the first scenario's path, not once per job."""
    with pytest.raises(SuiteError, match=r"scenarios\[0\]\.affected_class: 'Stop'.*Did you mean 'stop'"):
        load_suite(write(tmp_path, QUICK + '[data]\naffected_class = "Stop"\n'))


def test_valid_scenarios_pass_and_keep_their_settings(tmp_path):
    folder = tmp_path / "imgs"
    from PIL import Image

    for cls in ("cat", "dog"):
        (folder / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (4, 4)).save(folder / cls / f"{i}.png")
    suite = load_suite(write(tmp_path, QUICK + f'''
[[scenarios]]
name = "digits-BD"
dataset = "digits"
poisoning = "BD"
affected_class = "7"
target_class = 1
[[scenarios]]
name = "pets"
dataset = "folder"
dataset_options = {{ root = "{folder}" }}
affected_class = "cat"
poisoning = "none"
'''))
    assert [s["name"] for s in suite.scenarios] == ["digits-BD", "pets"]
    pets = suite.scenarios[1]
    assert "target_class" not in pets.written and "target_class" not in pets.written_settings(), \
        "defaults are not written into the settings as written (cache keys)"
    assert pets["target_class"] == pets.target_class == SCENARIO_DEFAULTS["target_class"]  # but read as filled in


def test_folder_with_one_class_fails_at_validation(tmp_path):
    from PIL import Image

    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (4, 4)).save(tmp_path / "imgs" / "cat" / f"{i}.png")
    text = QUICK + f'[[scenarios]]\ndataset = "folder"\ndataset_options = {{ root = "{tmp_path / "imgs"}" }}\n'
    with pytest.raises(SuiteError, match=r"scenarios\[0\]\.dataset_options: folder: only one class \('cat'\)"):
        load_suite(write(tmp_path, text))


def test_device_must_be_a_known_spec(tmp_path):
    for bad in ('"gpu"', '"cudax"', "0"):
        with pytest.raises(SuiteError, match="suite.device: .*'auto', 'cpu', 'cuda' or 'cuda:N'"):
            load_suite(write(tmp_path, QUICK + f"device = {bad}\n"))
    assert load_suite(write(tmp_path, QUICK + 'device = "cuda:1"\n')).device == "cuda:1"


# ----------------------------------------------------------------------------- the CLI: exit 2, one line, nothing written


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[suite\nname = 1\n", "is not valid TOML"),
        (QUICK + "[bogus]\n", "unknown top-level key(s) ['bogus']"),
        (QUICK + "[explainers]\ngradcamm = {}\n", "Did you mean 'gradcam'"),
        (QUICK + 'seeds = "zero"\n', "suite.seeds"),
        (QUICK + "[[scenarios]]\nfraction = 1.5\n", "scenarios[0].fraction: 1.5"),
        (QUICK + "[models.classifier]\nepochs = -1\n", "models.classifier"),
        (BD + 'target_class = "speed limt"\n', "Did you mean 'speed limit'"),
        (BD + 'dataset_options = { rotaton = 5 }\n', "rotaton"),
    ],
)
def test_cli_refuses_bad_suites_with_one_line_and_writes_nothing(tmp_path, capsys, text, fragment):
    from hansbench.bench.cli import main

    out = tmp_path / "out"
    assert main(["run", "--suite", str(write(tmp_path, text)), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hansbench: invalid suite: ") and fragment in err
    assert len(err.splitlines()) == 1, err
    assert not out.exists(), "nothing may be written for an invalid suite"


# ----------------------------------------------------------------------------- CLI helper checks


def test_check_out_dir(tmp_path, monkeypatch):
    import os

    from hansbench.bench.cli import check_out_dir

    assert check_out_dir(tmp_path) is None
    assert check_out_dir(tmp_path / "new" / "deeper") is None
    assert not (tmp_path / "new").exists(), "the check creates nothing"
    a_file = tmp_path / "results.txt"
    a_file.write_text("x")
    assert check_out_dir(a_file) == f"--out {str(a_file)!r} is a file, not a directory; give a directory (it is " \
                                    "created if missing)"
    assert check_out_dir(a_file / "sub") == f"--out {str(a_file / 'sub')!r} cannot be created: {str(a_file)!r} " \
                                            "is a file, not a directory"
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "results.sqlite").write_text("not a database")
    assert "is not a hansbench results store" in check_out_dir(tmp_path / "junk")
    (tmp_path / "dirdb" / "results.sqlite").mkdir(parents=True)
    assert "is not a file" in check_out_dir(tmp_path / "dirdb")
    # unwritable: faked, since the tests may run as root (for whom every directory is writable)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert check_out_dir(tmp_path) == f"--out {str(tmp_path)!r} is not writable; give a directory you can write to"
    assert check_out_dir(tmp_path / "x") == f"--out {str(tmp_path / 'x')!r} cannot be created: {str(tmp_path)!r} " \
                                            "is not writable"


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root can write to a read-only-mode directory")
def test_check_out_dir_real_permissions(tmp_path):
    from hansbench.bench.cli import check_out_dir

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert "is not writable" in check_out_dir(locked)
    assert "cannot be created" in check_out_dir(locked / "sub")


def test_check_device(monkeypatch):
    import torch

    from hansbench.bench.cli import check_device

    assert check_device("auto") is None and check_device("cpu") is None
    assert check_device("gpu") == "--device 'gpu' is not a device; use one of auto, cpu, cuda, cuda:N"
    assert check_device("mps", what="suite.device") == "suite.device 'mps' is not a device; use one of auto, cpu, " \
                                                       "cuda, cuda:N"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check_device("cuda") == "--device 'cuda': CUDA is not available on this machine; use cpu (or auto)"
    assert check_device("cuda:0") == "--device 'cuda:0': CUDA is not available on this machine; use cpu (or auto)"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda") is None and check_device("cuda:1") is None
    assert check_device("cuda:2") == "--device 'cuda:2': this machine has 2 CUDA device(s) (cuda:0, cuda:1); " \
                                     "use one of them, or cuda"


def test_suite_table_typos_and_node_timeout_are_checked(tmp_path):
    from hansbench.bench.suite.config import SuiteError, load_suite

    base = '[suite]\nextends = "quick"\n'
    for extra, message in (("seed = [1, 2]", r"suite.seed: unknown key; did you mean 'seeds'"),
                           ("node_timeout_s = 0", "suite.node_timeout_s: 0; expected seconds > 0")):
        p = tmp_path / "s.toml"
        p.write_text(base + extra + "\n")
        with pytest.raises(SuiteError, match=message):
            load_suite(p)
    p.write_text(base + "node_timeout_s = 12.5\n")
    assert load_suite(p).node_timeout_s == 12.5


def test_builtin_suite_name_wins_over_a_directory_of_that_name(tmp_path, monkeypatch):
    from hansbench.bench.suite.config import load_suite

    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick").mkdir()  # e.g. an earlier --out quick
    assert load_suite("quick").name == "quick"


# -- development vs evaluation seeds (engineer "figures") -----------------------------------------------
@pytest.mark.parametrize("value, message", [
    ("[0, 0]", r"suite.dev_seeds: seed\(s\) 0 given more than once"),
    ('["0"]', "suite.dev_seeds: expected a list of integers"),
    ("[true]", "suite.dev_seeds: expected a list of integers"),
    ("1", "suite.dev_seeds: expected a list of integers"),
])
def test_dev_seeds_are_unique_integers(tmp_path, value, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(write(tmp_path, f'[suite]\nextends = "quick"\ndev_seeds = {value}\n'))


def test_seeds_may_not_repeat(tmp_path):
    with pytest.raises(SuiteError, match=r"suite.seeds: seed\(s\) 3 given more than once"):
        load_suite(write(tmp_path, '[suite]\nextends = "quick"\nseeds = [3, 4, 3]\n'))


def test_dev_seeds_are_recorded_and_an_overlap_is_a_warning_not_an_error(tmp_path):
    suite = load_suite(write(tmp_path, '[suite]\nextends = "quick"\nseeds = [2, 3, 4, 5, 6]\ndev_seeds = [0, 1]\n'))
    assert suite.dev_seeds == (0, 1) and suite.warnings == ()
    assert suite.raw["suite"]["dev_seeds"] == [0, 1]  # the TOML as written is kept for provenance
    assert suite.describe_seeds() == "evaluation seeds 2-6 (settings tuned on 0, 1)"
    overlap = load_suite(write(tmp_path, '[suite]\nextends = "quick"\nseeds = [1, 2]\ndev_seeds = [0, 1]\n'))
    assert overlap.seeds == (1, 2) and len(overlap.warnings) == 1
    assert "(1)" in overlap.warnings[0] and "include seeds the settings were tuned on" in overlap.warnings[0]
    path = write(tmp_path, '[suite]\nextends = "quick"\nseeds = [1, 2]\ndev_seeds = [0, 1]\n')
    again = load_suite(path, seeds=[5, 6])  # hansbench run --seed 5 6: applied before validation
    assert again.seeds == (5, 6) and again.warnings == ()  # so the warning is the run's, and the record says 5, 6
    assert to_record(again)["suite"]["seeds"] == [5, 6]
    with pytest.raises(SuiteError, match=r"suite.seeds: seed\(s\) 5 given more than once"):
        load_suite(path, seeds=[5, 5])
    quick = load_suite()  # the default suite publishes evaluation seeds, not the ones its settings were tuned on
    assert quick.dev_seeds == (0, 1, 2) and quick.warnings == () and not set(quick.seeds) & set(quick.dev_seeds)
    assert quick.describe_seeds() == "evaluation seeds 3, 4 (settings tuned on 0-2)"
