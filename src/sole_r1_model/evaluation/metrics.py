"""Metrics of a progress estimator against ground truth: pure numpy/scipy functions, NaN when undefined.

A metric that has no value on its input (a constant series has no correlation, AUROC needs both classes) returns
NaN instead of raising, so one degenerate episode never ends an evaluation; `mean_defined` then averages only
the defined values and says how many were left out. The report turns NaN into JSON null with a reason.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

DEFAULT_SUCCESS_THRESHOLD = 90.0  # percent: final progress at or above it counts as "the rewarder saw success"


def _pair(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Two equal-length 1-D float arrays, or ValueError naming the lengths."""
    a, b = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"need series of equal length, got {a.size} and {b.size}")
    return a, b


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation of two series; NaN when either is constant or shorter than 2."""
    a, b = _pair(x, y)
    if a.size < 2:
        return math.nan
    # A series with no spread has no linear relation to anything: undefined, not 0.
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    da, db = a - a.mean(), b - b.mean()
    return float(np.clip(np.dot(da, db) / math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db))), -1.0, 1.0))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either series is constant."""
    from scipy.stats import rankdata  # lazily: `sole-r1 --help` imports this module and need not pay for scipy

    a, b = _pair(x, y)
    return pearson(rankdata(a), rankdata(b)) if a.size else math.nan


def mean_absolute_error(prediction: Sequence[float], truth: Sequence[float]) -> float:
    """Mean absolute difference, in the units of the inputs (progress points); NaN for empty input."""
    a, b = _pair(prediction, truth)
    return float(np.mean(np.abs(a - b))) if a.size else math.nan


def value_order_correlation(progress: Sequence[float], frame_indices: Sequence[int]) -> float:
    """VOC: Spearman correlation of progress answers with their frame (time) index; NaN when undefined."""
    return spearman(progress, frame_indices)


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of `scores` separating True from False labels (ties count 1/2); NaN if one class."""
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=float).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"need one label per score, got {y.size} labels for {s.size} scores")
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    # Mann-Whitney U from average ranks: U / (n+ n-) is the probability a positive outscores a negative.
    ranks = rankdata(s)
    u = float(ranks[y].sum()) - positives * (positives + 1) / 2.0
    return u / (positives * negatives)


def auroc_undefined_reason(labels: Sequence[Optional[bool]]) -> str:
    """Why AUROC has no value for these labels ('' when it has one)."""
    known = [bool(v) for v in labels if v is not None]
    if not known:
        return "no episode has a success label"
    if all(known):
        return "every labelled episode is successful: AUROC needs unsuccessful ones too"
    if not any(known):
        return "every labelled episode is unsuccessful: AUROC needs successful ones too"
    return ""


def perceived_success(final_progress: float, threshold: float = DEFAULT_SUCCESS_THRESHOLD) -> bool:
    """True when the final progress reaches the threshold (the rewarder believes the task is done)."""
    return bool(final_progress >= threshold)


def mean_defined(values: Sequence[Optional[float]]) -> tuple[float, int, int]:
    """(mean of the finite values, how many were used, how many were NaN/None and left out); NaN mean if none."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    left_out = len(values) - len(finite)
    return (float(np.mean(finite)) if finite else math.nan), len(finite), left_out


def rate(flags: Sequence[bool]) -> float:
    """Fraction of True flags; NaN for an empty sequence."""
    return float(np.mean(np.asarray(flags, dtype=bool))) if len(flags) else math.nan
