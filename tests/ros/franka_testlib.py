"""Helpers for tests that run franka_bridge / fake_franka: the test-only franka_msgs build and its environment."""
from __future__ import annotations

import functools
import importlib.util
import time
from pathlib import Path

import numpy as np

from sole_r1.msg import EEDeltaCommand

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@functools.lru_cache(maxsize=1)
def _builder():
    spec = importlib.util.spec_from_file_location("build_franka_msgs", FIXTURES / "build_franka_msgs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def franka_msgs_env() -> dict:
    """Environment for child processes that import the test-only franka_msgs (built once, ~40 s, then cached)."""
    builder = _builder()
    return builder.franka_msgs_env(builder.build_franka_msgs(builder.DEFAULT_CACHE_DIR))


def command(translation=(0.0, 0.0, 0.0), rotation=(0.0, 0.0, 0.0), gripper: float = 0.0,
            hold: bool = False) -> EEDeltaCommand:
    """A gated EEDeltaCommand as the safety gate would publish it."""
    msg = EEDeltaCommand(gripper=float(gripper), hold=hold)
    msg.header.frame_id = "base"
    msg.translation.x, msg.translation.y, msg.translation.z = (float(v) for v in translation)
    msg.rotation.x, msg.rotation.y, msg.rotation.z = (float(v) for v in rotation)
    return msg


def publish_for(publisher, msg, seconds: float, rate_hz: float = 10.0) -> None:
    """Publish `msg` at `rate_hz` for `seconds` (the control loop of a learner behind the gate)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        publisher.publish(msg)
        time.sleep(1.0 / rate_hz)


def latest_position(poses: list) -> np.ndarray:
    """Position of the newest PoseStamped in a RosHarness.collect() list."""
    p = poses[-1][1].pose.position
    return np.array([p.x, p.y, p.z])


def finger_width(joint_states: list) -> float:
    """Gripper width (sum of the two finger joints) from the newest /robot/joint_states message."""
    msg = joint_states[-1][1]
    return float(sum(pos for name, pos in zip(msg.name, msg.position) if "finger" in name))
