"""Evaluation metrics against independent computations (scipy.stats, brute force, hand-worked cases)."""
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from sole_r1_model.evaluation import metrics
from sole_r1_model.evaluation.episodes import Episode
from sole_r1_model.evaluation.evaluate import evaluate_record, failed_episode, summarize
from sole_r1_model.records import build_record


def brute_force_auroc(scores, labels):
    """P(score of a positive > score of a negative) + 1/2 P(tie), over every positive/negative pair."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_pearson_matches_scipy_on_random_series():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.normal(size=25), rng.normal(size=25)
        y = y + rng.uniform(-2, 2) * x
        assert metrics.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)


def test_pearson_is_nan_for_a_constant_or_too_short_series():
    assert math.isnan(metrics.pearson([5, 5, 5, 5], [0, 1, 2, 3]))
    assert math.isnan(metrics.pearson([0, 1, 2, 3], [7, 7, 7, 7]))
    assert math.isnan(metrics.pearson([1], [2]))
    with pytest.raises(ValueError, match="equal length"):
        metrics.pearson([1, 2, 3], [1, 2])


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.integers(0, 5, size=12)  # many ties
        y = rng.integers(0, 5, size=12)
        expected = stats.spearmanr(x, y)[0]
        got = metrics.spearman(x, y)
        assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_mae_of_a_hand_worked_case():
    assert metrics.mean_absolute_error([0, 50, 100], [10, 50, 70]) == pytest.approx(40 / 3)


def test_voc_is_one_for_rising_minus_one_for_falling_and_spearman_on_a_small_case():
    assert metrics.value_order_correlation([10, 20, 35, 90], [2, 5, 8, 24]) == pytest.approx(1.0)
    assert metrics.value_order_correlation([90, 40, 30, 10], [2, 5, 8, 24]) == pytest.approx(-1.0)
    # Ranks of [10, 30, 30, 20] are [1, 3.5, 3.5, 2] against [1, 2, 3, 4]: Pearson of the ranks by hand.
    r, t = np.array([1, 3.5, 3.5, 2]), np.array([1, 2, 3, 4.0])
    dr, dt = r - r.mean(), t - t.mean()
    hand = (dr * dt).sum() / math.sqrt((dr ** 2).sum() * (dt ** 2).sum())
    assert metrics.value_order_correlation([10, 30, 30, 20], [1, 2, 3, 4]) == pytest.approx(hand)
    assert math.isnan(metrics.value_order_correlation([40, 40, 40], [1, 2, 3]))


def test_auroc_matches_brute_force_pairs_with_ties():
    rng = np.random.default_rng(2)
    for _ in range(30):
        scores = rng.integers(0, 6, size=15).astype(float)
        labels = rng.integers(0, 2, size=15).astype(bool)
        if labels.all() or not labels.any():
            continue
        assert metrics.auroc(scores, labels) == pytest.approx(brute_force_auroc(scores, labels))


def test_auroc_perfect_reversed_and_undefined():
    assert metrics.auroc([100, 35, 3, 27], [True, True, False, False]) == 1.0
    assert metrics.auroc([0, 10, 80, 90], [True, True, False, False]) == 0.0
    assert metrics.auroc([5, 5], [True, False]) == 0.5
    assert math.isnan(metrics.auroc([1, 2, 3], [True, True, True]))
    assert "unsuccessful" in metrics.auroc_undefined_reason([True, True, None])
    assert "successful ones" in metrics.auroc_undefined_reason([False])
    assert "no episode" in metrics.auroc_undefined_reason([None, None])
    assert metrics.auroc_undefined_reason([True, False]) == ""


def test_perceived_success_threshold_is_inclusive():
    assert metrics.perceived_success(90.0, 90.0) and not metrics.perceived_success(89.9, 90.0)
    assert metrics.perceived_success(100.0) and not metrics.perceived_success(35.0)


def test_mean_defined_leaves_out_nan_and_none_and_counts_them():
    mean, used, left_out = metrics.mean_defined([0.5, float("nan"), None, 1.0])
    assert (mean, used, left_out) == (0.75, 2, 2)
    mean, used, left_out = metrics.mean_defined([float("nan")])
    assert math.isnan(mean) and (used, left_out) == (0, 1)


def _episode(stem, truth, success):
    return Episode(stem=stem, task="Pick up the cube.", ground_truth=tuple(truth), success=success,
                   truth_path=Path(f"{stem}.json"))


def _record(keys, progress, n, valid=()):
    return build_record("test", "Pick up the cube.", n, keys, progress, ["<answer>x</answer>"] * len(keys), valid)


def test_evaluate_record_interpolates_key_frames_before_comparing():
    truth = [0, 20, 40, 60, 100]
    record = _record([0, 2, 4], [0, 50, 100], 5)
    e = evaluate_record(_episode("a", truth, True), record)
    predicted = [0, 25, 50, 75, 100]  # linear between the key frames, worked by hand
    assert e.mae == pytest.approx(np.mean(np.abs(np.subtract(predicted, truth))))
    assert e.pearson == pytest.approx(stats.pearsonr(predicted, truth)[0])
    assert e.voc == pytest.approx(1.0) and e.final_progress == 100 and e.perceived_success is True
    assert e.num_calls == 2


def test_summary_of_degenerate_episodes_reports_nan_with_counts_and_reasons():
    flat = evaluate_record(_episode("flat", [0] * 5, True), _record([0, 2, 4], [0, 50, 95], 5))
    rising = evaluate_record(_episode("rise", [0, 25, 50, 75, 100], True),
                             _record([0, 2, 4], [0, 40, 80], 5, valid=[True, False, True]))
    broken = failed_episode(_episode("broken", [0, 1], None), "cannot open video")
    summary = summarize([flat, rising, broken], threshold=90)
    assert summary["pearson_mean"] == pytest.approx(rising.pearson)  # the constant-truth episode is left out
    assert (summary["pearson_episodes"], summary["pearson_undefined"]) == (1, 1)
    assert summary["pearson_undefined_stems"] == ["flat"]
    assert summary["mae_mean"] == pytest.approx((flat.mae + rising.mae) / 2)
    assert math.isnan(summary["auroc_final"]) and "unsuccessful" in summary["auroc_reason"]
    assert summary["num_failed"] == 1 and summary["num_scored"] == 2
    assert summary["invalid_rate"] == pytest.approx(1 / 4)  # pooled: 1 invalid answer in 4 calls
    assert summary["perceived_success_rate"] == pytest.approx(0.5)  # 95 >= 90, 80 < 90
    assert math.isnan(summary["seconds_per_query"]) and "timing" in summary["seconds_per_query_reason"]
    assert summary["voc_successful_mean"] == pytest.approx(1.0)
