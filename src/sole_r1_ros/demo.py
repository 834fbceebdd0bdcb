"""`sole-r1 demo` / `make demo`: the project's main job on its embedded defaults."""
from __future__ import annotations

import argparse
import sys

from sole_r1_ros.runner.graph import resolve_graph
from sole_r1_ros.runner.launcher import GraphRunner


def run(args: argparse.Namespace) -> int:
    """Replay the embedded Lift episode through the ROS graph for a bounded time and report what arrived."""
    print("sole-r1 demo: replaying the embedded RoboSuite Lift episode (config/samples/) as both camera topics;\n"
          f"the stream monitor reports rates, sizes and latency; stops after {args.seconds:g} s.", flush=True)
    graph = resolve_graph("video_replay", {"seconds": args.seconds, "rate": args.rate})
    return GraphRunner(graph).run()


def register(subparsers) -> None:
    """Add the `demo` subcommand."""
    parser = subparsers.add_parser("demo", help="run the demo graph on the embedded defaults")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run (default 10)")
    parser.add_argument("--rate", type=float, default=10.0, help="camera rate, Hz (default 10)")
    parser.set_defaults(func=run)


if __name__ == "__main__":
    sys.exit(run(argparse.Namespace(seconds=10.0, rate=10.0)))
