"""Scripted ManiSkill experts: waypoint policies over privileged object poses, in the contract's action space.

They follow the `sole_r1_sim.experts.Expert` protocol (`reset()`, `act(env, obs)`) and read the scene through
`ManiSkillEnv.privileged_state()` (poses in the robot base frame), never through the images.
"""
from __future__ import annotations

import numpy as np

from sole_r1_sim.contract import ACTION_DIM

OPEN, CLOSE = 1.0, -1.0


def _yaw(quat_xyzw: np.ndarray) -> float:
    """Heading of a frame's x axis in the base x-y plane."""
    x, y, z, w = quat_xyzw
    # First column of the rotation matrix (the frame's x axis in base coordinates).
    return float(np.arctan2(2.0 * (x * y + z * w), 1.0 - 2.0 * (y * y + z * z)))


def _wrap(angle: float, period: float) -> float:
    """`angle` folded into [-period/2, period/2)."""
    return float((angle + period / 2.0) % period - period / 2.0)


class PickCubeExpert:
    """PickCube-v1: hover over the cube turned to its faces, descend, close, carry it to the goal sphere and hold.

    Each step commands a fraction (`gain`) of the remaining offset to the current waypoint; ManiSkill's delta-pose
    controller covers part of each command, so the motion converges without overshoot.
    """

    hover = 0.06          # metres above the cube before descending
    reach_tolerance = 0.008
    yaw_tolerance = 0.05  # radians
    grasp_steps = 6       # control steps with the gripper closing before lifting
    gain = 1.5

    def __init__(self) -> None:
        self.phase = "hover"
        self._grasp_count = 0

    def reset(self) -> None:
        """Start again from the hover phase."""
        self.phase = "hover"
        self._grasp_count = 0

    def act(self, env, obs) -> np.ndarray:
        """Next normalised action for the env's current state."""
        state = env.privileged_state()
        tcp, cube, goal = state["tcp_pos"], state["object_pos"], state["goal_pos"]
        yaw_error = _wrap(_yaw(state["object_quat"]) - _yaw(state["tcp_quat"]), np.pi / 2)  # a cube has 4 faces
        gripper = OPEN
        if self.phase == "hover":
            target = cube + np.array([0.0, 0.0, self.hover])
            if np.linalg.norm(target - tcp) < self.reach_tolerance and abs(yaw_error) < self.yaw_tolerance:
                self.phase = "descend"
        if self.phase == "descend":
            target = cube.copy()
            if np.linalg.norm(target - tcp) < self.reach_tolerance:
                self.phase = "grasp"
        if self.phase == "grasp":
            target, gripper = tcp.copy(), CLOSE
            self._grasp_count += 1
            if self._grasp_count >= self.grasp_steps:
                self.phase = "carry"
        if self.phase == "carry":
            target, gripper = goal.copy(), CLOSE
        action = np.zeros(ACTION_DIM)
        action[:3] = self.gain * (target - tcp) / env.action_scale.translation
        if self.phase in ("hover", "descend"):
            action[5] = self.gain * yaw_error / env.action_scale.rotation
        action[6] = gripper
        return np.clip(action, -1.0, 1.0)
