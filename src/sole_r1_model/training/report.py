"""What a finished training run writes beside its checkpoint: throughput and memory figures, and its loss curve."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional


def run_summary(log_history: list, metrics: dict, seconds: float, steps: int, examples: int,
                peak_memory_bytes: Optional[int]) -> dict[str, Any]:
    """Examples/s, tokens/s (TRL logs cumulative `num_tokens`), steps/s, peak GPU memory and the last losses."""
    tokens = [row["num_tokens"] for row in log_history if "num_tokens" in row]
    losses = [row["loss"] for row in log_history if "loss" in row]
    eval_losses = [row["eval_loss"] for row in log_history if "eval_loss" in row]
    seconds = max(seconds, 1e-9)
    return {
        "seconds": round(seconds, 2),
        "steps": steps,
        "steps_per_s": round(steps / seconds, 3),
        "examples": examples,
        "examples_per_s": round(examples / seconds, 2),
        # num_tokens counts every token of the sequences the trainer saw (prompt, image and answer).
        "tokens_per_s": round((tokens[-1] - tokens[0]) / seconds, 1) if len(tokens) > 1 else None,
        "peak_gpu_memory_gib": round(peak_memory_bytes / 2**30, 2) if peak_memory_bytes else None,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "final_eval_loss": eval_losses[-1] if eval_losses else None,
        # Every logged (step, loss): what `python -m sole_r1_model.training.compare` overlays across runs.
        "losses": [[row["step"], row["loss"]] for row in log_history if "loss" in row and "step" in row],
        "trainer_metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)},
    }


def plot_losses(log_history: list, path: Path, title: str) -> Optional[Path]:
    """Training (and evaluation) loss against optimiser step, as a PNG; None when nothing was logged."""
    train = [(row["step"], row["loss"]) for row in log_history if "loss" in row and "step" in row]
    evals = [(row["step"], row["eval_loss"]) for row in log_history if "eval_loss" in row and "step" in row]
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    if train:
        axis.plot(*zip(*train), label="train loss", linewidth=1.2)
    if evals:
        axis.plot(*zip(*evals), "o-", label="eval loss", linewidth=1.2, markersize=3)
    axis.set_xlabel("optimiser step")
    axis.set_ylabel("loss (answer tokens)")
    axis.set_yscale("log")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def write_run_report(output_dir: Path, log_history: list, metrics: dict, seconds: float, steps: int,
                     examples: int, title: str) -> dict[str, Any]:
    """Write train_summary.json and loss_curve.png into `output_dir`; return the summary."""
    peak = None
    try:
        import torch

        if torch.cuda.is_available():
            peak = int(torch.cuda.max_memory_allocated())
    except ImportError:  # a CPU-only environment without torch cannot have trained anything
        pass
    summary = run_summary(log_history, metrics, seconds, steps, examples, peak)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "train_summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    plot_losses(log_history, output_dir / "loss_curve.png", title)
    return summary
