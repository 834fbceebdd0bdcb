"""Simulation speed per suite: suite-default rendering vs our render tuning, measured in one run.

Each suite steps one task with random actions and two cameras (shoulder + wrist, 128x128 by default), first with
`tuned=False` (the suite's own visual settings and reset behaviour), then with `tuned=True`. Prints steps/s, the
reset time and the tuned/default ratio. Suites that cannot be imported here are listed as skipped with the reason.

    .venv/bin/python benchmarks/sim_speed.py --suites metaworld robosuite --steps 200
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from typing import Optional

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from sole_r1_sim import make_env  # noqa: E402

DEFAULT_TASKS = {"metaworld": "reach-v3", "robosuite": "Lift", "maniskill": "PickCube-v1", "libero": None}


@dataclasses.dataclass
class Measurement:
    """Speed of one suite in one render mode."""

    steps_per_s: float
    reset_s: float


def measure(suite: str, task: str, tuned: bool, steps: int, image_size: tuple[int, int], resets: int) -> Measurement:
    """Time `resets` resets and `steps` random-action steps (after a short warm-up) of one env."""
    env = make_env(suite, task, image_size=image_size, seed=0, tuned=tuned)
    try:
        rng = np.random.default_rng(0)
        env.reset(seed=0)
        start = time.perf_counter()
        for index in range(resets):
            env.reset(seed=index + 1)
        reset_s = (time.perf_counter() - start) / max(resets, 1)
        for _ in range(5):  # warm-up: first renders compile shaders and upload textures
            env.step(rng.uniform(-1, 1, 7))
        start = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 7))
            if terminated or truncated:
                env.reset()
        return Measurement(steps / (time.perf_counter() - start), reset_s)
    finally:
        env.close()


def first_task(suite: str) -> str:
    """The suite's default benchmark task (first listed task if none is fixed)."""
    from sole_r1_sim import list_tasks

    return DEFAULT_TASKS.get(suite) or list_tasks(suite)[0]


def run_suite(suite: str, task: Optional[str], steps: int, image_size, resets: int) -> tuple[str, object]:
    """Measure one suite in both modes; returns (task, (default, tuned)) or (task, skip reason)."""
    try:
        task = task or first_task(suite)
        default = measure(suite, task, False, steps, image_size, resets)
        tuned = measure(suite, task, True, steps, image_size, resets)
    except ImportError as error:
        return task or "-", f"skipped: {error}"
    return task, (default, tuned)


def main(argv=None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", nargs="+", default=["metaworld", "robosuite", "maniskill", "libero"])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per suite and mode")
    parser.add_argument("--resets", type=int, default=3, help="timed resets per suite and mode")
    parser.add_argument("--image-size", type=int, nargs=2, default=(128, 128), metavar=("H", "W"))
    parser.add_argument("--task", action="append", default=[], metavar="SUITE=TASK", help="override a suite's task")
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.task)

    print(f"# sim_speed: {args.steps} random steps, 2 cameras {args.image_size[0]}x{args.image_size[1]}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, MUJOCO_GL={os.environ['MUJOCO_GL']}")
    header = f"{'suite':10s} {'task':24s} {'default steps/s':>15s} {'tuned steps/s':>13s} {'ratio':>6s} " \
             f"{'default reset s':>15s} {'tuned reset s':>13s}"
    print(header)
    print("-" * len(header))
    for suite in args.suites:
        task, result = run_suite(suite, overrides.get(suite), args.steps, tuple(args.image_size), args.resets)
        task = task if len(task) <= 24 else task[:21] + "..."
        if isinstance(result, str):
            print(f"{suite:10s} {task:24s} {result}")
            continue
        default, tuned = result
        print(f"{suite:10s} {task:24s} {default.steps_per_s:15.1f} {tuned.steps_per_s:13.1f} "
              f"{tuned.steps_per_s / default.steps_per_s:5.1f}x {default.reset_s:15.2f} {tuned.reset_s:13.2f}",
              flush=True)


if __name__ == "__main__":
    main()
