"""Privileged task progress in [0, 100] from simulator state, one formula per task family.

All families use the same staged rule. A task is a sequence of stages with weights w_i (summing to 1), each
stage with a completion s_i in [0, 1] measured from the state:

    progress = 100 * sum_i w_i * max(s_i, s_i+1, ..., s_k)     (a later stage implies the earlier ones)
    progress = min(progress, 95) unless the suite reports success, and 100 when it does.

so releasing a placed object (the "grasped" stage drops to 0) does not lower progress, and only true success
reaches 100. Stage completions are one of:

    closing(d, d0)    = clip(1 - d / d0, 0, 1)            distance d shrinking from its value d0 at reset
    raising(z, z0, z1) = clip((z - z0) / (z1 - z0), 0, 1)  height z rising from z0 (reset) to z1 (goal)
    a flag            = 1.0 if true else 0.0              e.g. a two-finger grasp contact

Families (weights in brackets):
    Meta-World "reach"   [1.0]       closing(|hand - goal|)
    Meta-World "object"  [0.3, 0.7]  closing(|hand - object|), closing(object_to_target)  (Meta-World's own
                                     `obj_to_target`: object-to-goal distance, or the handle/button/dial travel left);
                                     where Meta-World reports 0 there, the success test as a distance:
                                     |object - goal| (assembly, box-close), |object x - goal x| (door-open),
                                     goal z - object z (disassemble), 9 cm - nail depth (hammer)
    RoboSuite  lift      [0.3, 0.2, 0.5]           closing(|eef - cube|), grasp(cube),
                                                   raising(cube z, start, table + 4 cm)
    RoboSuite  door      [0.3, 0.2, 0.5]           closing(|eef - handle|), raising(handle angle, 0, pi/4),
                                                   raising(hinge angle, 0, 0.3 rad)
    RoboSuite  stack     [0.2, 0.1, 0.2, 0.4, .1]  closing(|eef - cubeA|), grasp(A), raising(A bottom, start, B top),
                                                   closing(|A - B| in x-y), success
    RoboSuite  pick_place / nut_assembly  [0.2, 0.1, 0.2, 0.4, 0.1]  closing(|eef - object|), grasp, raising(object z,
                                                   start, start + 10 cm), closing(|object - target| in x-y), success
A do-nothing episode stays near 0; a scripted expert's episode rises to 100.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

SUCCESS_FREE_CAP = 95.0
MIN_DISTANCE = 0.01  # metres; a reset distance below this counts as "already there"


def closing(distance: float, initial: float) -> float:
    """Fraction of the reset distance already covered, in [0, 1]."""
    if initial < MIN_DISTANCE:
        return 1.0
    return float(np.clip(1.0 - distance / initial, 0.0, 1.0))


def raising(value: float, start: float, goal: float) -> float:
    """Fraction of the way from `start` to `goal`, in [0, 1]."""
    span = goal - start
    if abs(span) < 1e-9:
        return 1.0
    return float(np.clip((value - start) / span, 0.0, 1.0))


def staged_progress(weights: Sequence[float], stages: Sequence[float], success: bool) -> float:
    """Combine stage completions into [0, 100] with the later-implies-earlier rule and the success cap."""
    if success:
        return 100.0
    if len(weights) != len(stages):
        raise ValueError(f"{len(weights)} weights for {len(stages)} stages")
    implied = np.maximum.accumulate(np.asarray(stages, dtype=np.float64)[::-1])[::-1]
    return float(min(100.0 * float(np.dot(weights, implied)), SUCCESS_FREE_CAP))


# ---------------------------------------------------------------------------------------------- Meta-World
class MetaWorldProgress:
    """Meta-World: "reach" (hand to goal) or an object family (hand to object, then object to goal)."""

    # How the remaining object-to-goal "distance" is measured. Most tasks report it as info["obj_to_target"];
    # five report 0 there, so their success test is turned into a distance instead.
    FAMILIES = ("reach", "object", "object_to_goal", "object_x_to_goal", "object_below_goal", "nail")

    def __init__(self, family: str = "object") -> None:
        if family not in self.FAMILIES:
            raise ValueError(f"Meta-World progress family must be one of {self.FAMILIES}, got {family!r}")
        self.family = family
        self._hand_to_object0 = 1.0
        self._object_to_target0 = 1.0

    def reset(self, raw, info: dict) -> None:
        """Record the reset distances the stages are measured against."""
        self._hand_to_object0 = self._hand_to_object(raw)
        self._object_to_target0 = self._object_to_target(raw, info)

    def __call__(self, raw, info: dict, success: bool) -> float:
        """Progress of the current state."""
        place = closing(self._object_to_target(raw, info), self._object_to_target0)
        if self.family == "reach":
            return staged_progress([1.0], [place], success)
        reach = closing(self._hand_to_object(raw), self._hand_to_object0)
        return staged_progress([0.3, 0.7], [reach, place], success)

    def _object_to_target(self, raw, info: dict) -> float:
        obj, goal = raw._get_pos_objects()[:3], np.asarray(raw._target_pos)
        if self.family == "object_to_goal":      # assembly, box-close: object position vs goal position
            return float(np.linalg.norm(obj - goal))
        if self.family == "object_x_to_goal":    # door-open: success is |handle x - goal x| <= 8 cm
            return float(abs(obj[0] - goal[0]))
        if self.family == "object_below_goal":   # disassemble: success is the ring above the goal height
            return float(max(goal[2] - obj[2], 0.0))
        if self.family == "nail":                # hammer: success is the nail driven 9 cm in
            return float(max(0.09 - float(raw.data.joint("NailSlideJoint").qpos[0]), 0.0))
        return float(info["obj_to_target"])

    @staticmethod
    def _hand_to_object(raw) -> float:
        return float(np.linalg.norm(np.asarray(raw.tcp_center) - raw._get_pos_objects()[:3]))


# ---------------------------------------------------------------------------------------------- RoboSuite
def _eef(env) -> np.ndarray:
    return np.array(env.sim.data.site_xpos[env.robots[0].eef_site_id["right"]])


def _body_pos(env, body_id: int) -> np.ndarray:
    return np.array(env.sim.data.body_xpos[body_id])


class _RoboSuiteProgress:
    """Base: subclasses define `measure(env) -> list of stage completions` and record reset values in `reset`."""

    weights: tuple[float, ...] = ()

    def reset(self, env) -> None:
        """Record reset values (distances, heights)."""

    def measure(self, env) -> list[float]:
        """Stage completions of the current state."""
        raise NotImplementedError

    def __call__(self, env, success: bool) -> float:
        """Progress of the current state."""
        return staged_progress(self.weights, self.measure(env), success)


class LiftProgress(_RoboSuiteProgress):
    """Lift: reach the cube, grasp it, raise it 4 cm above the table (RoboSuite's success height)."""

    weights = (0.3, 0.2, 0.5)

    def reset(self, env) -> None:
        self._reach0 = np.linalg.norm(_eef(env) - _body_pos(env, env.cube_body_id))
        self._z0 = _body_pos(env, env.cube_body_id)[2]

    def measure(self, env) -> list[float]:
        cube = _body_pos(env, env.cube_body_id)
        goal_z = env.model.mujoco_arena.table_offset[2] + 0.04
        return [
            closing(np.linalg.norm(_eef(env) - cube), self._reach0),
            float(env._check_grasp(gripper=env.robots[0].gripper, object_geoms=env.cube)),
            raising(cube[2], self._z0, goal_z),
        ]


class DoorProgress(_RoboSuiteProgress):
    """Door: reach the handle, turn it (unlatch), swing the door 0.3 rad open (RoboSuite's success angle)."""

    weights = (0.3, 0.2, 0.5)

    def reset(self, env) -> None:
        self._reach0 = np.linalg.norm(env._gripper_to_handle)

    def measure(self, env) -> list[float]:
        qpos = env.sim.data.qpos
        handle = abs(qpos[env.handle_qpos_addr]) if env.use_latch else np.pi / 4
        return [
            closing(np.linalg.norm(env._gripper_to_handle), self._reach0),
            raising(handle, 0.0, np.pi / 4),
            raising(qpos[env.hinge_qpos_addr], 0.0, 0.3),
        ]


class StackProgress(_RoboSuiteProgress):
    """Stack: reach cube A, grasp it, raise it to cube B's top, bring it over B, stacked (success)."""

    weights = (0.2, 0.1, 0.2, 0.4, 0.1)

    def reset(self, env) -> None:
        a, b = _body_pos(env, env.cubeA_body_id), _body_pos(env, env.cubeB_body_id)
        self._reach0 = np.linalg.norm(_eef(env) - a)
        self._z0 = a[2]
        self._align0 = np.linalg.norm((a - b)[:2])

    def measure(self, env) -> list[float]:
        a, b = _body_pos(env, env.cubeA_body_id), _body_pos(env, env.cubeB_body_id)
        # A's centre is on B's top when it is B's half-height plus A's half-height above B's centre.
        stacked_z = b[2] + env.cubeB.size[2] + env.cubeA.size[2]
        return [
            closing(np.linalg.norm(_eef(env) - a), self._reach0),
            float(env._check_grasp(gripper=env.robots[0].gripper, object_geoms=env.cubeA)),
            raising(a[2], self._z0, stacked_z),
            closing(np.linalg.norm((a - b)[:2]), self._align0),
            0.0,  # the final stage is success itself
        ]


class TransportProgress(_RoboSuiteProgress):
    """PickPlace*/NutAssembly*: reach the object, grasp, lift 10 cm, carry over its target, placed (success)."""

    weights = (0.2, 0.1, 0.2, 0.4, 0.1)
    LIFT = 0.10

    def __init__(self, object_name: str, object_model, target) -> None:
        self.object_name = object_name     # key of env.obj_body_id
        self.object_model = object_model   # the MujocoObject, for the grasp contact check
        self.target = target               # callable env -> (3,) target position in the world frame

    def _object_pos(self, env) -> np.ndarray:
        return _body_pos(env, env.obj_body_id[self.object_name])

    def reset(self, env) -> None:
        position = self._object_pos(env)
        self._reach0 = np.linalg.norm(_eef(env) - position)
        self._z0 = position[2]
        self._carry0 = np.linalg.norm((position - self.target(env))[:2])

    def measure(self, env) -> list[float]:
        position = self._object_pos(env)
        return [
            closing(np.linalg.norm(_eef(env) - position), self._reach0),
            float(env._check_grasp(gripper=env.robots[0].gripper, object_geoms=self.object_model)),
            raising(position[2], self._z0, self._z0 + self.LIFT),
            closing(np.linalg.norm((position - self.target(env))[:2]), self._carry0),
            0.0,
        ]
