"""`python -m sole_r1_model COMMAND`: the reward-model commands of `sole-r1` on a machine without ROS (a GPU box)."""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional

from sole_r1_model.commands import COMMANDS


def main(argv: Optional[list[str]] = None) -> int:
    """Parse `COMMAND ...` and run it; the exit code of the command."""
    parser = argparse.ArgumentParser(prog="python -m sole_r1_model", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"sole_r1_model.commands.{name}").register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
