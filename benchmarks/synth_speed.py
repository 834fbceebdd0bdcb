"""Reward-model data synthesis speed: examples/s and env steps/s of `sole-r1 synth`, 1 worker vs N, one run.

Makes the same episodes twice into fresh folders (Meta-World tasks with experts, default 384 px and PNG), once with
one worker and once with --workers N (default: all cores), and prints both rates and their ratio. The results do
not depend on the worker count (tests/model/test_synth.py checks identical bytes), so the ratio is pure speed.

    .venv/bin/python benchmarks/synth_speed.py --tasks metaworld/reach-v3 metaworld/drawer-close-v3 --episodes 2
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile

from sole_r1_model.synth import SynthConfig, run_synth


def measure(tasks: list, episodes: int, workers: int, image_size: int, out: str) -> tuple[float, float, int]:
    """(examples/s, env steps/s, examples) of one fresh synthesis run."""
    result = run_synth(SynthConfig(out=out, tasks=tuple(tasks), episodes_per_task=episodes, workers=workers,
                                   image_size=image_size, quiet=True))
    return result.examples_per_s, result.steps_per_s, result.new_examples


def main() -> None:
    """Print the single-worker and N-worker rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["metaworld/reach-v3", "metaworld/drawer-close-v3",
                                                       "metaworld/button-press-topdown-v3"])
    parser.add_argument("--episodes", type=int, default=2, help="episodes per task")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--image-size", type=int, default=384)
    args = parser.parse_args()
    print(f"machine: {platform.node()}, {os.cpu_count()} cores; tasks {args.tasks}, {args.episodes} episodes each, "
          f"{args.image_size} px")
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up (imports, MuJoCo model compilation, GL context), so the first measured run does not pay for them.
        measure(args.tasks[:1], 1, 1, args.image_size, os.path.join(tmp, "warmup"))
        for workers in sorted({1, args.workers}):
            examples_s, steps_s, examples = measure(args.tasks, args.episodes, workers, args.image_size,
                                                    os.path.join(tmp, f"w{workers}"))
            rates[workers] = examples_s
            print(f"workers {workers:>2}: {examples} examples, {examples_s:.2f} examples/s, {steps_s:.1f} env steps/s")
    if len(rates) == 2:
        print(f"speed-up with {args.workers} workers: {rates[args.workers] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
