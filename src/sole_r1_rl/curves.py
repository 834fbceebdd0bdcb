"""Episode log (CSV) and learning-curve plot: perceived return and true success against env steps."""
from __future__ import annotations

import csv
import os
from typing import Optional

# steps_per_s: of the episode's own env; env_steps_per_s: all envs together since the run (re)started;
# updates_per_step: updates / env steps so far; env, seed: which env ran the episode and its reset seed
EPISODE_FIELDS = ("episode", "env_steps", "length", "return", "final_progress", "true_success",
                  "valid_estimates", "invalid_estimates", "dropped_steps", "steps_per_s", "updates", "wall_s",
                  "env", "seed", "env_steps_per_s", "updates_per_step")


class EpisodeLog:
    """Appends one CSV row per episode (header written once; resuming appends to the same file, whose header is
    brought up to date first when an older version wrote it)."""

    def __init__(self, path: str) -> None:
        self.path = path
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            with open(path, "w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerow(EPISODE_FIELDS)
            return
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        if tuple(header) != EPISODE_FIELDS:
            rows = self.rows()
            temporary = path + ".tmp"
            with open(temporary, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, EPISODE_FIELDS, extrasaction="ignore", restval="")
                writer.writeheader()
                writer.writerows(rows)
            os.replace(temporary, path)

    def write(self, row: dict) -> None:
        """Append one episode; unknown keys are an error, missing ones are left blank."""
        unknown = set(row) - set(EPISODE_FIELDS)
        if unknown:
            raise KeyError(f"unknown episode log fields {sorted(unknown)}")
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow([_format(row.get(name)) for name in EPISODE_FIELDS])

    def drop_after(self, episodes: int) -> int:
        """Keep only the rows of episodes 1..`episodes` (and no torn line); returns how many rows were removed."""
        with open(self.path, newline="", encoding="utf-8") as handle:
            header, *rows = list(csv.reader(handle))
        column = header.index("episode")
        numbers = [_episode_number(row, column) for row in rows]
        kept = [row for row, number in zip(rows, numbers) if number is not None and number <= episodes]
        if len(kept) == len(rows):
            return 0
        temporary = self.path + ".tmp"
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([header, *kept])
        os.replace(temporary, self.path)
        return len(rows) - len(kept)

    def rows(self) -> list[dict]:
        """All rows as dicts of strings."""
        with open(self.path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))


def _episode_number(row: list, column: int) -> Optional[int]:
    try:
        return int(row[column])
    except (IndexError, ValueError):
        return None


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def plot_learning_curve(log: EpisodeLog, path: str, title: Optional[str] = None, window: int = 10) -> bool:
    """Write a PNG of episode return and true success (moving average over `window` episodes) vs env steps.
    Returns False (and writes nothing) when there is no finished episode yet."""
    rows = log.rows()
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    steps = np.array([float(r["env_steps"]) for r in rows])
    returns = np.array([float(r["return"] or 0.0) for r in rows])
    success = np.array([float(r["true_success"] or 0.0) for r in rows])
    kernel = np.ones(min(window, len(rows))) / min(window, len(rows))
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    top.plot(steps, returns, ".", alpha=0.4, label="episode")
    top.plot(steps[len(kernel) - 1:], np.convolve(returns, kernel, "valid"), label=f"mean of {len(kernel)}")
    top.set_ylabel("return (perceived progress reward)")
    top.legend(loc="best")
    bottom.plot(steps, success, ".", alpha=0.4, label="episode")
    bottom.plot(steps[len(kernel) - 1:], np.convolve(success, kernel, "valid"), label=f"mean of {len(kernel)}")
    bottom.set_ylim(-0.05, 1.05)
    bottom.set_ylabel("true success (privileged, logged only)")
    bottom.set_xlabel("env steps")
    bottom.legend(loc="best")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
