"""Spectral signatures (Tran, Li, Madry 2018, *Spectral Signatures in Backdoor Attacks*, Algorithm 1).

A backdoor leaves a trace in the penultimate representations of the target class that is
strong along one direction: the top singular vector of the centred representations. PAPERS.md §8:

- input: ``activations`` (penultimate representations ``r_i`` of the inspected class; several
  views are concatenated);
- ``mu`` = their mean, ``v`` = top right singular vector of ``[r_i - mu]`` (scikit-learn
  ``PCA(1, svd_solver="full")``: the exact SVD of the centred matrix);
- score ``s_i = <r_i - mu, v>^2`` (the sign of ``v`` does not matter);
- flagged without labels: the ``round(1.5 * expected_fraction * n)`` highest scores. The paper
  uses the true poison rate ``eps``; ``expected_fraction`` is an assumed one (default 0.1, so 15 %
  of the class is removed), stated in the row's info. Threshold-free metrics (AUROC/AUPRC) read
  the scores and do not depend on it.

ART's ``SpectralSignatureDefense.spectral_signature_scores`` returns ``|<r_i, v>|`` of the
*uncentred* ``r_i``; on centred input it is ``sqrt(s_i)`` (tests/methods/test_detectors.py checks that).
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from hansbench.methods.clusterers._detect import ScoreDetector, n_removed, removal_info, top_scored
from hansbench.registry import clusterers


@clusterers.register("spectral-signatures")
class SpectralSignatures(ScoreDetector):
    """Squared projection on the top singular vector of centred activations; flags the 1.5·ε·n highest (Tran et al. 2018)."""

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller", *,
                 expected_fraction: float = 0.1, removal_multiplier: float = 1.5):
        super().__init__(n_clusters=n_clusters, random_state=random_state, flag_rule=flag_rule)
        self.expected_fraction = expected_fraction
        self.removal_multiplier = removal_multiplier

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
        x = np.concatenate(views, axis=1)
        n = x.shape[0]
        m = n_removed(n, self.expected_fraction, self.removal_multiplier, self.name)
        pca = PCA(n_components=1, svd_solver="full")  # exact: no randomness, random_state unused
        scores = pca.fit_transform(x)[:, 0] ** 2
        info = {**removal_info(self.expected_fraction, self.removal_multiplier, m, n),
                "top_singular_value": float(pca.singular_values_[0]),
                "explained_variance_ratio": float(pca.explained_variance_ratio_[0])}
        return top_scored(scores, m), info, scores
