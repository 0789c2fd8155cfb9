"""Reading suite files: a built-in name or a path, parsed, and merged with the suites it ``extends``.

Tables merge, arrays replace, ``replace = [...]`` takes sections from the child alone, and a parent's
``[data]`` option tables reach only the plugin they were written for (``origins`` records which suite wrote
each inherited option, for errors). Validation is :func:`hansbench.bench.suite.config.validate`.
"""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path

from hansbench.bench.suite.errors import SuiteError
from hansbench.datasets.scenarios import Scenario

TOP_LEVEL = {"suite", "data", "scenarios", "sweep", "models", "explainers", "clusterers", "flagging", "metrics",
             "clustering", "timing"}


def builtin_suites() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("hansbench.suites").iterdir() if p.name.endswith(".toml"))


def _read(ref: str | Path) -> tuple[dict, Path | None]:
    """Parse a suite given as a built-in name or a path."""
    path = Path(ref)
    if path.suffix == ".toml" or path.is_file() or (path.exists() and str(ref) not in builtin_suites()):
        if not path.is_file():
            raise SuiteError(f"suite file {str(path)!r} not found")
        text, origin = path.read_text(), path
    else:
        names = builtin_suites()
        if str(ref) not in names:
            raise SuiteError(f"unknown suite {str(ref)!r}: give a .toml path or one of the built-in suites {names}")
        text, origin = resources.files("hansbench.suites").joinpath(f"{ref}.toml").read_text(), None
    try:
        return tomllib.loads(text), origin
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"suite {str(ref)!r} is not valid TOML: {exc}") from None


def merge_tables(base: dict, override: dict) -> dict:
    """Deep-merge tables; arrays and scalars in ``override`` replace those in ``base``."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_tables(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_raw(ref: str | Path, _seen: tuple = (), origins: dict[str, str] | None = None) -> dict:
    """The suite merged with its parents; ``origins`` (if given) receives the parent suite that wrote each
    inherited ``[data]`` option (``{"artifact_options.size": "quick"}``), for error messages."""
    raw, origin = _read(ref)
    parent = written = raw.get("suite", {}).get("extends")
    if parent:
        if origin is not None and not Path(parent).is_absolute() and Path(parent).suffix == ".toml":
            parent = str(origin.parent / parent)
        if parent in _seen or parent == str(ref):
            raise SuiteError(f"suite.extends forms a cycle: {' -> '.join(map(str, _seen + (str(ref), parent)))}")
        base = load_raw(parent, _seen + (str(ref),), origins)
        replace = raw["suite"].get("replace", [])
        if not isinstance(replace, list) or not set(replace) <= TOP_LEVEL - {"suite"}:
            raise SuiteError(f"suite.replace: expected a list of sections among {sorted(TOP_LEVEL - {'suite'})}, "
                             f"got {replace!r}")
        for section in replace:  # these sections come from this file alone, not merged into the parent's
            base.pop(section, None)
        _inherit_data(base, raw, str(written), {} if origins is None else origins)
        raw = merge_tables(base, raw)
        raw["suite"].pop("extends", None)
        raw["suite"].pop("replace", None)
    return raw


def _inherit_data(base: dict, raw: dict, parent: str, origins: dict[str, str]) -> None:
    """Options inherited from a parent's ``[data]`` apply only to the plugin they were written for: where this
    suite's ``[data]`` names another dataset/artifact, the parent's option table for it is dropped. Records in
    ``origins`` which suite wrote each option still inherited."""
    own, data = raw.get("data"), base.get("data")
    own = own if isinstance(own, dict) else {}
    if not isinstance(data, dict):
        origins.clear()  # no [data] from the parents (none, or replaced)
        return
    for kind in ("dataset", "artifact"):
        table = f"{kind}_options"
        if kind in own and own[kind] != data.get(kind, Scenario.default(kind)):
            data.pop(table, None)
        inherited, mine = (t if isinstance(t, dict) else {} for t in (data.get(table), own.get(table)))
        for key in [k for k in origins if k.startswith(f"{table}.") and k.partition(".")[2] not in inherited]:
            del origins[key]  # the table (or the key) was dropped
        for key in inherited:
            if key in mine:
                origins.pop(f"{table}.{key}", None)
            else:
                origins.setdefault(f"{table}.{key}", parent)
