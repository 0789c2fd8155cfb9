"""Write docs/catalogue.md from the registries, so the per-name facts live in one place: the code.

For every built-in entry of every registry (:data:`hansbench.registry.REGISTRIES`): the first paragraph
of its docstring, its options (``name = default``, from ``__init__`` or a ``defaults`` table) and the
class attributes that say where it applies (a metric's level, model kinds, table and declared values with
their units and directions; an explainer's model kinds and views; ...). Plugins installed through
entry points are left out, so the file is the same on every machine. The output is deterministic:
names sorted, no memory addresses or file paths.

    python tools/catalogue.py           # rewrite docs/catalogue.md
    python tools/catalogue.py --check   # exit 1 if docs/catalogue.md is stale (tests/test_catalogue.py)
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
from pathlib import Path
from typing import Any

from hansbench.bench.report.escape import markdown
from hansbench.metrics.presentation import presentation_of
from hansbench.registry import REGISTRIES, load_all

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = ROOT / "docs" / "catalogue.md"
BUILTIN_PREFIX = "hansbench."

TITLES = {
    "explainers": "Explainers",
    "clusterers": "Clusterers",
    "inputs": "Clusterer inputs",
    "metrics": "Metrics",
    "datasets": "Datasets",
    "artifacts": "Artifacts",
    "poisonings": "Poisonings",
    "models": "Model kinds",
    "backbones": "Backbones",
    "flagging": "Flagging rules",
}
# Class attributes shown per registry (after the options); metrics get their values table as well.
FACTS = {
    "explainers": ("model_kinds", "multiview", "views", "version"),
    "clusterers": ("input", "detects_by", "multiview", "pixels_control", "version"),
    "inputs": ("uses_model", "needs_explainer", "uses_settings", "version"),
    "metrics": ("level", "model_kinds", "requires", "needs_retraining", "version"),
    "datasets": ("version",),
    "artifacts": ("version",),
    "poisonings": ("needs_target", "all_to_one", "stamps", "is_control", "control_of", "version"),
    "models": ("options",),
    "backbones": (),
    "flagging": ("applies_to", "needs_retraining"),
}
# ``code`` spans and Sphinx roles (:class:`X`) in docstrings; everything else is escaped text.
CODE = re.compile(r"(?::[a-z]+:)?``?([^`]+)``?")
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def code(text: object) -> str:
    """``text`` as a Markdown code span (a fence longer than any backtick run inside)."""
    text = " ".join(str(text).split())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def prose(text: str) -> str:
    """Docstring text as Markdown: code spans kept as code, the rest escaped."""
    out, last = [], 0
    for m in CODE.finditer(text):
        out.append(markdown(text[last:m.start()]))
        out.append(code(m.group(1)))
        last = m.end()
    out.append(markdown(text[last:]))
    return "".join(out)


def first_paragraph(obj: Any) -> str:
    """The first paragraph of ``obj``'s own docstring (not an inherited one), on one line."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    doc = inspect.cleandoc(doc or "")
    return " ".join(doc.split("\n\n")[0].split())


def value_repr(value: Any) -> str:
    """A default as source-like text, without memory addresses."""
    if value is inspect.Parameter.empty:
        return "(required)"
    if isinstance(value, type) or callable(value):
        return getattr(value, "__qualname__", type(value).__name__)
    return ADDRESS.sub("", repr(value))


def options_of(obj: Any) -> list[tuple[str, str]]:
    """``(name, default)`` of every keyword option: ``defaults`` tables, else ``__init__`` along the MRO.

    A class whose ``__init__`` passes ``**options`` on gets its bases' parameters too (the base
    ``Metric``/``Explainer`` ``__init__`` takes none); functions (backbones) give their own signature.
    """
    if not isinstance(obj, type):
        return _params(inspect.signature(obj))
    defaults = getattr(obj, "defaults", None)
    if isinstance(defaults, dict):
        return [(k, value_repr(v)) for k, v in defaults.items()]
    out: list[tuple[str, str]] = []
    for klass in obj.__mro__:
        init = klass.__dict__.get("__init__")
        if klass is object or init is None:
            continue
        sig = inspect.signature(init)
        seen = {k for k, _ in out}
        out += [p for p in _params(sig, skip_self=True) if p[0] not in seen]
        if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            break
    return out


def _params(sig: inspect.Signature, skip_self: bool = False) -> list[tuple[str, str]]:
    params = list(sig.parameters.values())[1 if skip_self else 0:]
    return [(p.name, value_repr(p.default)) for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def fact(value: Any) -> str:
    """A class attribute as a cell: tuples and sets as comma lists, empty as a dash."""
    if isinstance(value, (tuple, list, frozenset, set)):
        items = sorted(value) if isinstance(value, (frozenset, set)) else list(value)
        return ", ".join(code(v) for v in items) if items else "—"
    if value in ("", None):
        return "—"
    return code(value if isinstance(value, str) else value_repr(value))


def recipe_fields(kind: Any) -> list[tuple[str, str]]:
    """A model kind's training settings: the fields of its recipe dataclass with their defaults."""
    recipe = getattr(kind, "recipe", None)
    if recipe is None or not dataclasses.is_dataclass(recipe):
        return []
    out = []
    for f in dataclasses.fields(recipe):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = inspect.Parameter.empty
        out.append((f.name, value_repr(default)))
    return out


def model_options(kind: Any) -> list[tuple[str, str]]:
    """A model kind's ``options`` with the defaults of its ``model_class``."""
    names = tuple(getattr(kind, "options", ()))
    params = inspect.signature(kind.model_class.__init__).parameters
    return [(n, value_repr(params[n].default) if n in params else "(required)") for n in names]


def option_list(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(code(f"{k} = {v}") for k, v in pairs) if pairs else "none"


def direction(undirected: tuple[str, ...], value: str, higher: bool) -> str:
    if value in undirected:
        return "— (undirected)"
    return "↑ higher is better" if higher else "↓ lower is better"


def entry(key: str, name: str, obj: Any) -> list[str]:
    """The Markdown lines of one registered name."""
    where = f"{obj.__module__}.{getattr(obj, '__qualname__', getattr(obj, '__name__', ''))}"
    lines = [f"### {code(name)}", "", f"{code(where)}", ""]
    summary = first_paragraph(obj)
    lines += [prose(summary) if summary else "*(no docstring)*", ""]
    if key == "models":
        lines.append(f"- model options: {option_list(model_options(obj))}")
        lines.append(f"- recipe ({code(obj.recipe.__name__)}): {option_list(recipe_fields(obj))}")
    else:
        lines.append(f"- options: {option_list(options_of(obj))}")
    for attr in FACTS[key]:
        if key == "models" and attr == "options":
            continue
        if hasattr(obj, attr):
            lines.append(f"- {attr}: {fact(getattr(obj, attr))}")
    if key == "metrics":  # where the leaderboard shows it: the validated ``presentation``, defaults filled in
        shown = presentation_of(obj, name)
        lines.append(f"- table: {code(shown.table)} (shape {code(shown.shape)})")
        lines += ["", "| value | unit | direction |", "|---|---|---|"]
        for value, (unit, higher) in obj.values.items():
            lines.append(f"| {code(value)} | {markdown(unit) or '—'} | {direction(shown.undirected, value, higher)} |")
    return [*lines, ""]


def builtin_items(registry) -> list[tuple[str, Any]]:
    """The registry's entries defined in hansbench itself, sorted by name (installed plugins and what tests
    register, e.g. :class:`hansbench.testing.CornerSquare`, left out)."""
    return [(n, o) for n, o in registry.items()
            if getattr(o, "__module__", "").startswith(BUILTIN_PREFIX) and o.__module__ != "hansbench.testing"]


def render() -> str:
    """The whole catalogue as Markdown text."""
    load_all()
    lines = [
        "# Catalogue of registered components",
        "",
        "<!-- Generated by tools/catalogue.py from the registries; do not edit by hand. "
        "Regenerate with `python tools/catalogue.py`; tests/test_catalogue.py fails while this file is stale. -->",
        "",
        "Every built-in name that a suite can use, per registry, with the first paragraph of its docstring, its "
        "options (`name = default`) and the class attributes that say where it applies. `hansbench list <registry>` "
        "shows the same names with installed plugins; [methods.md](methods.md) says why the methods are built as they are.",
        "",
    ]
    toc = [f"- [{TITLES[k]}](#{TITLES[k].lower().replace(' ', '-')}) (`{k}`)" for k in REGISTRIES]
    lines += [*toc, ""]
    for key, registry in REGISTRIES.items():
        lines += [f"## {TITLES[key]}", ""]
        if key == "metrics":
            lines += ["A row's `metric` column names one of the declared values; its `unit` and "
                      "`higher_is_better` come from this table (undirected values keep their declared flag "
                      "but are never ranked or tested).", ""]
        for name, obj in builtin_items(registry):
            lines += entry(key, name, obj)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not what would be written")
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH, help="the catalogue file (default: docs/catalogue.md)")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else None
        if current != text:
            shown = args.path.resolve().relative_to(ROOT) if args.path.resolve().is_relative_to(ROOT) else args.path
            print(f"{shown} is stale (the registries changed): run `python tools/catalogue.py` and commit it",
                  file=sys.stderr)
            return 1
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
