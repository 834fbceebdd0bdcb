"""Conversions between the project's ROS messages and the pure-Python types the libraries use."""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped

from sole_r1.msg import EEDeltaCommand
from sole_r1_ros.logic.safety.command import CommandDelta


def command_from_msg(msg: EEDeltaCommand) -> CommandDelta:
    """EEDeltaCommand -> CommandDelta (NaN/inf are kept so the safety gate can reject and count them)."""
    t, r = msg.translation, msg.rotation
    return CommandDelta(np.array([t.x, t.y, t.z]), np.array([r.x, r.y, r.z]), float(msg.gripper), int(msg.episode_id))


def command_to_msg(command: CommandDelta, *, hold: bool = False, stamp=None, frame_id: str = "base") -> EEDeltaCommand:
    """CommandDelta -> EEDeltaCommand."""
    msg = EEDeltaCommand(episode_id=int(command.episode_id), gripper=float(command.gripper), hold=bool(hold))
    msg.translation.x, msg.translation.y, msg.translation.z = (float(v) for v in command.translation)
    msg.rotation.x, msg.rotation.y, msg.rotation.z = (float(v) for v in command.rotation)
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    return msg


def pose_to_arrays(msg: PoseStamped) -> tuple[np.ndarray, np.ndarray]:
    """PoseStamped -> (position (3,), quaternion x, y, z, w (4,))."""
    p, q = msg.pose.position, msg.pose.orientation
    return np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w])


def pose_from_arrays(position, quaternion, *, stamp=None, frame_id: str = "base") -> PoseStamped:
    """(position, quaternion xyzw) -> PoseStamped."""
    msg = PoseStamped()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position)
    q = msg.pose.orientation
    q.x, q.y, q.z, q.w = (float(v) for v in quaternion)
    return msg
