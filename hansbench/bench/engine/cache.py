"""The on-disk format of one cache entry: atomic, verified.

Every entry is one file ``<root>/<kind>/<key>.pt``: a header with the SHA-256 of the
payload, then the payload (``torch.save`` of tensors / state dicts). It is written to a
temporary file and renamed, so an interrupted run never leaves half an entry. Reading
checks the digest and loads with ``weights_only=True``; an entry that cannot be read or
fails its digest raises :class:`CorruptEntry`, which :class:`hansbench.bench.engine.workspace.Workspace`
turns into a logged miss (the node that owns it is recomputed).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

MAGIC = b"HBCACHE1"
_HEADER = len(MAGIC) + 65  # magic, 64 hex characters of SHA-256, newline


class CorruptEntry(Exception):
    """A cache file that cannot be read back or fails its digest."""


def entry_path(root: str | Path, kind: str, key: str) -> Path:
    """Where the cache of a results directory keeps an entry: ``<root>/<kind>/<key>.pt``."""
    return Path(root) / kind / f"{key}.pt"


def _atomic_write(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _detach(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _detach(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_detach(v) for v in value)
    return value


def write_entry(path: Path, value: Any) -> None:
    """Write ``value`` (tensors detached, on the CPU) atomically, with the SHA-256 of its payload in the header."""
    buf = io.BytesIO()
    torch.save(_detach(value), buf)
    payload = buf.getvalue()
    _atomic_write(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload, path)


def read_entry(path: Path) -> Any:
    """The value stored at ``path``; :class:`CorruptEntry` when it is unreadable, altered or unsafe to load."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorruptEntry(f"cannot read: {exc}") from None
    if not raw.startswith(MAGIC) or len(raw) < _HEADER:
        raise CorruptEntry("not a hansbench cache entry (missing header)")
    payload = raw[_HEADER:]
    if hashlib.sha256(payload).hexdigest().encode() != raw[len(MAGIC):_HEADER - 1]:
        raise CorruptEntry("content does not match its digest (truncated or modified)")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # digest matched but the payload is not loadable safely
        raise CorruptEntry(f"cannot be loaded with weights_only=True: {type(exc).__name__}: {exc}") from None
