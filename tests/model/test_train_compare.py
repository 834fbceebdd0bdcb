"""Comparing training runs: loss agreement within a tolerance, scaling efficiency, the overlay figure."""
import json

import pytest

from sole_r1_model.training.compare import main, max_relative_difference
from sole_r1_model.training.report import run_summary


def _run(folder, losses, examples_per_s):
    folder.mkdir()
    history = [{"step": s, "loss": l, "num_tokens": 100.0 * s} for s, l in losses]
    summary = run_summary(history, {}, seconds=10.0, steps=len(losses), examples=int(examples_per_s * 10),
                          peak_memory_bytes=None)
    (folder / "train_summary.json").write_text(json.dumps(summary))
    return folder


def test_summary_keeps_every_logged_loss():
    summary = run_summary([{"step": 1, "loss": 2.0}, {"step": 2, "eval_loss": 1.5}, {"step": 2, "loss": 1.0}],
                          {}, 1.0, 2, 64, None)
    assert summary["losses"] == [[1, 2.0], [2, 1.0]]


def test_relative_difference_compares_shared_steps_only():
    diff, compared = max_relative_difference([[1, 2.0], [2, 1.0], [3, 0.5]], [[1, 2.1], [3, 0.5], [9, 9.0]], 10)
    assert compared == 2 and diff == pytest.approx(0.05)
    assert max_relative_difference([[1, 2.0], [2, 1.0]], [[2, 5.0]], first=1) == (0.0, 0)


def test_cli_reports_agreement_scaling_and_fails_beyond_the_tolerance(tmp_path, capsys):
    one = _run(tmp_path / "one", [(s, 5.0 / s) for s in range(1, 21)], examples_per_s=100.0)
    two = _run(tmp_path / "two", [(s, 5.0 / s * 1.01) for s in range(1, 21)], examples_per_s=180.0)
    assert main([str(one), str(two), "--gpus", "1", "2", "--out", str(tmp_path / "o.png")]) == 0
    out = capsys.readouterr().out
    assert "| 0.90 |" in out and "0.0100 (20)" in out
    assert (tmp_path / "o.png").stat().st_size > 1000
    far = _run(tmp_path / "far", [(s, 6.0 / s) for s in range(1, 21)], examples_per_s=90.0)
    assert main([str(one), str(far), "--tolerance", "0.05"]) == 1
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing")])
