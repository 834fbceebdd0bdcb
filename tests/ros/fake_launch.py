"""Minimal stand-ins for the `launch` / `launch_ros` APIs our launch files use (not installable here).

They record what the launch file builds and implement LaunchConfiguration.perform exactly as ROS launch does (a
string from the context's launch configurations), so a test can execute a launch file end to end and compare the
nodes it would start with what the embedded runner starts from the same graph YAML.
"""
import contextlib
import sys
import types

MODULES = ("launch", "launch.actions", "launch.substitutions", "launch.launch_description_sources", "launch_ros",
           "launch_ros.actions", "launch_ros.substitutions")


class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class LaunchDescription(_Recorded):
    @property
    def entities(self):
        return self.args[0]


class DeclareLaunchArgument(_Recorded):
    @property
    def name(self):
        return self.args[0]


class OpaqueFunction(_Recorded):
    def execute(self, context):
        return self.kwargs["function"](context, *self.kwargs.get("args", []))


class LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        if self.name not in context.launch_configurations:
            raise KeyError(f"launch configuration '{self.name}' does not exist")  # as launch's SubstitutionFailure
        return context.launch_configurations[self.name]


class Context:
    def __init__(self, configurations):
        self.launch_configurations = dict(configurations)


def install() -> None:
    """Put the fake modules into sys.modules."""
    launch = types.ModuleType("launch")
    launch.LaunchDescription = LaunchDescription
    actions = types.ModuleType("launch.actions")
    actions.DeclareLaunchArgument = DeclareLaunchArgument
    actions.OpaqueFunction = OpaqueFunction
    actions.SetEnvironmentVariable = type("SetEnvironmentVariable", (_Recorded,), {})
    actions.Shutdown = type("Shutdown", (_Recorded,), {})
    actions.IncludeLaunchDescription = type("IncludeLaunchDescription", (_Recorded,), {})
    substitutions = types.ModuleType("launch.substitutions")
    substitutions.LaunchConfiguration = LaunchConfiguration
    substitutions.PathJoinSubstitution = type("PathJoinSubstitution", (_Recorded,), {})
    sources = types.ModuleType("launch.launch_description_sources")
    sources.PythonLaunchDescriptionSource = type("PythonLaunchDescriptionSource", (_Recorded,), {})
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")
    ros_actions.Node = type("Node", (_Recorded,), {})
    ros_substitutions = types.ModuleType("launch_ros.substitutions")
    ros_substitutions.FindPackageShare = type("FindPackageShare", (_Recorded,), {})
    sys.modules.update({"launch": launch, "launch.actions": actions, "launch.substitutions": substitutions,
                        "launch.launch_description_sources": sources, "launch_ros": launch_ros,
                        "launch_ros.actions": ros_actions, "launch_ros.substitutions": ros_substitutions})


def declarations(module) -> list:
    """Every DeclareLaunchArgument of a launch file, in order (duplicates included)."""
    return [e for e in module.generate_launch_description().entities if isinstance(e, DeclareLaunchArgument)]


def run_launch_file(module, overrides):
    """Execute generate_launch_description() like `ros2 launch file name:=value`; return (declared, actions)."""
    description = module.generate_launch_description()
    declared = {e.name: e for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    configurations = {name: e.kwargs["default_value"] for name, e in declared.items() if "default_value" in e.kwargs}
    configurations.update(overrides)
    context = Context(configurations)
    actions = []
    for entity in description.entities:
        if isinstance(entity, OpaqueFunction):
            actions.extend(entity.execute(context))
    return declared, actions


@contextlib.contextmanager
def installed():
    """The recording stand-ins as launch/launch_ros while the block runs; the real modules (if any) afterwards."""
    saved = {k: sys.modules.get(k) for k in MODULES}
    install()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
