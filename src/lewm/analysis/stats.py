"""Statistics of the surprise test (spec §9.2): paired t-test, AUROC, pairwise accuracy, bands.

AUROC and the pairwise accuracy are the intuitive-physics literature's scores: AUROC is
the probability that a perturbed trajectory's score exceeds an unperturbed one's, over
all (perturbed, unperturbed) combinations; the relative accuracy is the same probability
within each twin pair only. Ties count one half in both.
"""

from __future__ import annotations

import math

import numpy as np


def paired_t_test(
    perturbed: np.ndarray, unperturbed: np.ndarray
) -> tuple[float | None, float | None]:
    """Two-sided paired t-test (``scipy.stats.ttest_rel``) -> (t, p); None where undefined
    (fewer than 2 pairs, or every difference equal)."""
    from scipy import stats

    a, b = np.asarray(perturbed, float), np.asarray(unperturbed, float)
    if len(a) < 2 or np.ptp(a - b) == 0:
        return None, None
    res = stats.ttest_rel(a, b)
    return float(res.statistic), float(res.pvalue)


def auroc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """Area under the ROC curve of scores separating ``positive`` from ``negative``.

    Computed from mid-ranks (the Mann-Whitney U statistic / (n_pos * n_neg)), so ties
    count one half; O(n log n).
    """
    pos, neg = np.asarray(positive, float), np.asarray(negative, float)
    if not len(pos) or not len(neg):
        return None
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))  # average ranks of ties
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def relative_accuracy(perturbed: np.ndarray, unperturbed: np.ndarray) -> float | None:
    """Fraction of twin pairs whose perturbed score is the higher (ties: one half)."""
    a, b = np.asarray(perturbed, float), np.asarray(unperturbed, float)
    if not len(a):
        return None
    return float(np.mean((a > b) + 0.5 * (a == b)))


def mean_band(x: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column mean and t-based confidence band of x (n, T) -> (mean, low, high), each (T,)."""
    from scipy import stats

    x = np.asarray(x, float)
    mean = x.mean(axis=0)
    n = len(x)
    if n < 2:
        return mean, mean.copy(), mean.copy()
    half = stats.t.ppf(0.5 + level / 2, n - 1) * x.std(axis=0, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half
