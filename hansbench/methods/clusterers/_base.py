"""The template every built-in clusterer follows: validate -> (degenerate?) -> fit -> result_.

Subclasses implement ``_fit(views: list[[N, D_v]]) -> (labels, info)`` or ``(labels, info, scores)``
(``scores`` ``[N]``: per-sample suspicion, higher = more suspicious, see :class:`Clusterer`); this
class does the input checks, the all-identical shortcut, the unsupervised flag and JSON-safe info.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from hansbench.methods.base import Clusterer, ClusteringResult, flag_cluster
from hansbench.methods.clusterers._validation import DEGENERATE_NOTE, check_views, is_degenerate


def jsonable(value: Any) -> Any:
    """numpy scalars/arrays -> Python floats/ints/lists, recursively."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class BaseClusterer(Clusterer):
    """Shared ``fit_predict``; ``ragged`` says whether views of different sizes are supported.

    A subclass implements only :meth:`_fit`; ``fit_predict`` validates the views (finite, enough
    samples, ``n_clusters`` in range), gives identical samples one cluster without calling
    ``_fit`` (``info["degenerate"]``), flags a cluster by ``flag_rule`` and makes ``info`` JSON-safe.

    Parameters
    ----------
    n_clusters, random_state, flag_rule
        As for :class:`hansbench.methods.base.Clusterer`; a subclass adds its own keyword-only
        parameters and stores each unchanged under its own name.
    """

    ragged: ClassVar[bool] = True

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller"):
        super().__init__(n_clusters=n_clusters, random_state=random_state, flag_rule=flag_rule)

    def fit_predict(self, views, y=None) -> np.ndarray:
        """Cluster ``views`` (``[N, V, D]`` or a list of ``[N, D_v]``); ``y`` is ignored (scikit-learn API)."""
        flag_cluster(np.zeros(1, dtype=np.int64), self.flag_rule)  # fail early on a bad rule
        xs = check_views(views, self.n_clusters, ragged=self.ragged, name=self.name or type(self).__name__)
        scores = None
        if is_degenerate(xs):  # identical samples: nothing tells them apart, so every score is the same
            labels, info = np.zeros(xs[0].shape[0], dtype=np.int64), {"degenerate": DEGENERATE_NOTE}
            scores = np.zeros(xs[0].shape[0])
        else:
            out = self._fit(xs)
            labels, info = out[0], out[1]
            scores = out[2] if len(out) > 2 else None
            labels = np.asarray(labels, dtype=np.int64)
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        info = {"n_views": len(xs), **info}
        self.labels_ = labels
        self.result_ = ClusteringResult(labels, flagged=flag_cluster(labels, self.flag_rule), info=jsonable(info),
                                        scores=scores)
        return labels

    def fit(self, views, y=None) -> BaseClusterer:
        """Cluster ``views`` (see :meth:`fit_predict`) and return ``self``."""
        self.fit_predict(views)
        return self

    def _fit(self, views: list[np.ndarray]) -> tuple:
        """The method itself, on validated views.

        Parameters
        ----------
        views : list of np.ndarray
            One ``[N, D_v]`` float64 array per view (of equal ``D_v`` unless ``ragged``), finite,
            with at least ``n_clusters`` distinct samples.

        Returns
        -------
        tuple
            ``(labels, info)`` or ``(labels, info, scores)``: ``labels`` ``[N]`` int, ``info`` a
            dict of diagnostics (numpy values are converted), ``scores`` ``[N]`` float suspicion,
            higher = more suspicious, oriented with :meth:`_flagged_of`.
        """
        raise NotImplementedError

    def _flagged_of(self, labels: np.ndarray) -> int:
        """The cluster :meth:`fit_predict` will flag (for orienting scores inside ``_fit``)."""
        return flag_cluster(np.asarray(labels, dtype=np.int64), self.flag_rule)
