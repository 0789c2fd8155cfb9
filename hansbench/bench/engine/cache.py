"""The on-disk cache of a results directory: atomic, verified, self-healing.

Every entry is one file ``<root>/<kind>/<key>.pt``: a header with the SHA-256 of the
payload, then the payload (``torch.save`` of tensors / state dicts). It is written to a
temporary file and renamed, so an interrupted run never leaves half an entry. An entry
that cannot be read or fails its digest is logged with its path, removed and treated
as a miss: the node that owns it is recomputed. Loads use ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hansbench.bench.engine.keys import hash_key, tensor_digest  # noqa: F401  (re-exported for plugins)

MAGIC = b"HBCACHE1"


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


def entry_path(root: str | Path, kind: str, key: str) -> Path:
    """Where the cache of a results directory keeps an entry: ``<root>/<kind>/<key>.pt``."""
    return Path(root) / kind / f"{key}.pt"


class CorruptEntry(Exception):
    """A cache file that cannot be read back or fails its digest."""


class Workspace:
    """The cache of one results directory (``<out>/cache``)."""

    def __init__(self, root: str | Path, device: torch.device | None = None,
                 log: Callable[[str], None] | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.device = device or torch.device("cpu")
        self.log = log or (lambda msg: None)
        self.healed: list[Path] = []

    def path(self, kind: str, key: str) -> Path:
        """The file of entry ``key`` of ``kind`` (``<root>/<kind>/<key>.pt``)."""
        return entry_path(self.root, kind, key)

    def has(self, kind: str, key: str) -> bool:
        """Whether an entry exists (not whether it is readable: :meth:`load` checks that)."""
        return self.path(kind, key).is_file()

    def save(self, kind: str, key: str, value: Any) -> None:
        """Write ``value`` atomically, with the SHA-256 of its payload in the header."""
        buf = io.BytesIO()
        torch.save(_detach(value), buf)
        payload = buf.getvalue()
        _atomic_write(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload, self.path(kind, key))

    def _read(self, path: Path) -> Any:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CorruptEntry(f"cannot read: {exc}") from None
        head = len(MAGIC) + 65
        if not raw.startswith(MAGIC) or len(raw) < head:
            raise CorruptEntry("not a hansbench cache entry (missing header)")
        payload = raw[head:]
        if hashlib.sha256(payload).hexdigest().encode() != raw[len(MAGIC):head - 1]:
            raise CorruptEntry("content does not match its digest (truncated or modified)")
        try:
            return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        except Exception as exc:  # digest matched but the payload is not loadable safely
            raise CorruptEntry(f"cannot be loaded with weights_only=True: {type(exc).__name__}: {exc}") from None

    def load(self, kind: str, key: str) -> Any | None:
        """The entry, or ``None`` on a miss; a corrupt entry is logged, removed and treated as a miss."""
        path = self.path(kind, key)
        if not path.is_file():
            return None
        try:
            value = self._read(path)
        except CorruptEntry as exc:
            self.log(f"cache entry {path} is corrupt ({exc}); recomputing it")
            self.healed.append(path)
            try:
                path.unlink()
            except OSError:
                pass
            return None
        return value

    def cached(self, kind: str, key: str, compute: Callable[[], Any]) -> Any:
        """The entry, or ``compute()`` saved under ``key`` on a miss."""
        value = self.load(kind, key)
        if value is None:
            value = compute()
            self.save(kind, key, value)
        return value

    # -- helpers for plugins that cache their own auxiliary work (e.g. ClaDec's decoders) ----------
    def cached_module(self, key_parts: dict, build: Callable[[], nn.Module],
                      init: Callable[[], nn.Module] | None = None) -> nn.Module:
        """The module ``build()`` trains, or its cached state dict loaded into ``init()``.

        ``init`` returns the untrained architecture; without it nothing can be loaded
        safely (no full pickles), so ``build`` runs every time.
        """
        key = hash_key(key_parts)
        state = self.load("modules", key) if init is not None else None
        if state is not None:
            module = init()
            module.load_state_dict(state)
            return module.to(self.device).eval()
        module = build()
        self.save("modules", key, module.state_dict())
        return module.to(self.device).eval()

    def cached_tensors(self, key_parts: dict, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A dict of tensors (and plain values), computed once per key."""
        return self.cached("tensors", hash_key(key_parts), compute)
