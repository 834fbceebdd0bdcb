"""Build a launch_ros LaunchDescription from a graph YAML -- the same file `sole-r1 launch` runs.

Launch files stay three lines long and can never disagree with the embedded runner: both call
`sole_r1_ros.runner.graph.resolve_graph`. Only this module imports `launch`/`launch_ros` (present on a real ROS
install, absent from the pip-wheel ROS used for development here).
"""
from __future__ import annotations

from typing import Optional

from sole_r1_config.paths import config_dir, venv_python
from sole_r1_ros.runner.graph import Argument, graph_path, load_arguments, resolve_graph, resolved_defaults

# Launch-argument default of an argument whose default depends on the selected graph (e.g. `task` per suite):
# `ros2 launch` needs some default, and this one tells _instantiate to leave the value to the chosen graph.
GRAPH_DEFAULT = "<default of the chosen graph>"


def graph_choices(template: str) -> list[str]:
    """The values a selector can take: `sim_{suite}` -> the X of every config/graphs/sim_X.yaml."""
    prefix = template.split("{")[0]
    return sorted(p.stem[len(prefix):] for p in (config_dir() / "graphs").glob(prefix + "*.yaml"))


def declared_arguments(graph: str, selector: Optional[str] = None) -> dict[str, tuple[Argument, Optional[str]]]:
    """Each launch argument with its launch default: the graph's (substituted), or GRAPH_DEFAULT where the
    candidate graphs of a selector disagree (it is then taken from the graph actually chosen)."""
    candidates = [graph.format(**{selector: c}) for c in graph_choices(graph)] if selector else [graph]
    declared: dict[str, tuple[Argument, Optional[str]]] = {}
    for name in candidates:
        path = graph_path(name)
        defaults = resolved_defaults(path)
        for arg in load_arguments(path).values():
            if arg.name == selector:
                continue     # declared once, as the selector itself
            default = defaults[arg.name]
            if arg.name not in declared:
                declared[arg.name] = (arg, default)
            elif declared[arg.name][1] != default:
                declared[arg.name] = (declared[arg.name][0], GRAPH_DEFAULT)
    return declared


def graph_launch_description(graph: str, selector: Optional[str] = None, selector_default: Optional[str] = None):
    """LaunchDescription for config/graphs/<graph>.yaml; with `selector`, <graph> is a template like 'sim_{suite}'."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    actions = []
    if selector:
        actions.append(DeclareLaunchArgument(selector, default_value=selector_default, choices=graph_choices(graph),
                                             description=f"which graph to run: {graph}"))
    for arg, default in declared_arguments(graph, selector).values():
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
    resolved = resolve_graph(path, {k: v for k, v in values.items() if v != GRAPH_DEFAULT})
    actions = [SetEnvironmentVariable(key, value) for key, value in resolved.environment.items()]
    for spec in resolved.nodes:
        # A node that needs another virtual environment (LIBERO) runs its lib/sole_r1 script with that Python.
        prefix = str(venv_python(spec.venv)) if spec.venv else None
        actions.append(Node(
            package="sole_r1", executable=spec.executable, name=spec.name, namespace=spec.namespace or None,
            parameters=[*spec.params_files, spec.parameters], remappings=list(spec.remappings.items()),
            output="screen",
            on_exit=Shutdown(reason=f"{spec.name} exited") if spec.required or spec.shutdown_on_exit else None,
            **({"prefix": prefix} if prefix else {}),
        ))
    return actions
