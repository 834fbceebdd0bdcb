"""`sole-r1` subcommands that need no ROS: scoring, prompts, the official server, evaluation, synthesis, training,
LeRobot dataset annotation.

Each module exposes `register(subparsers)`, which adds its subcommand and sets `func=run`; `run(args)` returns
the process exit code. `sole-r1` (sole_r1_ros.cli) and `python -m sole_r1_model` (no ROS needed) both list them.
"""
from __future__ import annotations

COMMANDS = ("score", "prompt", "serve", "eval", "synth", "train", "annotate")
