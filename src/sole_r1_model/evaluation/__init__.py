"""Evaluation of rewarders against ground-truth progress (`sole-r1 eval`); see docs/evaluation.md.

- `metrics`: pure metric functions (Pearson, MAE, VOC, AUROC, rates), NaN when undefined;
- `episodes`: episode sets (official nested layout, flat, plain) and precomputed predictions;
- `evaluate`: per-episode metrics, their summary, and scoring episodes with a rewarder;
- `report`: report.json, report.md and the PNG grid of curves.
"""
