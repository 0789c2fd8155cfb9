"""Poisoning scenarios of PRP Sec. V-A: Clever Hans (CH-x), backdoor (BD-x, BD-A2O-x) and
label-flip control (LF-x, LF-A2O-x) training sets with an artifact test set and a clean test
set, every sample with its ground truth (and the dataset's object boxes).

``make_scenario`` is the one entry point: dataset + artifact + poisoning -> ScenarioData. The
poisoning is a registered class (:mod:`hansbench.datasets.poisonings`): it poisons the training
set and owns the rules of which class is inspected and which class each image is explained for.
:data:`SCENARIO_DEFAULTS` are the defaults of every scenario setting, read from its signature.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from hansbench.datasets._helpers import CleanData, check_sizes, generator
from hansbench.datasets.base import ScenarioData, Split
from hansbench.datasets.poisonings import default_scenario_name, stamp_images
from hansbench.datasets.scenario_checks import ScenarioError, check_classes, check_scenario
from hansbench.options import check_options
from hansbench.registry import artifacts, datasets

__all__ = ["SCENARIO_DEFAULTS", "Scenario", "CleanData", "ScenarioError", "make_scenario", "load_clean", "build_artifact"]

Tensor = torch.Tensor


def load_clean(dataset: str, image_size: int, n_train: int, n_test: int, seed: int,
               dataset_options: dict | None = None) -> CleanData:
    """Clean images of a registered dataset (unknown names list the known ones; unknown options the accepted ones)."""
    cls = datasets.get(dataset)
    return cls(**check_options(cls, dataset_options or {}, what=f"dataset {dataset!r}")).load(
        image_size, n_train, n_test, seed)


def build_artifact(artifact: str, artifact_options: dict | None = None):
    """A configured artifact (unknown names list the known ones; unknown options the accepted ones)."""
    cls = artifacts.get(artifact)
    return cls(**check_options(cls, artifact_options or {}, what=f"artifact {artifact!r}"))


def make_scenario(dataset: str = "signs", *, poisoning: str = "CH", fraction: float = 1.0, artifact: str = "postit",
                  image_size: int = 32, n_train: int = 1000, n_test: int = 300, seed: int = 0,
                  affected_class: str | int = "stop", target_class: str | int | None = "speed limit",
                  dataset_options: dict | None = None, artifact_options: dict | None = None,
                  name: str = "") -> ScenarioData:
    """A poisoned training set plus artifact-test and clean-test sets (PRP Sec. V-A).

    ``poisoning``: a registered poisoning (docs/poisonings.md). ``"CH"`` stamps ``artifact`` on
    ``round(fraction * n)`` of the ``affected_class`` training images (labels kept;
    ``target_class`` ignored); ``"BD"`` also relabels exactly those to ``target_class``;
    ``"BD-A2O"`` draws them from every class but ``target_class`` (``fraction`` of those images);
    ``"LF"`` / ``"LF-A2O"`` relabel exactly the images ``BD`` / ``BD-A2O`` would, without stamping;
    ``"none"`` leaves training clean. ``artifact_test`` carries the artifact on every test image
    the poisoning names (:meth:`~hansbench.datasets.poisonings.Poisoning.artifact_test_index`:
    the affected class's, all-to-one: every non-target image), ``clean_test`` is the same images
    unstamped. Test labels are always the true classes (accuracies compare with what the images
    show; a backdoor's success is ``asr``), so explanations must not default to them:
    ``ScenarioData.explain_targets`` gives the class to explain (BD: the target class on every
    triggered image). Every split keeps the dataset's object boxes. Deterministic in ``seed``.
    Every setting is checked before any image is drawn (:func:`~hansbench.datasets.scenario_checks.check_scenario`,
    the suite loader's checks too): a bad one raises :class:`ScenarioError` naming it.
    """
    settings = {k: v for k, v in locals().items() if k in SCENARIO_DEFAULTS}
    checked = check_scenario(settings)
    check_sizes(image_size, n_train, n_test, seed)
    rule, art = checked.rule, checked.artifact
    clean = checked.dataset.load(image_size, n_train, n_test, seed)
    names = list(clean.class_names)
    affected, target = check_classes(settings, names, rule)
    n_source = int(rule.source_index(clean.train_labels, len(names), affected, target).numel())
    if n_source == 0:
        which = "of affected_class " + repr(names[affected]) if not rule.all_to_one else "outside target_class"
        raise ValueError(f"no training image {which}; increase n_train")
    train = rule.poison(clean, affected=affected, target=target, fraction=float(fraction), artifact=art, seed=seed)

    # test sets: the same images, with the artifact on every image the poisoning names, or on none
    stamped = rule.artifact_test_index(clean.test_labels, len(names), affected, target)
    test_images, test_poisoned, test_masks = stamp_images(clean.test_images, clean.test_boxes, stamped, art,
                                                          generator(seed, "scenario", "stamp-test"))
    boxes = clean.test_boxes
    artifact_test = Split(test_images, clean.test_labels.clone(), clean.test_labels.clone(), test_poisoned, test_masks,
                          boxes=None if boxes is None else boxes.clone())
    n_te, _, h, w = clean.test_images.shape
    clean_test = Split(clean.test_images.clone(), clean.test_labels.clone(), clean.test_labels.clone(),
                       torch.zeros(n_te, dtype=torch.bool), torch.zeros(n_te, h, w, dtype=torch.bool),
                       boxes=None if boxes is None else boxes.clone())

    mean = clean.train_images.mean(dim=(0, 2, 3))
    std = clean.train_images.std(dim=(0, 2, 3)).clamp(min=1e-3)
    return ScenarioData(
        name=name or default_scenario_name(poisoning, fraction),
        train=train,
        artifact_test=artifact_test,
        clean_test=clean_test,
        class_names=names,
        affected_class=affected,
        target_class=target,
        artifact=artifact,
        poisoning=poisoning,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        meta={
            "dataset": dataset, "poisoning": poisoning, "fraction": float(fraction), "seed": seed,
            "image_size": image_size, "n_train": len(train), "n_test": len(clean_test),
            "n_poisoned": int(train.poisoned.sum()), "n_affected_train": n_source, "dataset_options": dict(dataset_options or {}),
            "artifact_options": checked.artifact_options,
        },
    )


# The defaults of every scenario setting (suites, the planner's keys, sweeps), read from make_scenario's signature.
SCENARIO_DEFAULTS = {k: {} if k.endswith("_options") else p.default
                     for k, p in inspect.signature(make_scenario).parameters.items() if k not in ("seed", "name")}


# -- the typed scenario of a suite ---------------------------------------------------------------------------
# A suite's scenario as one typed value: its settings with defaults filled in once, by the suite loader
# (``hansbench.bench.suite.scenarios.resolve_scenarios`` builds each :class:`Scenario` after its checks; nothing
# downstream merges defaults again). It also reads as a read-only mapping (``scenario["poisoning"]``) for
# metrics' ``not_applicable(scenario=...)``. It lives here, beside ``make_scenario`` whose keywords it types,
# so that metrics and datasets can use it without importing the bench.
SWEEP_META = "sweep"  # the key a sweep point's scenario carries: {"sweep": name, "values": {field: value}, "path"}
SCENARIO_FILTER = "only"  # a scenario's own filter table: which models, explainers, clusterers, metrics run there
_D = SCENARIO_DEFAULTS


@dataclass(frozen=True, eq=False)  # eq from Mapping: a scenario equals the dict of its items
class Scenario(Mapping):
    """One scenario: its data settings (typed, defaults filled in), its ``only`` filter, a sweep point's entry."""

    name: str
    dataset: str = _D["dataset"]
    poisoning: str = _D["poisoning"]
    fraction: float = _D["fraction"]
    artifact: str = _D["artifact"]
    image_size: int = _D["image_size"]
    n_train: int = _D["n_train"]
    n_test: int = _D["n_test"]
    affected_class: str | int = _D["affected_class"]
    target_class: str | int | None = _D["target_class"]
    dataset_options: dict[str, Any] = field(default_factory=dict)
    artifact_options: dict[str, Any] = field(default_factory=dict)
    only: dict[str, tuple[str, ...]] = field(default_factory=dict)  # section -> the names that run here
    sweep: dict[str, Any] | None = None  # a sweep point's {"sweep", "values", "path"}: plans and publishes only
    written: frozenset[str] = frozenset()  # the settings the suite (or its [data]) wrote, before any default

    @classmethod
    def from_table(cls, table: Mapping[str, Any], written: frozenset[str] | None = None) -> Scenario:
        """The scenario of a checked suite table (``name`` set); settings it leaves out take their defaults.
        ``written``: the settings the suite wrote (default: the table's own)."""
        only = {section: tuple(names) for section, names in (table.get(SCENARIO_FILTER) or {}).items()}
        given = {k: v for k, v in table.items() if k in SETTINGS}
        return cls(**given, only=only, sweep=table.get(SWEEP_META),
                   written=frozenset(table) - {SCENARIO_FILTER, SWEEP_META} if written is None else written)

    @staticmethod
    def default(setting: str) -> Any:
        """The default of one data setting (``Scenario.default("dataset")``)."""
        return {} if setting.endswith("_options") else _D[setting]

    @classmethod
    def filled(cls, table: Mapping[str, Any]) -> dict[str, Any]:
        """A table's data settings with the defaults filled in, for the checks that run before the scenario is
        built (unknown keys and ``only``/``sweep`` left out; ``name`` as written, else "")."""
        return {k: table[k] if k in table else ("" if k == "name" else cls.default(k)) for k in SETTINGS}

    def settings(self) -> dict[str, Any]:
        """Every data setting, defaults filled in: what ``make_scenario(**...)`` takes (no ``only``/``sweep``)."""
        return {k: getattr(self, k) for k in SETTINGS}

    def written_settings(self) -> dict[str, Any]:
        """The data settings as the suite wrote them, plus the name: the data node's ``raw`` parameter (part
        of its key since before defaults were filled in here, so it stays as it was)."""
        return {k: getattr(self, k) for k in SETTINGS if k in self.written or k == "name"}

    def runs_in(self, section: str, name: str) -> bool:
        """Whether the scenario's ``only = { <section> = [...] }`` lets ``name`` run here (absent: everything)."""
        allowed = self.only.get(section)
        return allowed is None or name in allowed

    # -- the read-only mapping: the settings, then ``only`` and ``sweep`` where the scenario has them ------------
    def _keys(self) -> list[str]:
        return [*SETTINGS, *([SCENARIO_FILTER] if self.only else []), *([SWEEP_META] if self.sweep is not None else [])]

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


SETTINGS = ("name", *SCENARIO_DEFAULTS)  # the data settings, in make_scenario's order
if {f.name for f in dataclasses.fields(Scenario)} - {SCENARIO_FILTER, SWEEP_META, "written"} != set(SETTINGS):
    raise TypeError("hansbench.datasets.scenarios.Scenario's fields no longer match make_scenario's settings: "
                    "give Scenario one field per make_scenario keyword")
