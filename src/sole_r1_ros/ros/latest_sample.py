"""Newest-sample readers for high-rate topics whose every sample would cost the node more than it is worth.

franka_robot_state_broadcaster sends a FrankaRobotState at 1 kHz. A normal subscription wakes the node's executor for
each one (in rclpy ~0.5-1 ms of Python for the wait set and the callback, more with many entities) and a Python
deserialisation costs 0.5-1.5 ms more: together more than a core. Here the samples wait in a best-effort, depth-1
DDS reader that belongs to a helper node no executor spins, so nothing in Python runs per sample; the owner takes
the newest one when it wants it (a timer at its own rate) and deserialises only that one.
"""
from __future__ import annotations

from typing import Any, Optional

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message

NEWEST_ONLY_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                             durability=DurabilityPolicy.VOLATILE)


class LatestSampleReader:
    """Holds only the newest sample of `topic` (resolved like the owner's own names); `take()` returns it once."""

    def __init__(self, owner: Node, msg_type: type, topic: str, suffix: str,
                 qos: QoSProfile = NEWEST_ONLY_QOS) -> None:
        self.msg_type = msg_type
        # Resolved by the owner: its namespace and `-r` remappings apply; the helper takes no process arguments
        # (`-r __node:=...` would give it the owner's name, and the owner's parameters are not its own).
        self.topic_name = owner.resolve_topic_name(topic)
        self._node = Node(f"{owner.get_name()}_{suffix}", namespace=owner.get_namespace(), context=owner.context,
                          use_global_arguments=False, start_parameter_services=False)
        self._subscription = self._node.create_subscription(msg_type, self.topic_name, _never_called, qos, raw=True)
        self.taken = 0

    def take(self) -> Optional[Any]:
        """The newest sample not taken yet, deserialised, or None."""
        with self._subscription.handle:
            taken = self._subscription.handle.take_message(self.msg_type, True)
        if taken is None:
            return None
        self.taken += 1
        return deserialize_message(taken[0], self.msg_type)

    def destroy(self) -> None:
        """Destroy the helper node (and its reader)."""
        self._node.destroy_node()


def _never_called(_message) -> None:
    """The helper node is never spun: samples are only taken by `take()`."""
