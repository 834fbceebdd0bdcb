"""Per-episode logging for the episode manager (no rclpy): CSV, TensorBoard, perceived-vs-true plot, curves.

Perceived success (final perceived progress >= threshold) is logged beside true success (simulator / operator
label) so reward hacking -- perceived high, true low -- shows up as the gap between the two curves, as in the
SOLE-R1 paper's figure 4.
"""
from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path
from typing import Optional

import numpy as np

FIELDS = ("episode", "task", "length", "total_steps", "end_reason", "final_progress", "max_progress",
          "perceived_return", "perceived_success", "true_success", "privileged_progress", "reward_queries",
          "invalid_answers", "reward_latency_mean_s", "wall_time_s")


@dataclasses.dataclass
class EpisodeSummary:
    """What the episode manager knows about one finished episode."""

    episode: int
    task: str
    length: int
    total_steps: int
    end_reason: str
    final_progress: float          # last valid perceived progress, percent (NaN: no valid estimate)
    max_progress: float
    perceived_return: float        # sum over steps of interpolated perceived progress / 100 (the default reward)
    perceived_success: bool
    true_success: Optional[bool]   # None when unknown (real robot without an operator label)
    privileged_progress: float     # NaN when unknown
    reward_queries: int
    invalid_answers: int
    reward_latency_mean_s: float
    wall_time_s: float

    def row(self) -> dict:
        """CSV row (true_success empty when unknown)."""
        row = dataclasses.asdict(self)
        row["true_success"] = "" if self.true_success is None else int(self.true_success)
        row["perceived_success"] = int(self.perceived_success)
        return row


class EpisodeLog:
    """Appends episodes to `episodes.csv`, TensorBoard scalars and refreshes the plots in `run_dir`."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.run_dir / "episodes.csv"
        self.episodes: list[EpisodeSummary] = []
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional: CSV and plots still work
                self._writer = None

    def add(self, summary: EpisodeSummary) -> None:
        """Record one episode everywhere and redraw the plots."""
        new_file = not self.csv_path.exists()
        with self.csv_path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS)
            if new_file:
                writer.writeheader()
            writer.writerow(summary.row())
        self.episodes.append(summary)
        if self._writer is not None:
            step = summary.total_steps
            for key in ("final_progress", "max_progress", "perceived_return", "length", "invalid_answers",
                        "reward_latency_mean_s"):
                value = getattr(summary, key)
                if value is not None and math.isfinite(value):
                    self._writer.add_scalar(f"episode/{key}", value, step)
            self._writer.add_scalar("episode/perceived_success", float(summary.perceived_success), step)
            if summary.true_success is not None:
                self._writer.add_scalar("episode/true_success_PRIVILEGED", float(summary.true_success), step)
            self._writer.flush()
        self.plot()

    def plot(self, window: int = 10) -> Optional[Path]:
        """Draw perceived vs true success (rolling mean) and final progress over env steps."""
        if not self.episodes:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps = np.array([e.total_steps for e in self.episodes])
        perceived = np.array([float(e.perceived_success) for e in self.episodes])
        known = [e for e in self.episodes if e.true_success is not None]
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
        top.plot(steps, _rolling(perceived, window), label="perceived success (final progress >= threshold)", lw=2)
        if known:
            true_steps = np.array([e.total_steps for e in known])
            true = np.array([float(e.true_success) for e in known])
            top.plot(true_steps, _rolling(true, window), label="true success (simulator, PRIVILEGED)", lw=2)
        top.set_ylim(-0.05, 1.05)
        top.set_ylabel(f"success rate\n(rolling {window} episodes)")
        top.legend(loc="upper left", fontsize=8)
        top.set_title("Perceived vs true success")
        final = np.array([e.final_progress for e in self.episodes])
        colours = ["tab:green" if e.true_success else ("tab:red" if e.true_success is False else "tab:gray")
                   for e in self.episodes]
        bottom.scatter(steps, final, c=colours, s=14)
        bottom.plot(steps, _rolling(np.nan_to_num(final), window), color="black", lw=1, label="rolling mean")
        bottom.set_ylabel("final perceived progress (%)\n(green/red: true success/failure)")
        bottom.set_xlabel("environment steps")
        bottom.set_ylim(-5, 105)
        fig.tight_layout()
        path = self.run_dir / "perceived_vs_true.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        self._plot_learning_curve(plt, steps, window)
        return path

    def _plot_learning_curve(self, plt, steps: np.ndarray, window: int) -> Path:
        """Perceived return per episode (what the learner optimises) and true success vs env steps."""
        fig, axis = plt.subplots(figsize=(8, 4))
        returns = np.array([e.perceived_return for e in self.episodes], float)
        axis.plot(steps, returns, ".", alpha=0.4, color="tab:blue")
        axis.plot(steps, _rolling(np.nan_to_num(returns), window), color="tab:blue", lw=2,
                  label="perceived return (sum of progress/100)")
        axis.set_xlabel("environment steps")
        axis.set_ylabel("perceived return")
        known = [e for e in self.episodes if e.true_success is not None]
        if known:
            twin = axis.twinx()
            twin.plot([e.total_steps for e in known], _rolling(np.array([float(e.true_success) for e in known]),
                                                                 window), color="tab:green", lw=2,
                      label="true success rate (PRIVILEGED)")
            twin.set_ylim(-0.05, 1.05)
            twin.set_ylabel("true success rate")
            twin.legend(loc="upper right", fontsize=8)
        axis.legend(loc="upper left", fontsize=8)
        axis.set_title("Learning curve")
        fig.tight_layout()
        path = self.run_dir / "learning_curve.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._writer is not None:
            self._writer.close()


def _rolling(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to `window` values (shorter at the start)."""
    cumulative = np.cumsum(np.insert(values.astype(float), 0, 0.0))
    out = np.empty(len(values))
    for i in range(len(values)):
        lo = max(0, i + 1 - window)
        out[i] = (cumulative[i + 1] - cumulative[lo]) / (i + 1 - lo)
    return out
