"""Node keys: the one place that turns what a node depends on into its key.

A key is the SHA-256 of a canonical JSON of ``{type, params, code, inputs}``: the node's
own parameters, the version of the code that computes it, and its inputs' keys, nested
(never merged, so one node's ``options`` cannot overwrite another's). Data enters keys by
content: tensors by their bytes, and any option whose value names an existing file or
folder by a digest of what is there (a ``folder`` dataset's images, a ``class_map`` JSON, a
backbone's ``weights``).

Code versions are a plugin's declared ``version`` plus a digest of the source of its
module and of the private helper modules beside it (``_*.py``): editing a method without
bumping its version still reruns what depends on it.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import hansbench

KEY_CHARS = 24  # hex characters of a key (96 bits)


def tensor_digest(t: Any) -> str:
    """SHA-256 of a tensor's shape, dtype and bytes."""
    import torch

    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(str((tuple(t.shape), str(t.dtype))).encode())
    if t.numel():
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def canonical(obj: Any) -> Any:
    """A JSON-able, order-independent form of ``obj`` (tensors and arrays by content)."""
    if isinstance(obj, dict):
        return {str(k): canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor):
        return {"tensor_sha256": tensor_digest(obj)}
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(obj, np.ndarray):
            return {"array_sha256": hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest(),
                    "shape": list(obj.shape), "dtype": str(obj.dtype)}
        if isinstance(obj, (np.integer, np.floating, np.bool_)):
            return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def digest(obj: Any, n: int = KEY_CHARS) -> str:
    """The first ``n`` hex characters of the SHA-256 of ``obj`` in canonical JSON."""
    text = json.dumps(canonical(obj), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def hash_key(parts: dict) -> str:
    """Key of a free-form description (for caches outside the graph, e.g. an explainer's decoder)."""
    return digest({"hansbench": hansbench.__version__, **parts})


def node_key(node_type: str, params: dict, code: str, inputs: dict[str, str] | None = None) -> str:
    """The key of a graph node: its type, own parameters, code version and input keys (nested)."""
    return digest({"type": node_type, "params": params, "code": code, "inputs": dict(inputs or {})})


# ------------------------------------------------------------------------------------------ files
@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def path_digest(path: str | Path) -> str:
    """Digest of a file's bytes, or of a folder's relative paths and file bytes (recursive, sorted)."""
    p = Path(path)
    if p.is_file():
        st = p.stat()
        return _file_digest(str(p.resolve()), st.st_size, st.st_mtime_ns)
    h = hashlib.sha256()
    for root, dirs, files in os.walk(p):
        dirs.sort()
        for name in sorted(files):
            f = Path(root) / name
            try:
                st = f.stat()
                d = _file_digest(str(f.resolve()), st.st_size, st.st_mtime_ns)
            except OSError as exc:  # unreadable: part of the content all the same
                d = f"unreadable:{type(exc).__name__}"
            h.update(f"{f.relative_to(p).as_posix()}\0{d}\n".encode())
    return h.hexdigest()


def with_file_digests(value: Any) -> Any:
    """``value`` with every string that names an existing file or folder replaced by its content digest."""
    if isinstance(value, dict):
        return {k: with_file_digests(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [with_file_digests(v) for v in value]
    if isinstance(value, (str, Path)) and str(value) and len(str(value)) < 4096:
        p = Path(value).expanduser()
        try:
            exists = p.exists()
        except OSError:
            exists = False
        if exists:
            return {"path": str(value), "content_sha256": path_digest(p)}
    return value


# ------------------------------------------------------------------------------------------- code
@functools.lru_cache(maxsize=1024)
def _source_digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return "unavailable"


def _module_files(module: ModuleType) -> list[str]:
    """The module's file plus the private helper modules (``_*.py``) of its package."""
    file = getattr(module, "__file__", None)
    if not file:
        return []
    here = Path(file)
    files = {str(here)}
    if here.name != "__init__.py":
        files |= {str(p) for p in here.parent.glob("_*.py") if p.name != "__init__.py"}
    return sorted(files)


def code_version(*objs: Any) -> str:
    """Declared versions plus source digests of the modules that define ``objs`` (classes or modules)."""
    parts = []
    for obj in objs:
        module = obj if isinstance(obj, ModuleType) else inspect.getmodule(obj)
        version = "" if isinstance(obj, ModuleType) else str(getattr(obj, "version", ""))
        files = _module_files(module) if module is not None else []
        name = getattr(obj, "__qualname__", getattr(obj, "__name__", type(obj).__name__))
        parts.append(f"{name}:{version}:" + ",".join(_source_digest(f) for f in files))
    return digest(parts, 16)


def package_version(package: str) -> str:
    """Source digest of every module of a package (for code without a plugin class, e.g. training)."""
    import importlib

    mod = importlib.import_module(package)
    root = Path(mod.__file__).parent
    return digest([(p.relative_to(root).as_posix(), _source_digest(str(p))) for p in sorted(root.rglob("*.py"))], 16)
