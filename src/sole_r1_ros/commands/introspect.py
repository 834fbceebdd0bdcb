"""`sole-r1 graph` and `sole-r1 echo`: the two ros2 CLI commands users miss most where ros2cli is not installed."""
from __future__ import annotations

import array
import importlib
import sys
import time
from typing import Any, Optional, TextIO

import numpy as np
import rclpy
from rclpy.node import Node

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from sole_r1_ros.ros.conventions import SENSOR_QOS

_HIDDEN_PREFIXES = ("/_", "_")


def import_message_type(type_name: str) -> type:
    """Import a message class from its ROS name, e.g. 'sensor_msgs/msg/Image' or 'sensor_msgs/Image'."""
    parts = type_name.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3:
        raise ValueError(f"not a ROS message type name: {type_name!r}")
    package, kind, name = parts
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"message type {type_name} is not importable here: {exc}") from exc


def message_to_dict(msg: Any, max_array: int = 16) -> Any:
    """A message as plain Python data for printing; long arrays (image data) are summarised."""
    if hasattr(msg, "get_fields_and_field_types"):
        return {name: message_to_dict(getattr(msg, name), max_array) for name in msg.get_fields_and_field_types()}
    if isinstance(msg, (bytes, bytearray, np.ndarray, array.array, list, tuple)):
        values = msg.reshape(-1).tolist() if isinstance(msg, np.ndarray) else list(msg)
        if len(values) > max_array:
            return f"<{len(values)} values: {values[:8]}...>"
        return [message_to_dict(v, max_array) for v in values]
    return msg


def _format(value: Any, indent: int = 0) -> str:
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict) and item:
                lines.append(f"{pad}{key}:\n{_format(item, indent + 1)}")
            else:
                lines.append(f"{pad}{key}: {item!r}" if isinstance(item, str) else f"{pad}{key}: {item}")
        return "\n".join(lines)
    return f"{pad}{value}"


def _discover(node: Node, wait: float, settle: float = 2.0) -> None:
    """Spin at least `wait` s, then until the graph has not changed for `settle` s (at most 3 x wait)."""
    start = time.monotonic()
    last_change, last_seen = start, None
    while True:
        rclpy.spin_once(node, timeout_sec=0.05)
        now = time.monotonic()
        seen = (tuple(sorted(node.get_node_names_and_namespaces())), tuple(sorted(
            (t, tuple(types)) for t, types in node.get_topic_names_and_types())))
        if seen != last_seen:
            last_seen, last_change = seen, now
        # DDS discovery on a loaded machine can take several seconds: stop only once the picture is stable, and
        # keep looking (up to 3 x wait) while no other node has been seen at all.
        others = len(seen[0]) > 1
        if now - start >= wait and now - last_change >= settle and others or now - start >= 3 * wait:
            return


def print_graph(wait: float = 2.0, show_hidden: bool = False, out: TextIO = sys.stdout) -> int:
    """List the nodes, topics (with types) and services seen on the DDS graph."""
    rclpy.init()
    node = rclpy.create_node("_sole_r1_graph")
    try:
        _discover(node, wait)
        own = node.get_fully_qualified_name()
        nodes = sorted(f"{ns.rstrip('/')}/{name}" for name, ns in node.get_node_names_and_namespaces())
        nodes = [n for n in nodes if n != own and (show_hidden or not n.rsplit("/", 1)[-1].startswith("_"))]
        out.write(f"nodes ({len(nodes)}):\n" + "".join(f"  {n}\n" for n in nodes))
        topics = [(t, types) for t, types in node.get_topic_names_and_types()
                  if show_hidden or not t.startswith(_HIDDEN_PREFIXES)]
        out.write(f"topics ({len(topics)}):\n")
        for name, types in sorted(topics):
            pubs, subs = node.count_publishers(name), node.count_subscribers(name)
            out.write(f"  {name} [{', '.join(types)}] pub={pubs} sub={subs}\n")
        services = [(s, types) for s, types in node.get_service_names_and_types()
                    if show_hidden or not s.rsplit("/", 1)[-1].startswith("_") and "/_" not in s
                    and not any(p in s for p in ("/describe_parameters", "/get_parameter", "/list_parameters",
                                                  "/set_parameters", "/get_type_description"))]
        out.write(f"services ({len(services)}):\n" + "".join(
            f"  {s} [{', '.join(t)}]\n" for s, t in sorted(services)))
        out.flush()
    finally:
        node.destroy_node()
        rclpy.shutdown()
    return 0


def _matching_qos(node: Node, topic: str) -> QoSProfile:
    """A subscription QoS every current publisher can serve, as `ros2 topic echo` picks it."""
    publishers = node.get_publishers_info_by_topic(topic)
    qos = QoSProfile(depth=10)
    if any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for p in publishers):
        qos.reliability = ReliabilityPolicy.BEST_EFFORT
    if publishers and all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publishers):
        qos.durability = DurabilityPolicy.TRANSIENT_LOCAL
    return qos


def echo(topic: str, type_name: Optional[str] = None, count: int = 0, wait: float = 5.0,
         best_effort: bool = False, out: TextIO = sys.stdout) -> int:
    """Print messages of a topic (type discovered from the graph unless given); stop after `count` if > 0."""
    rclpy.init()
    node = rclpy.create_node("_sole_r1_echo")
    received = 0
    try:
        if type_name is None:
            deadline = time.monotonic() + wait
            while type_name is None and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.05)
                types = dict(node.get_topic_names_and_types()).get(topic)
                type_name = types[0] if types else None
            if type_name is None:
                out.write(f"topic {topic} not seen on the graph within {wait:.0f} s; pass --type to subscribe anyway\n")
                return 1
        msg_type = import_message_type(type_name)

        def on_message(msg: Any) -> None:
            nonlocal received
            received += 1
            out.write(_format(message_to_dict(msg)) + "\n---\n")
            out.flush()

        qos = SENSOR_QOS if best_effort else _matching_qos(node, topic)
        node.create_subscription(msg_type, topic, on_message, qos)
        while rclpy.ok() and (count <= 0 or received < count):
            rclpy.spin_once(node, timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
