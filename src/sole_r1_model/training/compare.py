"""Compare training runs (their train_summary.json): overlaid loss curves, agreement and throughput scaling.

    python -m sole_r1_model.training.compare runs/1gpu runs/2gpu --out overlay.png --first 100 --tolerance 0.05

The first run is the reference. For each other run it prints the largest relative loss difference over the first
`--first` logged steps (the runs must share seed, data and global batch for this to mean anything), whether that is
within `--tolerance`, and examples/s, tokens/s and peak memory against the reference; `--gpus` gives each run's
device count, for the scaling efficiency (examples/s per device relative to the reference's). Exit status 1 when a
run disagrees beyond the tolerance.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence


def load_summary(run: str | Path) -> dict:
    """RUN/train_summary.json (or the file itself); FileNotFoundError naming the path."""
    path = Path(run)
    path = path / "train_summary.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass the output folders of `sole-r1 train` runs")
    summary = json.loads(path.read_text(encoding="utf-8"))
    if not summary.get("losses"):
        raise ValueError(f"{path} holds no per-step losses (written by an older version?)")
    return summary


def max_relative_difference(reference: Sequence, other: Sequence, first: int) -> tuple[float, int]:
    """Largest |a - b| / |a| over the steps both runs logged among the reference's first `first` entries; also how
    many steps were compared."""
    theirs = {int(step): float(loss) for step, loss in other}
    worst, compared = 0.0, 0
    for step, loss in list(reference)[:first]:
        if int(step) in theirs:
            compared += 1
            worst = max(worst, abs(theirs[int(step)] - float(loss)) / max(abs(float(loss)), 1e-12))
    return worst, compared


def plot_overlay(named: dict[str, dict], path: str | Path) -> Path:
    """Loss against optimiser step for every run, on one log-scale axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    for (name, summary), style in zip(named.items(), ("-", "--", ":", "-.")):
        steps, losses = zip(*summary["losses"])
        axis.plot(steps, losses, style, label=name, linewidth=1.2)
    axis.set_xlabel("optimiser step")
    axis.set_ylabel("loss (answer tokens)")
    axis.set_yscale("log")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return Path(path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the comparison of the runs against the first, write the overlay figure."""
    parser = argparse.ArgumentParser(prog="python -m sole_r1_model.training.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run output folders (or their train_summary.json); first = reference")
    parser.add_argument("--gpus", type=int, nargs="+", help="devices per run (default 1 each)")
    parser.add_argument("--first", type=int, default=100, help="logged steps compared (default 100)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="relative loss difference allowed (0.05)")
    parser.add_argument("--out", help="overlay PNG")
    args = parser.parse_args(argv)
    gpus = args.gpus or [1] * len(args.runs)
    if len(gpus) != len(args.runs):
        parser.error("--gpus needs one count per run")
    try:
        named = {str(run): load_summary(run) for run in args.runs}
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    reference_name, reference = next(iter(named.items()))
    agree = True
    print("| run | devices | examples/s | tokens/s | peak GiB | scaling efficiency | max rel. loss diff (steps) |")
    print("|---|---|---|---|---|---|---|")
    for (name, summary), count in zip(named.items(), gpus):
        per_device = (summary.get("examples_per_s") or 0) / count
        efficiency = per_device / max((reference.get("examples_per_s") or 0) / gpus[0], 1e-12)
        diff, compared = max_relative_difference(reference["losses"], summary["losses"], args.first)
        ok = name == reference_name or (compared > 0 and diff <= args.tolerance)
        agree = agree and ok
        print(f"| {name} | {count} | {summary.get('examples_per_s')} | {summary.get('tokens_per_s')} | "
              f"{summary.get('peak_gpu_memory_gib')} | {efficiency:.2f} | "
              f"{'reference' if name == reference_name else f'{diff:.4f} ({compared}) {chr(10003) if ok else chr(10007)}'} |")
    if args.out:
        print(f"overlay: {plot_overlay(named, args.out)}")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
