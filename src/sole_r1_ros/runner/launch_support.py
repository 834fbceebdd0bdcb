"""Build a launch_ros LaunchDescription from a graph YAML -- the same file `sole-r1 launch` runs.

Launch files stay three lines long and can never disagree with the embedded runner: both call
`sole_r1_ros.runner.graph.resolve_graph`. Only this module imports `launch`/`launch_ros` (present on a real ROS
install, absent from the pip-wheel ROS used for development here).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from sole_r1_config.paths import config_dir
from sole_r1_ros.runner.graph import Argument, graph_path, load_arguments, resolve_graph, resolved_defaults


def graph_launch_description(graph: str, selector: Optional[str] = None, selector_default: Optional[str] = None):
    """LaunchDescription for config/graphs/<graph>.yaml; with `selector`, <graph> is a template like 'sim_{suite}'."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    if selector:
        choices = sorted(p.stem[len(graph.split("{")[0]):] for p in (config_dir() / "graphs").glob(
            graph.split("{")[0] + "*.yaml"))
        candidates = [graph.format(**{selector: choice}) for choice in choices]
    else:
        choices, candidates = [], [graph]
    declared: dict[str, tuple[Argument, Optional[str]]] = {}
    for name in candidates:
        path = graph_path(name)
        defaults = resolved_defaults(path)
        for arg in load_arguments(path).values():
            declared.setdefault(arg.name, (arg, defaults[arg.name]))
    actions = []
    if selector:
        actions.append(DeclareLaunchArgument(selector, default_value=selector_default, choices=choices,
                                             description=f"which graph to run: {graph}"))
    for arg, default in declared.values():
        kwargs = {"description": arg.description}
        if default is not None:
            kwargs["default_value"] = default
        actions.append(DeclareLaunchArgument(arg.name, **kwargs))
    actions.append(OpaqueFunction(function=_instantiate, args=[graph, selector]))
    return LaunchDescription(actions)


def _instantiate(context, graph: str, selector: Optional[str]):
    """OpaqueFunction body: resolve the chosen graph with the launch arguments and return its Node actions."""
    from launch.actions import SetEnvironmentVariable, Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    name = graph.format(**{selector: LaunchConfiguration(selector).perform(context)}) if selector else graph
    path = graph_path(name)
    values = {arg: LaunchConfiguration(arg).perform(context) for arg in load_arguments(path)}
    resolved = resolve_graph(path, values)
    actions = [SetEnvironmentVariable(key, value) for key, value in resolved.environment.items()]
    for spec in resolved.nodes:
        # A node that needs another virtual environment (LIBERO) runs its lib/sole_r1 script with that Python.
        prefix = str(Path(os.environ.get("SOLE_R1_VENV_ROOT", ".")) / spec.venv / "bin" / "python") if spec.venv else None
        actions.append(Node(
            package="sole_r1", executable=spec.executable, name=spec.name, namespace=spec.namespace or None,
            parameters=[spec.parameters], remappings=list(spec.remappings.items()), output="screen",
            on_exit=Shutdown(reason=f"{spec.name} exited") if spec.required or spec.shutdown_on_exit else None,
            **({"prefix": prefix} if prefix else {}),
        ))
    return actions
