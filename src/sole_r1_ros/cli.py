"""The `sole-r1` command: launch graphs, inspect the ROS graph, score videos, serve rewards, run the demo."""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional

from sole_r1_model.commands import COMMANDS as MODEL_COMMANDS

# Subcommands that live with their library (they register their own arguments); imported lazily so that
# `sole-r1 launch` does not pay for importing torch/transformers.
_EXTERNAL_COMMANDS = {
    **{name: f"sole_r1_model.commands.{name}" for name in MODEL_COMMANDS},
    "estop": "sole_r1_ros.commands.estop",
    "demo": "sole_r1_ros.commands.demo",
    "replay": "sole_r1_ros.commands.replay",
    "export": "sole_r1_ros.commands.export",
}


def _split_launch_args(values: list[str]) -> dict[str, str]:
    """Parse `name:=value` pairs; anything else is a usage error."""
    result = {}
    for item in values:
        if ":=" not in item:
            raise SystemExit(f"sole-r1 launch: expected name:=value, got {item!r}")
        name, value = item.split(":=", 1)
        result[name.strip()] = value
    return result


def _cmd_launch(args: argparse.Namespace) -> int:
    from sole_r1_ros.runner.graph import GraphError, graph_path, load_arguments, resolve_graph
    from sole_r1_ros.runner.launcher import GraphRunner

    if args.show_args:
        path = graph_path(args.graph)
        for arg in load_arguments(path).values():
            default = "(required)" if arg.required else f"default {arg.default!r}"
            print(f"{arg.name}: {arg.description} [{default}]")
        return 0
    try:
        graph = resolve_graph(args.graph, _split_launch_args(args.arguments))
    except (GraphError, FileNotFoundError) as exc:
        print(f"sole-r1 launch: {exc}", file=sys.stderr)
        return 2
    return GraphRunner(graph, grace_period=args.grace_period).run()


def _cmd_graph(args: argparse.Namespace) -> int:
    from sole_r1_ros.commands.introspect import print_graph

    return print_graph(wait=args.wait, show_hidden=args.all)


def _cmd_echo(args: argparse.Namespace) -> int:
    from sole_r1_ros.commands.introspect import echo

    return echo(args.topic, args.type, count=args.count, wait=args.wait, best_effort=args.best_effort)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `sole-r1` with every subcommand."""
    parser = argparse.ArgumentParser(prog="sole-r1", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    launch = sub.add_parser("launch", help="start a graph (config/graphs/NAME.yaml) as one process per node")
    launch.add_argument("graph", help="graph name under config/graphs/ or a path to a graph YAML")
    launch.add_argument("arguments", nargs="*", metavar="name:=value", help="graph arguments")
    launch.add_argument("--show-args", action="store_true", help="list the graph's arguments and exit")
    launch.add_argument("--grace-period", type=float, default=10.0,
                        help="seconds to wait for nodes after Ctrl-C before SIGTERM/SIGKILL (default 10)")
    launch.set_defaults(func=_cmd_launch)

    graph = sub.add_parser("graph", help="list nodes, topics and services seen on the DDS graph")
    graph.add_argument("--wait", type=float, default=2.0, help="seconds of discovery before listing (default 2; it waits until the graph is stable for 2 s)")
    graph.add_argument("--all", action="store_true", help="include hidden nodes/topics and parameter services")
    graph.set_defaults(func=_cmd_graph)

    echo = sub.add_parser("echo", help="print the messages of a topic")
    echo.add_argument("topic")
    echo.add_argument("--type", help="message type, e.g. sensor_msgs/msg/Image (default: discovered)")
    echo.add_argument("--count", "-n", type=int, default=0, help="exit after N messages (default: run until Ctrl-C)")
    echo.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the topic to appear")
    echo.add_argument("--best-effort", action="store_true", help="subscribe best-effort (sensor data QoS)")
    echo.set_defaults(func=_cmd_echo)

    for name, module in _EXTERNAL_COMMANDS.items():
        try:
            importlib.import_module(module).register(sub)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that part of the project is not installed in this environment
            # A dependency of that command is missing (e.g. pyarrow on a robot PC or in the Jazzy test venv):
            # `sole-r1 launch` and the other commands must still work; this one says what to install.
            if name not in sub.choices:
                _register_unavailable(sub, name, exc.name or str(exc))
    return parser


def _register_unavailable(sub, name: str, missing: str) -> None:
    """A placeholder subcommand that explains which package its real implementation needs."""
    parser = sub.add_parser(name, help=f"(unavailable: needs {missing})", add_help=False)
    parser.add_argument("rest", nargs=argparse.REMAINDER)

    def unavailable(_args: argparse.Namespace) -> int:
        print(f"sole-r1 {name}: needs the Python package {missing!r}, which is not installed here "
              "(tools/setup/install_python_deps.sh installs everything)", file=sys.stderr)
        return 2

    parser.set_defaults(func=unavailable)


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the `sole-r1` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
