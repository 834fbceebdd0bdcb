"""Static transforms on /tf_static without tf2_ros: a latched tf2_msgs/TFMessage, as StaticTransformBroadcaster sends.

Camera nodes and the twin publish where their optical frames are (REP-103/105), so rviz and bag readers can place
the images. tf2_ros is not needed; tf2_msgs is (part of every ROS install, absent from the PyPI wheels): without it
the node logs once and publishes nothing.
"""
from __future__ import annotations

from typing import Optional, Sequence

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

TF_STATIC = "/tf_static"    # global on purpose: tf is one tree per ROS graph (prefix frames to tell robots apart)
# tf2_ros' StaticBroadcasterQoS: late joiners (rviz, tf listeners) get the transforms.
TF_STATIC_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)


def transform(parent: str, child: str, position: Sequence[float], quaternion: Sequence[float],
              stamp=None) -> TransformStamped:
    """A TransformStamped placing `child` in `parent` (position m, quaternion x, y, z, w)."""
    msg = TransformStamped()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id, msg.child_frame_id = parent, child
    t, q = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z = (float(v) for v in position)
    q.x, q.y, q.z, q.w = (float(v) for v in quaternion)
    return msg


class StaticTransforms:
    """Publishes a node's static transforms in one latched TFMessage (all of them again on every add)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._transforms: dict[str, TransformStamped] = {}
        self._publisher = None
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            node.get_logger().warning("tf2_msgs is not installed: no static transforms on /tf_static (camera "
                                      "frames stay unplaced in rviz); install ros-<distro>-tf2-msgs")
            self._message: Optional[type] = None
            return
        self._message = TFMessage
        self._publisher = node.create_publisher(TFMessage, TF_STATIC, TF_STATIC_QOS)

    @property
    def available(self) -> bool:
        """True when tf2_msgs could be imported (transforms are really published)."""
        return self._publisher is not None

    def add(self, parent: str, child: str, position: Sequence[float], quaternion: Sequence[float]) -> None:
        """Set (or replace) the transform of `child` and republish the node's whole static set."""
        stamp = self._node.get_clock().now().to_msg()
        self._transforms[child] = transform(parent, child, position, quaternion, stamp)
        if self._publisher is not None:
            self._publisher.publish(self._message(transforms=list(self._transforms.values())))
