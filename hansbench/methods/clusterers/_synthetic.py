"""Planted multi-view data: moved to :mod:`hansbench.testing` (re-exported here for old imports)."""

from hansbench.testing import planted_views

__all__ = ["planted_views"]
