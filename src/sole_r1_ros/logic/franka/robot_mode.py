"""Franka robot modes, with the values and names of franka_msgs v2.x `FrankaRobotState.robot_mode`.

Source: franka_ros2 `franka_msgs/msg/FrankaRobotState.msg` (ROBOT_MODE_* constants), which mirrors libfranka's
`franka::RobotMode`. Kept here without importing franka_msgs so the safety gate works without franka_ros2.
"""
from __future__ import annotations

import enum


class RobotMode(enum.IntEnum):
    """`FrankaRobotState.robot_mode` values (ROBOT_MODE_<NAME>)."""

    OTHER = 0
    IDLE = 1
    MOVE = 2
    GUIDING = 3
    REFLEX = 4
    USER_STOPPED = 5
    AUTOMATIC_ERROR_RECOVERY = 6


# Robot-side stops: a reflex (collision, limit violation) or the user stop button. Both latch the software
# e-stop, and the latch cannot be released while the robot still reports them.
STOP_MODES = frozenset({RobotMode.REFLEX, RobotMode.USER_STOPPED})


def parse_robot_mode(value) -> RobotMode:
    """RobotMode from an int (message value) or a name ("REFLEX", "ROBOT_MODE_REFLEX", case-insensitive)."""
    if isinstance(value, RobotMode):
        return value
    if isinstance(value, str):
        name = value.strip().upper()
        name = name[len("ROBOT_MODE_"):] if name.startswith("ROBOT_MODE_") else name
        if name in RobotMode.__members__:
            return RobotMode[name]
        raise ValueError(f"unknown robot mode {value!r}; known: {list(RobotMode.__members__)}")
    try:
        return RobotMode(int(value))
    except (TypeError, ValueError):
        raise ValueError(f"unknown robot mode {value!r}; known values: "
                         f"{ {m.name: m.value for m in RobotMode} }") from None
