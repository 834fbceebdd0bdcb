"""Graph files: the one description of a ROS graph, read by the embedded runner AND by the launch files.

A graph YAML (config/graphs/*.yaml) names its arguments, the environment it needs, and its nodes:

    description: Replay two videos as the camera topics
    arguments:
      rate: {default: 10.0, description: frames per second}
    environment: {FASTDDS_BUILTIN_TRANSPORTS: LARGE_DATA}
    nodes:
      - name: video_source            # ROS node name
        executable: video_source      # module sole_r1_ros.nodes.<executable> / lib/sole_r1/<executable>
        required: true                # the graph stops (exit 1) when a required node fails (default true)
        shutdown_on_exit: false       # the graph stops when this node exits, whatever its code (e.g. a timer)
        venv: .venv-libero            # optional: another virtual environment's Python (paths.venv_python finds it)
        if: $(arg use_cameras)        # optional: node only when the expression is true
        params_file: $(config real_franka.yaml)   # optional: ROS params file(s) loaded before `parameters`
        parameters: {rate: $(arg rate), shoulder_path: $(config ../tests/data/x.mp4)}
        remappings: {/cameras/wrist/image_raw: /other}

Every graph also takes `namespace` (default empty): each node then runs in that namespace and every sole_r1 topic and
service name (sole_r1_ros.ros.names) is remapped under it, so two robots' graphs can share one ROS domain.

`extends: base.yaml` (a file beside this one) starts from another graph: this file's arguments are added or
override the base's (by name), `environment` is merged, and each of its nodes is merged by name into the base's
node of that name (its `parameters` dict merged key by key) or appended when the base has none of that name.

Substitutions (same spelling as ROS launch): `$(arg NAME)`, `$(env NAME DEFAULT)`, `$(config RELPATH)` (absolute
path of a file under config/). A value that is exactly one substitution keeps the argument's YAML type.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from sole_r1_config.paths import config_dir, resolve_config_path
from sole_r1_ros.ros.names import GLOBAL_NAMES

_SUBST = re.compile(r"\$\((arg|env|config)\s+([^)\s]+)(?:\s+([^)]*))?\)")
_NODE_KEYS = {"name", "executable", "required", "if", "parameters", "remappings", "namespace", "shutdown_on_exit",
              "venv", "params_file"}
_GRAPH_KEYS = {"description", "arguments", "environment", "nodes", "extends"}


class GraphError(ValueError):
    """A graph file is malformed or an argument is missing/unknown."""


@dataclasses.dataclass
class Argument:
    """A graph argument (`name:=value` on the command line, a DeclareLaunchArgument in launch files)."""

    name: str
    default: Any = None
    description: str = ""

    @property
    def required(self) -> bool:
        """True when the argument has no default."""
        return self.default is None


# Declared by every graph (a graph may declare it itself to change the description or default).
NAMESPACE_ARGUMENT = Argument("namespace", "", "ROS namespace of every node; sole_r1's topics and services move "
                              "under it (/NS/robot/command, ...) so two robots can share one ROS domain")


@dataclasses.dataclass
class NodeSpec:
    """One node of a resolved graph: what to start, with which parameters."""

    name: str
    executable: str
    parameters: dict
    remappings: dict
    namespace: str = ""
    required: bool = True
    shutdown_on_exit: bool = False
    venv: str = ""           # virtual environment whose Python runs the node ("" = the runner's; paths.venv_python)
    params_files: list = dataclasses.field(default_factory=list)   # ROS params files, loaded before `parameters`

    @property
    def module(self) -> str:
        """Python module holding the node's main()."""
        return f"sole_r1_ros.nodes.{self.executable}"


@dataclasses.dataclass
class Graph:
    """A resolved graph: nodes with substituted parameters, and the environment they need."""

    path: Path
    description: str
    arguments: dict[str, Any]
    environment: dict[str, str]
    nodes: list[NodeSpec]


def graph_path(name: str) -> Path:
    """Path of a graph given as a file path or a name under config/graphs/."""
    return resolve_config_path(name, "graphs")


def load_arguments(path: Path) -> dict[str, Argument]:
    """The arguments a graph declares (for DeclareLaunchArgument and `sole-r1 launch --help`)."""
    raw = _read(path)
    return _arguments(raw, path)


def resolved_defaults(path: Path) -> dict[str, Optional[str]]:
    """Each argument's default with its substitutions done (None for required ones), as launch defaults."""
    values: dict[str, Any] = {}
    for arg in load_arguments(path).values():
        values[arg.name] = None if arg.required else _substitute(arg.default, values, path)
    return {name: None if value is None else _launch_string(value) for name, value in values.items()}


def _launch_string(value: Any) -> str:
    """A value as ROS launch writes it on a command line (true/false lower case), parsed back by parse_value."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def resolve_graph(name: str | Path, overrides: Optional[Mapping[str, Any]] = None) -> Graph:
    """Load a graph file and substitute its arguments; raise GraphError naming any unknown or missing one."""
    path = graph_path(str(name))
    raw = _read(path)
    declared = _arguments(raw, path)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise GraphError(f"{path.name}: unknown argument(s) {unknown}; declared: {sorted(declared)}")
    values: dict[str, Any] = {}
    for arg in declared.values():  # in file order, so a default may use $(arg earlier_one)
        if arg.name in overrides:
            values[arg.name] = parse_value(overrides[arg.name]) if isinstance(overrides[arg.name], str) \
                else overrides[arg.name]
        elif arg.required:
            raise GraphError(f"{path.name}: argument '{arg.name}' is required ({arg.description}): pass {arg.name}:=…")
        else:
            values[arg.name] = _substitute(arg.default, values, path)
    environment = {str(k): str(_substitute(v, values, path)) for k, v in (raw.get("environment") or {}).items()}
    nodes = []
    namespace = str(values.get(NAMESPACE_ARGUMENT.name) or "")
    for index, entry in enumerate(raw.get("nodes") or []):
        if not isinstance(entry, dict) or "executable" not in entry:
            raise GraphError(f"{path.name}: node #{index} needs at least 'executable'")
        extra = set(entry) - _NODE_KEYS
        if extra:
            raise GraphError(f"{path.name}: node #{index} has unknown key(s) {sorted(extra)}; allowed: {sorted(_NODE_KEYS)}")
        if "if" in entry and not _truthy(_substitute(entry["if"], values, path)):
            continue
        nodes.append(NodeSpec(
            name=str(entry.get("name", entry["executable"])),
            executable=str(entry["executable"]),
            parameters=_substitute(entry.get("parameters") or {}, values, path),
            remappings={**namespaced_remappings(namespace), **{
                str(k): str(v) for k, v in _substitute(entry.get("remappings") or {}, values, path).items()}},
            namespace=_join_namespace(namespace, str(entry.get("namespace", ""))),
            required=bool(entry.get("required", True)),
            shutdown_on_exit=bool(entry.get("shutdown_on_exit", False)),
            venv=str(entry.get("venv", "")),
            params_files=_params_files(_substitute(entry.get("params_file"), values, path), path),
        ))
    names = [n.name for n in nodes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise GraphError(f"{path.name}: duplicate node name(s) {duplicates}")
    return Graph(path, str(raw.get("description", "")), values, environment, nodes)


def parse_value(text: str) -> Any:
    """Parse a command-line `name:=value` the way ROS launch does: YAML scalars (10 -> int, true -> bool)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None or isinstance(value, (dict, list)):
        return text  # "", "a: b" or "[x" stay plain strings (task sentences often contain colons)
    return value


def params_file_content(node: NodeSpec) -> dict:
    """The `--params-file` YAML content for a node (parameters apply to that node name only)."""
    fq_name = f"/{node.namespace.strip('/')}/{node.name}" if node.namespace else node.name
    return {fq_name: {"ros__parameters": node.parameters}}


def _read(path: Path, _seen: tuple = ()) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise GraphError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise GraphError(f"{path}: a graph file must be a mapping with 'nodes'")
    extra = set(raw) - _GRAPH_KEYS
    if extra:
        raise GraphError(f"{path.name}: unknown top-level key(s) {sorted(extra)}; allowed: {sorted(_GRAPH_KEYS)}")
    if "extends" not in raw:
        return raw
    base_path = (path.parent / str(raw["extends"])).resolve()
    if base_path in _seen or not base_path.is_file():
        raise GraphError(f"{path.name}: extends {raw['extends']!r}, which is missing or circular")
    return _merge(_read(base_path, _seen + (path.resolve(),)), raw)


def _merge(base: dict, child: dict) -> dict:
    """A graph file `child` applied on top of `base` (see the module docstring)."""
    merged = {"description": child.get("description", base.get("description", "")),
              "arguments": {**(base.get("arguments") or {}), **(child.get("arguments") or {})},
              "environment": {**(base.get("environment") or {}), **(child.get("environment") or {})},
              "nodes": [dict(n) for n in base.get("nodes") or []]}
    by_name = {n.get("name", n.get("executable")): n for n in merged["nodes"]}
    for node in child.get("nodes") or []:
        name = node.get("name", node.get("executable"))
        if name in by_name:
            target = by_name[name]
            for key, value in node.items():
                target[key] = {**(target.get(key) or {}), **value} if key == "parameters" else value
        else:
            merged["nodes"].append(dict(node))
    return merged


def _arguments(raw: dict, path: Path) -> dict[str, Argument]:
    result = {}
    for name, spec in (raw.get("arguments") or {}).items():
        if not isinstance(spec, dict):
            spec = {"default": spec}
        result[name] = Argument(name, spec.get("default"), str(spec.get("description", "")))
    result.setdefault(NAMESPACE_ARGUMENT.name, dataclasses.replace(NAMESPACE_ARGUMENT))
    return result


def namespaced_remappings(namespace: str) -> dict[str, str]:
    """Remappings that move every sole_r1 topic and service name under /<namespace> ({} for no namespace)."""
    namespace = namespace.strip("/")
    return {name: f"/{namespace}{name}" for name in GLOBAL_NAMES} if namespace else {}


def _join_namespace(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def _params_files(value: Any, path: Path) -> list[str]:
    """A node's `params_file` (one path or a list) as absolute paths; GraphError when one is missing."""
    files = [] if value in (None, "") else [value] if isinstance(value, str) else list(value)
    resolved = []
    for item in files:
        file = Path(str(item)).expanduser()
        if not file.is_absolute():
            file = path.parent / file
        if not file.is_file():
            raise GraphError(f"{path.name}: params_file {item!r} does not exist")
        resolved.append(str(file.resolve()))
    return resolved


def _substitute(value: Any, args: Mapping[str, Any], path: Path) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, args, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, args, path) for v in value]
    if not isinstance(value, str) or "$(" not in value:
        return value
    whole = _SUBST.fullmatch(value.strip())
    if whole:
        return _one(whole, args, path)
    return _SUBST.sub(lambda m: str(_one(m, args, path)), value)


def _one(match: re.Match, args: Mapping[str, Any], path: Path) -> Any:
    kind, name, extra = match.group(1), match.group(2), match.group(3)
    if kind == "arg":
        if name not in args:
            raise GraphError(f"{path.name}: $(arg {name}) used but '{name}' is not declared under arguments")
        return args[name]
    if kind == "env":
        return os.environ.get(name, extra or "")
    return str((config_dir() / name).resolve())


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
