"""Scripted LIBERO expert: a waypoint pick-and-place over privileged object positions.

It follows the `sole_r1_sim.experts.Expert` protocol (`reset()`, `act(env, obs)`) and reads the scene through
`LiberoEnv` (object positions from the BDDL object states), never through the images. It solves the
"pick up X and place it in/on Y" tasks whose object can be grasped from above with the gripper pointing down
(e.g. every libero_object task).
"""
from __future__ import annotations

import numpy as np

from sole_r1_sim.contract import ACTION_DIM

OPEN, CLOSE = 1.0, -1.0


def _wrap(angle: float, period: float) -> float:
    """`angle` folded into [-period/2, period/2)."""
    return float((angle + period / 2.0) % period - period / 2.0)


class PickPlaceExpert:
    """Hover over the object, descend, close, lift, carry above the target, lower, open, back off.

    The object and target are the first `in`/`on` goal predicate of the task. Each step commands `gain` times the
    remaining offset to the waypoint (OSC covers only part of a command per step, so this converges smoothly).
    """

    hover = 0.10            # metres above the object's centre before descending
    grasp_depth = 0.0       # gripper site height relative to the object's centre when closing
    carry_height = 0.20     # metres above the target region while carrying
    release_height = 0.10   # metres above the target region when opening
    tolerance = 0.012
    close_steps = 12
    open_steps = 8
    patience = 40           # steps a descent may take before the expert closes anyway (the fingers hit the table)
    gain = 3.0

    def __init__(self) -> None:
        self.phase = "hover"
        self._count = 0

    def reset(self) -> None:
        """Start again from the hover phase."""
        self.phase = "hover"
        self._count = 0

    def _advance(self, phase: str) -> None:
        self.phase, self._count = phase, 0

    def _names(self, env) -> tuple[str, str]:
        for predicate in env.goal_predicates():
            if predicate[0].lower() in ("in", "on") and len(predicate) == 3:
                return predicate[1], predicate[2]
        raise ValueError(f"{env.task_name}: no in/on goal predicate for a pick-and-place expert: "
                         f"{env.goal_predicates()}")

    def act(self, env, obs) -> np.ndarray:
        """Next normalised action for the env's current state."""
        obj_name, target_name = self._names(env)
        eef, obj, goal = env.eef_position(), env.object_position(obj_name), env.object_position(target_name)
        up = np.array([0.0, 0.0, 1.0])
        gripper = OPEN
        self._count += 1
        if self.phase == "hover":
            waypoint = obj + self.hover * up
            if np.linalg.norm(waypoint - eef) < self.tolerance:
                self._advance("descend")
        if self.phase == "descend":
            waypoint = obj + self.grasp_depth * up
            if np.linalg.norm(waypoint - eef) < self.tolerance or self._count > self.patience:
                self._advance("close")
        if self.phase == "close":
            waypoint, gripper = eef, CLOSE
            if self._count >= self.close_steps:
                self._advance("lift")
        if self.phase == "lift":
            waypoint, gripper = np.array([eef[0], eef[1], goal[2] + self.carry_height]), CLOSE
            if abs(waypoint[2] - eef[2]) < self.tolerance:
                self._advance("carry")
        if self.phase == "carry":
            waypoint, gripper = goal + self.carry_height * up, CLOSE
            if np.linalg.norm((waypoint - eef)[:2]) < self.tolerance:
                self._advance("lower")
        if self.phase == "lower":
            waypoint, gripper = goal + self.release_height * up, CLOSE
            if np.linalg.norm(waypoint - eef) < self.tolerance or self._count > self.patience:
                self._advance("release")
        if self.phase == "release":
            waypoint = eef
            if self._count >= self.open_steps:
                self._advance("retreat")
        if self.phase == "retreat":
            waypoint = goal + self.carry_height * up
        action = np.zeros(ACTION_DIM)
        action[:3] = self.gain * env.to_base_vector(waypoint - eef) / env.action_scale.translation
        if self.phase in ("hover", "descend"):
            # Turn the fingers square to the object's faces (a box fits between them only one of two ways round).
            yaw_error = _wrap(env.object_yaw(obj_name) - env.eef_yaw(), np.pi / 2)
            action[5] = self.gain * yaw_error / env.action_scale.rotation
        action[6] = gripper
        return np.clip(action, -1.0, 1.0)
