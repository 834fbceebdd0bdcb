"""Conventions every sole_r1 node follows: topic names, QoS profiles, typed parameters, and a clean main().

Parameters: each node describes its parameters with dataclasses whose fields are `sole_r1_config.param(...)`
(description, range, choices) -- the same dataclasses the libraries and CLIs use. `declare_config(node, Config)`
declares them with ROS descriptors, reads them and builds the dataclass; `run_node` then refuses parameters the
node never declared. An out-of-range, wrongly typed, misspelt or missing required parameter stops the node at
start with a message naming it, and the dataclass stays the one place that defines each default.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import typing
from typing import Any, Callable, Optional, Sequence

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

from sole_r1_config import ConfigError, check_ranges, param  # noqa: F401  (nodes use conv.param)
from sole_r1_config.settings import range_message
# Topic and service names live in names.py (no rclpy there: the graph runner reads them to namespace a graph).
from sole_r1_ros.ros.names import (  # noqa: F401  (nodes use conv.<NAME>)
    SHOULDER_IMAGE, SHOULDER_INFO, WRIST_IMAGE, WRIST_INFO, JOINT_STATES, EE_POSE, ACTION_SCALE, GRIPPER_STATE,
    TARGET_POSE, ROBOT_COMMAND, LEARNER_COMMAND, PROGRESS, REWARD_MARKERS, EPISODE_INFO, TASK, ESTOP, ESTOP_STATE,
    ROBOT_MODE, DIAGNOSTICS, RESET_EPISODE_SERVICE, QUERY_PROGRESS_SERVICE, SAFETY_WORKSPACE,
    TRIGGER_ESTOP_SERVICE, RESET_ESTOP_SERVICE, ERROR_RECOVERY_SERVICE, HOME_GRIPPER_SERVICE)

# ------------------------------------------------------------------------------------------------------- QoS
# Camera streams. Publishers are RELIABLE so both reliable and best-effort subscribers (rviz) can connect.
# Our nodes subscribe RELIABLE with a 2-deep queue: measured here (benchmarks/image_transport.py), best-effort
# subscribers lose most fragmented 480x640 frames, while reliable keep-last(2) delivers every frame at 30 Hz and
# still never queues more than two stale frames.
SENSOR_QOS: QoSProfile = qos_profile_sensor_data
IMAGE_PUBLISHER_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2,
                                 reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
IMAGE_SUBSCRIBER_QOS = IMAGE_PUBLISHER_QOS
# Control and reward streams: reliable, small queue.
RELIABLE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                          reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
# Episode events: reliable and transient-local so that a node which comes up just after an episode started (the
# learner, the reward node) still gets its STARTED event -- on a real robot no STEP event follows until the learner
# acts, so a missed STARTED would leave the loop waiting forever. Volatile subscribers stay compatible.
EPISODE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                         reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Subscribers queue more: a learner busy closing an episode (replay written and fsync'd) for a second must not lose
# the next STARTED under the 10 Hz STEP events behind it (depth is not part of QoS matching).
EPISODE_SUBSCRIBER_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                                    reliability=ReliabilityPolicy.RELIABLE,
                                    durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Latched state (e-stop, task): a node that starts late still gets the last value.
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def camera_qos(mode: str, reward_every: int) -> QoSProfile:
    """Camera QoS shared by the sim bridge and the reward node: keep-last-2, in lockstep deep enough to lose no frame.

    In lockstep the bridge waits for the learner every step but for the reward node only every `reward_every`
    steps, so the reward node may fall up to `reward_every` frames behind. A keep-last(2) reader or writer would
    then drop frames, the reward node's frame count would drift from the bridge's step count, and the bridge would
    wait for an estimate of a frame the reward node never scores (seen as a 300 s stall on a loaded machine).
    """
    if mode != "lockstep":
        return IMAGE_PUBLISHER_QOS
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max(2, int(reward_every) + 2),
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


# ------------------------------------------------------------------------------------------------ parameters
_T = typing.TypeVar("_T")


def declare_config(node: Node, config_cls: type[_T], prefix: str = "") -> _T:
    """Declare one ROS parameter per field (nested dataclasses as `outer.inner`), read, validate, build the config."""
    hints = typing.get_type_hints(config_cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(config_cls):
        if not field.init:
            continue
        name = prefix + field.name
        if dataclasses.is_dataclass(hints[field.name]):
            values[field.name] = declare_config(node, hints[field.name], f"{name}.")
            continue
        values[field.name] = _declare_one(node, name, field, hints[field.name])
    try:
        config = config_cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid parameters for {node.get_name()}: {exc}") from exc
    check_ranges(config, prefix)
    return config


def _declare_one(node: Node, name: str, field: dataclasses.Field, hint: Any) -> Any:
    meta = field.metadata
    optional = typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)
    if optional:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    kind = _param_kind(hint, name)
    descriptor = _descriptor(meta, kind)
    if meta.get("required", False):
        default = _EMPTY[kind]
    else:
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    try:
        # An Optional field left at None is declared without a value (NOT_SET) and read back as None.
        node.declare_parameter(name, None if default is None else _coerce(default, kind), descriptor)
    except InvalidParameterValueException as exc:  # rclpy's own range check rejected the override
        overrides = getattr(node, "_parameter_overrides", {})  # to name the offending value in our words
        value = overrides[name].value if name in overrides else None
        message = range_message(name, value, meta) if value is not None else ""
        raise ConfigError(message or f"parameter '{name}': {exc}") from exc
    value = node.get_parameter(name).value
    if meta.get("required", False) and value in (None, "", []):
        raise ConfigError(f"required parameter '{name}' is not set ({meta.get('description', '')})")
    if value is None and kind is list:
        return []   # an empty YAML list (`crop: []` in a params file) has no element type: ROS leaves it unset
    if value is None:
        if optional:
            return None
        raise ConfigError(f"parameter '{name}' has no value")
    try:
        return _coerce(value, kind)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"parameter '{name}' = {value!r} is not a valid {kind.__name__}") from exc


def check_unknown_parameters(node: Node) -> None:
    """Raise ConfigError naming every parameter given to `node` (params file, CLI) that it never declared."""
    given = set(getattr(node, "_parameter_overrides", {}))
    declared = set(node._parameters)
    unknown = sorted(given - declared)
    if unknown:
        valid = sorted(name for name in declared if name != "use_sim_time")
        raise ConfigError(f"unknown parameter(s) for {node.get_name()}: {', '.join(unknown)} (a typo?); "
                          f"valid names: {', '.join(valid)}")


_EMPTY = {bool: False, int: 0, float: 0.0, str: "", list: []}


def _param_kind(hint: Any, name: str) -> type:
    origin = typing.get_origin(hint)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        return list
    if hint in (bool, int, float, str):
        return hint
    raise TypeError(f"parameter '{name}': unsupported field type {hint!r} (use bool, int, float, str or list)")


def _coerce(value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # YAML "10" for a float parameter
    if kind is list:
        return list(value)
    if (kind is bool) != isinstance(value, bool):
        raise TypeError(f"{value!r} is not a {kind.__name__}")
    if not isinstance(value, kind):
        raise TypeError(f"{value!r} is not a {kind.__name__}")
    return value


def _descriptor(meta: Any, kind: type) -> ParameterDescriptor:
    # dynamic_typing: a YAML/launch "10" for a float parameter must not crash rclpy's strict type check;
    # _coerce() then accepts int->float and rejects real mismatches with a message naming the parameter.
    descriptor = ParameterDescriptor(description=meta.get("description", ""), read_only=meta.get("read_only", True),
                                     dynamic_typing=True)
    low, high = meta.get("low"), meta.get("high")
    if low is not None and high is not None and all(map(_finite_number, (low, high))):
        # The descriptor lets `ros2 param describe` show the range; check_ranges() enforces it with a clear message.
        if kind is float:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
        elif kind is int:
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
    if meta.get("choices"):
        descriptor.additional_constraints = f"one of {list(meta['choices'])}"
    return descriptor


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


# ------------------------------------------------------------------------------------------------ diagnostics
def diagnostics(node: Node, component: str, level: bytes, message: str, values: dict) -> DiagnosticArray:
    """A one-status /diagnostics message named 'sole_r1: <component>' with `values` as key/value strings."""
    status = DiagnosticStatus(level=level, name=f"sole_r1: {component}", message=message, hardware_id=component,
                              values=[KeyValue(key=str(k), value=str(v)) for k, v in values.items()])
    array = DiagnosticArray(status=[status])
    array.header.stamp = node.get_clock().now().to_msg()
    return array


# ------------------------------------------------------------------------------------------------------ main
def run_node(factory: Callable[[], Node], args: Optional[list[str]] = None, *, multithreaded: bool = False) -> int:
    """Init rclpy, build the node, spin until Ctrl-C or shutdown; a ConfigError exits 2 with its message."""
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    code = 0
    try:
        node = factory()
        check_unknown_parameters(node)
        if not rclpy.ok():  # Ctrl-C while the node was being built (e.g. a learner loading torch): stop, don't spin
            return 0
        executor = MultiThreadedExecutor() if multithreaded else SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except ConfigError as exc:
        print(f"[FATAL] {exc}", file=sys.stderr, flush=True)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except SystemExit as exc:  # a node asked to stop (e.g. a finished one-shot source)
        code = int(exc.code or 0)
    except Exception:  # noqa: BLE001
        if rclpy.ok():
            raise
        # SIGINT/SIGTERM shut the context down under the executor: a clean stop, not a crash
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code
