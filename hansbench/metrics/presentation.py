"""How a metric's rows are shown: one declared structure, :class:`Shows`, the ``presentation`` class attribute of a
:class:`~hansbench.metrics.base.Metric`. Metrics that share a table share one declared object (:data:`EXPLAINERS`,
:data:`RELIANCE`) or derive theirs from it with ``dataclasses.replace``.

It is validated once, when the metric registers (``Metric.check_declarations``, which ``hansbench.registry.metrics``
calls), into a frozen :class:`Presentation` with the defaults filled in. A bad declaration of a plugin (a shape that
does not exist, a headline naming a value the metric does not declare) fails there, in one line naming the metric,
the attribute and what is allowed, instead of when tables are built. The leaderboard reads only
:func:`presentation_of` and :class:`Presentation`, never the class.

Metrics written before :class:`Shows` declared the same fields as class attributes (``table_shape`` for ``shape``);
they still register, with a ``DeprecationWarning`` that spells out the ``presentation = Shows(...)`` to write.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

SHAPES = ("reliance", "explainer", "detection", "stages", "model")
LEVELS = ("explainer", "clustering", "flagging", "model")
# shape "" by level; a flagging rule's rows are detections too (one cell per explainer x clusterer, per rule)
LEVEL_SHAPE = {"model": "model", "explainer": "explainer", "clustering": "detection", "flagging": "detection"}
# declared names that must be keys of ``values``
VALUE_NAMES = ("headline", "undirected", "label_free", "label_matched", "control", "effect")
VALUE_NOTES = ("gates", "marks")  # value name -> note


class PresentationError(ValueError):
    """A metric's declaration (values or presentation) that the leaderboard could not show."""


@dataclass(frozen=True)
class Shows:
    """What a metric declares about how the leaderboard shows its rows; every default gives a plugin metric a
    sensible table of its own.

    Attributes
    ----------
    table : str
        The table id (also the CSV name, ``<scenario>.<table>.csv``); metrics with the same id and shape share one
        table. "" = the metric's own name.
    shape : str
        "explainer" (explainers x value columns, ranked, one table per model kind), "detection" (explainer x
        clusterer cells, PRP Table II), "stages" (an intervention's stages as columns, PRP Table I), "model" (one
        row per model kind), "reliance" (the per-model summary that opens a scenario and gates its ranks).
        "" = from the metric's ``level`` (model -> model, explainer -> explainer, clustering and flagging ->
        detection).
    headline : tuple of str
        The values shown by default (the CSV keeps every value); () = every declared value.
    relative_to_random : bool
        Raw scores (logits, similarities) shown as value minus the reference explainer's value on the same seed,
        model and split; the reference is a row of its own.
    reference_explainer : str
        The baseline row of explainer tables and curves.
    ranked : bool
        Whether the values enter the explainers' mean rank.
    meaning : str
        One line under the table; "" = the first line of the metric's class docstring.
    stages : tuple of str
        For shape "stages", the ``stage`` values that become columns (in this order); rows of other stages are
        rows of their own (e.g. cleaning baselines "none", "oracle").
    column_detail : str
        A JSON key of ``detail`` that splits a value into columns (e.g. ``fraction``).
    gates : mapping of str to str
        (reliance) value name -> the note shown when the value is on its worse side (a 0/1 flag); a model with a
        failed gate has its cells marked and left out of the ranks.
    supersedes : tuple of str
        (reliance) metrics whose reliance rows this one's replace in the summary when both ran (the superseded
        rows still get a table of their own).
    marks : mapping of str to str
        Value name -> note; the value is a 0/1 flag per explainer (e.g. "maps survive model randomisation"): an
        explainer whose mean of it over seeds is >= 0.5 gets a mark next to its name in every table of that
        scenario and model, and the note under the table.
    undirected : tuple of str
        Declared values with no better side (counts such as n-removed): no arrow, never ranked or tested; the
        declared ``higher_is_better`` is kept in the rows.
    label_free, label_matched, control : tuple of str
        Detection (shape "detection"): the values an auditor gets without labels, chance-corrected or rank-based
        (the page's summary ranks detectors by the first one present); the values that use the ground truth to
        pick the cluster (PRP Table II's ACC / F1), shown in a table of their own labelled so; the values shown
        for a clean control scenario, where nothing is poisoned (e.g. the share of samples flagged).
    effect : tuple of str
        How strongly the poisoning took, in the order to look for them (the first with rows is used): what a
        sweep's reliance panel draws and its breakdown table quotes (e.g. acc-gap, asr).

    Examples
    --------
    >>> from dataclasses import replace
    >>> replace(EXPLAINERS, headline=("roar-acc",), column_detail="fraction").table
    'explainers'
    """

    table: str = ""
    shape: str = ""
    headline: tuple[str, ...] = ()
    relative_to_random: bool = False
    reference_explainer: str = "random"
    ranked: bool = True
    meaning: str = ""
    stages: tuple[str, ...] = ()
    column_detail: str = ""
    gates: Mapping[str, str] = field(default_factory=dict)
    supersedes: tuple[str, ...] = ()
    marks: Mapping[str, str] = field(default_factory=dict)
    undirected: tuple[str, ...] = ()
    label_free: tuple[str, ...] = ()
    label_matched: tuple[str, ...] = ()
    control: tuple[str, ...] = ()
    effect: tuple[str, ...] = ()


# The tables several built-in metrics share: each derives its own with ``replace(EXPLAINERS, headline=...)``.
EXPLAINERS = Shows(table="explainers")
RELIANCE = Shows(table="reliance", shape="reliance")


@dataclass(frozen=True)
class Presentation:
    """How one family's rows are shown: its :class:`Shows`, validated, with the defaults filled in.

    ``table`` is the family when none is declared, ``shape`` the level's, ``meaning`` the class docstring's first
    line; the other fields are the declared ones (same names, same order, after ``family``).
    """

    family: str
    table: str
    shape: str
    headline: tuple[str, ...] = ()
    relative_to_random: bool = False
    reference_explainer: str = ""
    ranked: bool = True
    meaning: str = ""
    stages: tuple[str, ...] = ()
    column_detail: str = ""
    gates: dict = field(default_factory=dict)
    supersedes: tuple[str, ...] = ()
    marks: dict = field(default_factory=dict)
    undirected: tuple[str, ...] = ()
    label_free: tuple[str, ...] = ()
    label_matched: tuple[str, ...] = ()
    control: tuple[str, ...] = ()
    effect: tuple[str, ...] = ()


FIELDS = tuple(f.name for f in fields(Shows))
# The class attributes metrics declared before :class:`Shows` -> the field each became (deprecated).
LEGACY = {"table_shape" if name == "shape" else name: name for name in FIELDS}


def _fail(family: str, attr: str, problem: str) -> PresentationError:
    return PresentationError(f"metric {family!r}: {attr} {problem}")


def _names(family: str, name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str | Mapping) or not all(isinstance(v, str) for v in value):
        raise _fail(family, f"presentation.{name}", f"= {value!r} is not a tuple of names; write {name}=({value!r},) "
                                                   "or a tuple")
    return tuple(value)


def _notes(family: str, name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _fail(family, f"presentation.{name}", f"= {value!r} is not a dict of value name -> note (str -> str)")
    return dict(value)


def _text(family: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(family, f"presentation.{name}", f"= {value!r} is not a string")
    return value


def _flag(family: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(family, f"presentation.{name}", f"= {value!r} is not True or False")
    return value


# How each field of :class:`Shows` is checked: its type (names in VALUE_NAMES / VALUE_NOTES must also be declared).
_CHECKS: dict[str, Callable[[str, str, Any], Any]] = {
    **{name: _text for name in ("table", "shape", "reference_explainer", "meaning", "column_detail")},
    **{name: _flag for name in ("relative_to_random", "ranked")},
    **{name: _names for name in ("stages", "supersedes", *VALUE_NAMES)},
    **{name: _notes for name in VALUE_NOTES},
}


def _check_values(cls: type, family: str) -> dict[str, tuple[str, bool]]:
    """``cls.level`` and ``cls.values``, checked: the declarations the presentation's names refer to."""
    if cls.level not in LEVELS:
        raise _fail(family, "level", f"{cls.level!r} is not a level; use one of {', '.join(LEVELS)}")
    values = cls.values
    if not isinstance(values, dict) or not values:
        raise _fail(family, "values", "declares no values; give {value name: (unit, higher_is_better)}")
    for name, declared in values.items():
        if not (isinstance(name, str) and isinstance(declared, tuple) and len(declared) == 2
                and isinstance(declared[0], str) and isinstance(declared[1], bool)):
            raise _fail(family, "values", f"entry {name!r}: {declared!r} is not (unit: str, higher_is_better: bool)")
    return values


def _legacy(cls: type, metric: type) -> dict[str, tuple[str, Any]]:
    """Field -> (old attribute, value) of the pre-:class:`Shows` class attributes declared below ``metric`` in
    ``cls``'s MRO (a subclass's win over its bases')."""
    found: dict[str, tuple[str, Any]] = {}
    for klass in reversed(cls.__mro__[:cls.__mro__.index(metric)]):
        found.update({new: (old, vars(klass)[old]) for old, new in LEGACY.items() if old in vars(klass)})
    return found


def declared(cls: type, family: str) -> Shows:
    """The :class:`Shows` that metric class ``cls`` declares (its ``presentation``), with any deprecated class
    attributes folded in (warning once, with the ``presentation = Shows(...)`` to write instead)."""
    from hansbench.metrics.base import Metric

    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        raise PresentationError(f"metric {family!r}: {cls!r} is not a subclass of hansbench.metrics.base.Metric; "
                                "subclass it")
    shows = cls.presentation
    if not isinstance(shows, Shows):
        raise _fail(family, "presentation", f"is a {type(shows).__name__}, not a Shows; declare presentation = "
                                            "Shows(table=..., headline=(...), ...) from hansbench.metrics.presentation")
    old = _legacy(cls, Metric)
    if old:
        written = ", ".join(f"{new}={value!r}" for new, (_, value) in old.items())
        warnings.warn(f"metric {family!r}: the class attributes {', '.join(o for o, _ in old.values())} are "
                      f"deprecated; declare presentation = Shows({written}) (from hansbench.metrics.presentation "
                      "import Shows) instead", DeprecationWarning, stacklevel=2)
        shows = replace(shows, **{new: value for new, (_, value) in old.items()})
    return shows


def declare(cls: type, family: str) -> Presentation:
    """The validated :class:`Presentation` of metric class ``cls`` registered as ``family``.

    Raises
    ------
    PresentationError
        One line: the metric, the attribute and what it may be (checked: ``level``, ``values``, the
        ``presentation``'s ``shape`` in :data:`SHAPES`, every name in ``headline``, ``undirected``, ``gates``,
        ``marks``, ``label_free``, ``label_matched``, ``control`` and ``effect`` a declared value, the types of the
        rest).
    """
    shows = declared(cls, family)
    values = _check_values(cls, family)
    checked = {name: _CHECKS[name](family, name, getattr(shows, name)) for name in FIELDS}
    for name in (*VALUE_NAMES, *VALUE_NOTES):
        unknown = [n for n in checked[name] if n not in values]
        if unknown:
            raise _fail(family, f"presentation.{name}", f"names undeclared value(s) {', '.join(map(repr, unknown))}; "
                                                        f"declared: {', '.join(values)}")
    shape = checked["shape"] = checked["shape"] or LEVEL_SHAPE[cls.level]
    if shape not in SHAPES:
        raise _fail(family, "presentation.shape", f"{shape!r} is not a table shape; use one of {', '.join(SHAPES)} "
                                                  "(or '' for the level's)")
    doc = (cls.__doc__ or "").strip().splitlines()
    checked["table"] = checked["table"] or family
    checked["meaning"] = checked["meaning"] or (doc[0] if doc else "")
    return Presentation(family, **checked)


_DECLARED: dict[tuple[type, str], Presentation] = {}


def register(family: str, cls: Any) -> None:
    """Validate ``cls``'s declarations as it registers as ``family`` (``Metric.check_declarations`` calls it)."""
    _DECLARED[(cls, family)] = declare(cls, family)


def presentation_of(cls: type, family: str) -> Presentation:
    """The registered presentation of ``cls`` as ``family`` (declared and validated now if it was put in the
    registry without :meth:`~hansbench.registry.Registry.register`, as tests do)."""
    key = (cls, family)
    if key not in _DECLARED:
        _DECLARED[key] = declare(cls, family)
    return _DECLARED[key]
