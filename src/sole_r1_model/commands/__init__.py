"""`sole-r1` subcommands that need no ROS: `score` (offline reward of videos) and `prompt` (inspect model inputs).

Each module exposes `register(subparsers)`, which adds its subcommand and sets `func=run`; `run(args)` returns
the process exit code.
"""
from __future__ import annotations

import argparse


def register_all(subparsers: "argparse._SubParsersAction") -> None:
    """Add every subcommand of this package to an argparse subparsers object."""
    from sole_r1_model.commands import prompt, score

    score.register(subparsers)
    prompt.register(subparsers)
