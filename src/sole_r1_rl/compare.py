"""Compare trainer runs (their episodes.csv): true success, perceived progress and reward hacking, side by side.

`python -m sole_r1_rl.compare RUN_DIR... [--out runs.png]` prints one markdown row per run and draws, per run, the
final perceived progress of each episode (coloured by true success) over env steps with the moving true-success
rate: the perceived-vs-true picture that shows whether a rewarder's progress means what it says.

Reward hacking is counted from the episode log alone: episodes the rewarder called >= `--hack-threshold` % that
truly failed, and true successes it scored below `--miss-threshold` %.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import math
from pathlib import Path
from typing import Optional, Sequence


@dataclasses.dataclass
class RunSummary:
    """What one run reached, from its episode log."""

    name: str
    episodes: int
    env_steps: int
    wall_s: float
    success_last10: float             # true success rate over the last 10 episodes
    steps_to_80: Optional[int]        # env steps when 8 of 10 consecutive episodes first succeeded (None: never)
    hacked: int                       # perceived >= hack threshold but truly failed
    missed: int                       # truly succeeded but perceived < miss threshold
    unscored: int                     # episodes without a valid estimate (no final progress)


def _number(text: str) -> Optional[float]:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_run(run_dir: str | Path) -> list[dict]:
    """The rows of RUN_DIR/episodes.csv; FileNotFoundError naming the file when there is none."""
    path = Path(run_dir) / "episodes.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass run directories written by the trainer or learner")
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def summarise(name: str, rows: Sequence[dict], hack_threshold: float = 90.0, miss_threshold: float = 50.0,
              window: int = 10, goal: float = 0.8) -> RunSummary:
    """Success, time to the goal rate and hacking counts of one run's episode rows."""
    success = [int(_number(r.get("true_success")) or 0) for r in rows]
    final = [_number(r.get("final_progress")) for r in rows]
    steps_to_goal = None
    for end in range(window, len(rows) + 1):
        if sum(success[end - window:end]) >= goal * window:
            steps_to_goal = int(_number(rows[end - 1]["env_steps"]) or 0)
            break
    last = success[-window:]
    return RunSummary(
        name=name, episodes=len(rows), env_steps=int(_number(rows[-1]["env_steps"]) or 0) if rows else 0,
        wall_s=(_number(rows[-1].get("wall_s")) or 0.0) if rows else 0.0,
        success_last10=sum(last) / len(last) if last else 0.0, steps_to_80=steps_to_goal,
        hacked=sum(1 for s, f in zip(success, final) if f is not None and f >= hack_threshold and not s),
        missed=sum(1 for s, f in zip(success, final) if f is not None and f < miss_threshold and s),
        unscored=sum(1 for f in final if f is None))


def markdown_table(summaries: Sequence[RunSummary]) -> str:
    """One markdown table row per run."""
    lines = ["| run | episodes | env steps | wall s | true success, last 10 | env steps to 8/10 | "
             "hacked (>= 90 %, failed) | missed (success < 50 %) | unscored |", "|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s.name} | {s.episodes} | {s.env_steps:,} | {s.wall_s:.0f} | {s.success_last10:.0%} | "
                     f"{'-' if s.steps_to_80 is None else f'{s.steps_to_80:,}'} | {s.hacked} | {s.missed} | "
                     f"{s.unscored} |")
    return "\n".join(lines)


def plot_runs(runs: dict[str, Sequence[dict]], path: str | Path, columns: int = 3, window: int = 10) -> Path:
    """Per run: final perceived progress per episode (green = true success, red = failure) and the moving
    true-success rate, against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(runs)
    columns = max(1, min(columns, len(names)))
    rows_n = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows_n, columns, figsize=(4.2 * columns, 3.0 * rows_n), squeeze=False,
                                sharey=True)
    for axis, name in zip(axes.flat, names):
        rows = runs[name]
        steps = np.array([_number(r["env_steps"]) or 0.0 for r in rows])
        success = np.array([_number(r.get("true_success")) or 0.0 for r in rows])
        final = np.array([np.nan if _number(r.get("final_progress")) is None else _number(r["final_progress"])
                          for r in rows])
        axis.scatter(steps, final, s=9, c=np.where(success > 0, "tab:green", "tab:red"), label="final perceived %")
        if len(rows) >= window:
            rate = np.convolve(success, np.ones(window) / window, "valid") * 100
            axis.plot(steps[window - 1:], rate, color="black", label=f"true success % (last {window})")
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("env steps")
        axis.set_ylim(-5, 105)
    axes.flat[0].set_ylabel("percent")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    for axis in list(axes.flat)[len(names):]:
        axis.set_visible(False)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the comparison table of the given runs and write the perceived-vs-true figure."""
    parser = argparse.ArgumentParser(prog="python -m sole_r1_rl.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories (each with episodes.csv)")
    parser.add_argument("--out", help="figure path (PNG); none: table only")
    parser.add_argument("--hack-threshold", type=float, default=90.0)
    parser.add_argument("--miss-threshold", type=float, default=50.0)
    args = parser.parse_args(argv)
    try:
        runs = {Path(run).name: read_run(run) for run in args.runs}
    except FileNotFoundError as exc:
        parser.error(str(exc))
    print(markdown_table([summarise(name, rows, args.hack_threshold, args.miss_threshold)
                          for name, rows in runs.items()]))
    if args.out:
        print(f"figure: {plot_runs(runs, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
