"""How a metric's rows are shown: the class attributes a :class:`~hansbench.metrics.base.Metric` declares
(``table``, ``table_shape``, ``headline``, ... see its class body), gathered into one frozen
:class:`Presentation` and validated once, when the metric registers (``hansbench.registry.metrics``).

A bad declaration of a plugin (a shape that does not exist, a headline naming a value the metric does not
declare) fails there, in one line naming the metric, the attribute and what is allowed, instead of when
tables are built. The leaderboard reads only :class:`Presentation`, never the class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SHAPES = ("reliance", "explainer", "detection", "stages", "model")
LEVELS = ("explainer", "clustering", "model")
LEVEL_SHAPE = {"model": "model", "explainer": "explainer", "clustering": "detection"}  # table_shape "" by level
# declared names that must be keys of ``values``
VALUE_NAMES = ("headline", "undirected", "label_free", "label_matched", "control", "effect")
VALUE_NOTES = ("gates", "marks")  # value name -> note


class PresentationError(ValueError):
    """A metric's declaration (values or presentation) that the leaderboard could not show."""


@dataclass(frozen=True)
class Presentation:
    """How one family's rows are shown (the metric's class attributes, with defaults filled in).

    ``shape`` is the declared ``table_shape`` (or the level's); the other fields are the attributes of the
    same name (meaning: the class docstring's first line when none is declared).
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


def _fail(family: str, attr: str, problem: str) -> PresentationError:
    return PresentationError(f"metric {family!r}: {attr} {problem}")


def _names(cls: type, family: str, attr: str) -> tuple[str, ...]:
    value = getattr(cls, attr)
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise _fail(family, attr, f"= {value!r} is not a tuple of names; write {attr} = ({value!r},) or a tuple")
    return tuple(value)


def _notes(cls: type, family: str, attr: str) -> dict[str, str]:
    value = getattr(cls, attr)
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _fail(family, attr, f"= {value!r} is not a dict of value name -> note (str -> str)")
    return dict(value)


def _text(cls: type, family: str, attr: str) -> str:
    value = getattr(cls, attr)
    if not isinstance(value, str):
        raise _fail(family, attr, f"= {value!r} is not a string")
    return value


def _flag(cls: type, family: str, attr: str) -> bool:
    value = getattr(cls, attr)
    if not isinstance(value, bool):
        raise _fail(family, attr, f"= {value!r} is not True or False")
    return value


def declare(cls: type, family: str) -> Presentation:
    """The validated :class:`Presentation` of metric class ``cls`` registered as ``family``.

    Raises
    ------
    PresentationError
        One line: the metric, the attribute and what it may be (checked: ``level``, ``values``, a
        ``table_shape`` in :data:`SHAPES`, every name in ``headline``, ``undirected``, ``gates``, ``marks``,
        ``label_free``, ``label_matched``, ``control`` and ``effect`` a declared value, the types of the rest).
    """
    from hansbench.metrics.base import Metric

    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        raise PresentationError(f"metric {family!r}: {cls!r} is not a subclass of hansbench.metrics.base.Metric; "
                                "subclass it")
    if cls.level not in LEVELS:
        raise _fail(family, "level", f"{cls.level!r} is not a level; use one of {', '.join(LEVELS)}")
    values = cls.values
    if not isinstance(values, dict) or not values:
        raise _fail(family, "values", "declares no values; give {value name: (unit, higher_is_better)}")
    for name, declared in values.items():
        if not (isinstance(name, str) and isinstance(declared, tuple) and len(declared) == 2
                and isinstance(declared[0], str) and isinstance(declared[1], bool)):
            raise _fail(family, "values", f"entry {name!r}: {declared!r} is not (unit: str, higher_is_better: bool)")
    shape = _text(cls, family, "table_shape") or LEVEL_SHAPE[cls.level]
    if shape not in SHAPES:
        raise _fail(family, "table_shape", f"{shape!r} is not a table shape; use one of {', '.join(SHAPES)} "
                                           "(or '' for the level's)")
    named = {attr: _names(cls, family, attr) for attr in VALUE_NAMES}
    notes = {attr: _notes(cls, family, attr) for attr in VALUE_NOTES}
    for attr, names in [*named.items(), *notes.items()]:
        unknown = [n for n in names if n not in values]
        if unknown:
            raise _fail(family, attr, f"names undeclared value(s) {', '.join(map(repr, unknown))}; "
                                      f"declared: {', '.join(values)}")
    doc = (cls.__doc__ or "").strip().splitlines()
    return Presentation(
        family, _text(cls, family, "table") or family, shape, named["headline"],
        _flag(cls, family, "relative_to_random"), _text(cls, family, "reference_explainer"),
        _flag(cls, family, "ranked"), _text(cls, family, "meaning") or (doc[0] if doc else ""),
        _names(cls, family, "stages"), _text(cls, family, "column_detail"), notes["gates"],
        _names(cls, family, "supersedes"), notes["marks"], named["undirected"], named["label_free"],
        named["label_matched"], named["control"], named["effect"])


_DECLARED: dict[tuple[type, str], Presentation] = {}


def register(family: str, cls: Any) -> None:
    """The metrics registry's hook: validate ``cls``'s declaration when it registers as ``family``."""
    _DECLARED[(cls, family)] = declare(cls, family)


def presentation_of(cls: type, family: str) -> Presentation:
    """The registered presentation of ``cls`` as ``family`` (declared and validated now if it was put in the
    registry without :meth:`~hansbench.registry.Registry.register`, as tests do)."""
    key = (cls, family)
    if key not in _DECLARED:
        _DECLARED[key] = declare(cls, family)
    return _DECLARED[key]
