"""Run comparison from episode logs: success, steps to 8/10, reward-hacking counts, the CLI and its figure."""
import pytest

from sole_r1_rl.compare import main, summarise
from sole_r1_rl.curves import EpisodeLog


def _log(path, rows):
    path.mkdir()
    log = EpisodeLog(str(path / "episodes.csv"))
    for i, (success, final) in enumerate(rows, start=1):
        log.write({"episode": i, "env_steps": 100 * i, "final_progress": final, "true_success": success,
                   "wall_s": float(i)})
    return path


def test_counts_hacked_missed_and_unscored_episodes_and_the_first_8_of_10(tmp_path):
    rows = [(0, 95.0), (0, None), (1, 20.0)] + [(1, 99.0)] * 8 + [(0, 10.0)]
    summary = summarise("run", EpisodeLog(str(_log(tmp_path / "r", rows) / "episodes.csv")).rows())
    assert (summary.hacked, summary.missed, summary.unscored) == (1, 1, 1)
    assert summary.steps_to_80 == 1000          # episodes 1..10 hold 8 successes (3..10): the first such window
    assert summary.success_last10 == pytest.approx(0.9) and summary.env_steps == 1200


def test_never_reaching_the_goal_rate_reads_none(tmp_path):
    summary = summarise("run", EpisodeLog(str(_log(tmp_path / "r", [(1, 100.0), (0, 0.0)] * 10) / "episodes.csv"))
                        .rows())
    assert summary.steps_to_80 is None and summary.success_last10 == pytest.approx(0.5)


def test_cli_prints_a_row_per_run_and_writes_the_figure(tmp_path, capsys):
    a = _log(tmp_path / "oracle", [(1, 100.0)] * 12)
    b = _log(tmp_path / "embedded", [(0, 100.0)] * 12)
    assert main([str(a), str(b), "--out", str(tmp_path / "f.png")]) == 0
    out = capsys.readouterr().out
    assert "| oracle | 12 | 1,200 |" in out and "| embedded | 12 | 1,200 | 12 | 0% | - | 12 | 0 | 0 |" in out
    assert (tmp_path / "f.png").stat().st_size > 1000
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing")])
