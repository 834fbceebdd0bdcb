"""Scripted RoboSuite experts (privileged: they read object poses from the simulator).

Each expert is a small phase machine over waypoints for the end effector, driven by a proportional controller in
the robot base frame (the frame OSC_POSE deltas are read in). Measured on the Panda with the default OSC gains at
20 Hz: a unit action moves the hand ~1.3 cm and turns it ~0.12 rad per step once moving, so errors are divided by
a few steps' worth of motion and clipped to [-1, 1].
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from scipy.spatial.transform import Rotation

from sole_r1_sim.contract import ACTION_DIM

OPEN, CLOSE = 1.0, -1.0
POSITION_GAIN = 1.0 / 0.04   # action per metre of error: full speed beyond 4 cm
ROTATION_GAIN = 1.0 / 0.4    # action per radian of error: full speed beyond 0.4 rad


def _base_frame(env) -> tuple[np.ndarray, np.ndarray]:
    data = env.raw.sim.data._data
    base = data.body(env.raw.robots[0].robot_model.root_body)
    return np.array(base.xpos), np.array(base.xmat).reshape(3, 3)


def to_base(env, world_point: np.ndarray) -> np.ndarray:
    """A world-frame point in the robot base frame."""
    position, rotation = _base_frame(env)
    return rotation.T @ (np.asarray(world_point) - position)


def body_position(env, body_id: int) -> np.ndarray:
    """World position of a body (by id) of the RoboSuite env."""
    return np.array(env.raw.sim.data.body_xpos[body_id])


def body_yaw(env, body_id: int) -> float:
    """Yaw (rotation about world z) of a body, radians."""
    w, x, y, z = env.raw.sim.data.body_xquat[body_id]
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def _wrap(angle: float, period: float) -> float:
    """`angle` wrapped into [-period/2, period/2)."""
    return (angle + period / 2.0) % period - period / 2.0


class WaypointController:
    """Turns (target position, target rotation, gripper) into a normalised OSC_POSE action."""

    def __init__(self, env) -> None:
        self.env = env

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position and rotation matrix in the base frame."""
        proprio = self.env.proprio()
        return proprio.ee_position, Rotation.from_quat(proprio.ee_quaternion).as_matrix()

    def action(self, target_position: np.ndarray, target_rotation: np.ndarray,
               gripper: float) -> tuple[np.ndarray, float, float]:
        """Action towards the target; also returns the position (m) and rotation (rad) errors."""
        position, rotation = self.ee_pose()
        position_error = target_position - position
        rotation_error = Rotation.from_matrix(target_rotation @ rotation.T).as_rotvec()
        action = np.zeros(ACTION_DIM)
        # The env scales actions by its ActionScale; the gains above assume RoboSuite's 5 cm / 0.5 rad per unit.
        action[:3] = np.clip(position_error * POSITION_GAIN, -1.0, 1.0)
        action[3:6] = np.clip(rotation_error * ROTATION_GAIN, -1.0, 1.0)
        action[6] = gripper
        return action, float(np.linalg.norm(position_error)), float(np.linalg.norm(rotation_error))


class PickPlaceExpert:
    """Reach above an object, descend, grasp, lift, and (when `goal` is given) carry, lower and release it."""

    def __init__(self, object_position: Callable, object_yaw: Optional[Callable] = None, yaw_period: float = np.pi / 2,
                 goal: Optional[Callable] = None, grasp_offset: Callable | np.ndarray = (0.0, 0.0, 0.0),
                 lift_height: float = 0.10, carry_height: float = 0.15, place_clearance: float = 0.02,
                 yaw_offset: float = 0.0) -> None:
        self.object_position = object_position      # env -> world (3,)
        self.object_yaw = object_yaw                # env -> yaw (rad), None to keep the start orientation
        self.yaw_period = yaw_period                # symmetry of the grasp about z (pi/2 for a cube)
        self.goal = goal                            # env -> world (3,) where the object's reference point goes
        self.grasp_offset = grasp_offset            # world offset (or env -> offset) from object point to grasp point
        self.lift_height = lift_height
        self.carry_height = carry_height
        self.place_clearance = place_clearance
        self.yaw_offset = yaw_offset
        self.reset()

    def reset(self) -> None:
        """Start from the first phase."""
        self._next("above")
        self._rotation0 = None
        self._held_offset = None

    def _offset(self, env) -> np.ndarray:
        return np.asarray(self.grasp_offset(env) if callable(self.grasp_offset) else self.grasp_offset)

    def _next(self, phase: str) -> None:
        self.phase, self.phase_steps = phase, 0
        self._best_error, self._best_step = np.inf, 0

    def _stalled(self, error: float, patience: int = 8) -> bool:
        """True once the error has not improved by 2 mm for `patience` steps (e.g. at the edge of the workspace)."""
        if error < self._best_error - 0.002:
            self._best_error, self._best_step = error, self.phase_steps
        return self.phase_steps - self._best_step > patience

    def _target_rotation(self, env, rotation: np.ndarray) -> np.ndarray:
        if self._rotation0 is None:
            self._rotation0 = rotation.copy()
        if self.object_yaw is None:
            return self._rotation0
        hand_yaw = np.arctan2(self._rotation0[1, 0], self._rotation0[0, 0])
        turn = _wrap(self.object_yaw(env) + self.yaw_offset - hand_yaw, self.yaw_period)
        return Rotation.from_euler("z", turn).as_matrix() @ self._rotation0

    def act(self, env, obs) -> np.ndarray:
        """Next action of the phase machine."""
        controller = WaypointController(env)
        position, rotation = controller.ee_pose()
        grasp_point = to_base(env, self.object_position(env) + self._offset(env))
        self.phase_steps += 1
        if self.phase in ("above", "descend", "close"):
            target_rotation = self._target_rotation(env, rotation)
            self._held_rotation = target_rotation
        else:
            target_rotation = self._held_rotation
        up = np.array([0.0, 0.0, 1.0])
        if self.phase == "above":
            action, error, turn = controller.action(grasp_point + up * 0.08, target_rotation, OPEN)
            if (error < 0.015 and turn < 0.08) or self.phase_steps > 60:
                self._next("descend")
        elif self.phase == "descend":
            action, error, _ = controller.action(grasp_point, target_rotation, OPEN)
            if error < 0.008 or self.phase_steps > 40:
                self._next("close")
        elif self.phase == "close":
            action, _, _ = controller.action(grasp_point, target_rotation, CLOSE)
            if self.phase_steps >= 12:
                self._held_offset = position - to_base(env, self.object_position(env))
                self._lift_target = position + up * self.lift_height
                self._next("lift")
        elif self.phase == "lift":
            action, error, _ = controller.action(self._lift_target, target_rotation, CLOSE)
            if self.goal is not None and (error < 0.02 or self.phase_steps > 40):
                self._next("carry")
        elif self.phase == "carry":
            goal = to_base(env, self.goal(env)) + self._held_offset
            waypoint = np.array([goal[0], goal[1], max(goal[2] + self.carry_height, self._lift_target[2])])
            action, error, _ = controller.action(waypoint, target_rotation, CLOSE)
            if np.linalg.norm((waypoint - position)[:2]) < 0.01 or self._stalled(error) or self.phase_steps > 80:
                self._next("lower")
        elif self.phase == "lower":
            goal = to_base(env, self.goal(env)) + self._held_offset + up * self.place_clearance
            action, error, _ = controller.action(goal, target_rotation, CLOSE)
            if error < 0.01 or self._stalled(error) or self.phase_steps > 40:
                self._next("release")
        elif self.phase == "release":
            action, _, _ = controller.action(position, target_rotation, OPEN)
            if self.phase_steps >= 10:
                self._retreat = position + up * 0.10
                self._next("retreat")
        else:  # retreat
            action, _, _ = controller.action(self._retreat, target_rotation, OPEN)
        return action


# ---------------------------------------------------------------------------------------------- per task
def lift_expert() -> PickPlaceExpert:
    """Lift: grasp the cube (aligned with its faces) and raise it 10 cm."""
    return PickPlaceExpert(
        object_position=lambda env: body_position(env, env.raw.cube_body_id),
        object_yaw=lambda env: body_yaw(env, env.raw.cube_body_id),
    )


def stack_expert() -> PickPlaceExpert:
    """Stack: grasp cube A, carry it over cube B, lower it onto B's top and let go."""

    def on_top_of_b(env):
        raw = env.raw
        return body_position(env, raw.cubeB_body_id) + np.array([0.0, 0.0, raw.cubeB.size[2] + raw.cubeA.size[2]])

    return PickPlaceExpert(
        object_position=lambda env: body_position(env, env.raw.cubeA_body_id),
        object_yaw=lambda env: body_yaw(env, env.raw.cubeA_body_id),
        goal=on_top_of_b,
        carry_height=0.08,
        place_clearance=0.01,
    )


def pick_place_can_expert() -> PickPlaceExpert:
    """PickPlaceCan: grasp the can from above, carry it over its bin, lower it in and let go."""

    def can(env):
        return body_position(env, env.raw.obj_body_id[env.raw.obj_to_use])

    def bin_target(env):
        raw = env.raw
        return np.array(raw.target_bin_placements[raw.object_to_id[raw.obj_to_use.lower()]])

    # Aim 4 cm short of the bin quarter's centre, towards the robot: the centre is at the edge of the Panda's
    # reach, and anywhere within the quarter counts; let go 6 cm above the bin floor.
    return PickPlaceExpert(object_position=can, goal=lambda env: bin_target(env) + np.array([-0.04, -0.04, 0.06]),
                           grasp_offset=(0.0, 0.0, 0.01), carry_height=0.10, place_clearance=0.0)


ROBOSUITE_EXPERTS = {
    "Lift": lift_expert,
    "Stack": stack_expert,
    "PickPlaceCan": pick_place_can_expert,
}


class DoorExpert:
    """Door: grasp the lever handle, turn it down to free the latch, then swing the door open about its hinge.

    Targets follow the door's own kinematics: the grasped point is moved to where it would be with the latch and
    hinge joints at the wanted angles (rotations about the joints' current anchors and axes).
    """

    HANDLE_TURN = 1.45   # rad, lever pressed down this far (measured: the latch clears the frame beyond ~1.3)
    DOOR_OPEN = 0.38     # rad, hinge target (success is 0.3; the joint stops at 0.4)
    MAX_STEP = 0.12      # rad of lever travel asked for per control step
    WRIST_FOLLOW = 1.0   # fraction of the lever's turn the hand follows (the rest slips in the fingers)
    HINGE_LEAD = 0.2     # rad the door target runs ahead: enough push to beat the hinge friction

    def reset(self) -> None:
        """Start from the first phase."""
        self.phase, self.phase_steps = "above", 0
        self._rotation = None
        self._flipped = False
        self._flip_steps_left = 0

    def __init__(self) -> None:
        self.reset()

    @staticmethod
    def _joint(env, qpos_addr: int):
        raw = env.raw
        model, data = raw.sim.model._model, raw.sim.data._data
        joint_id = int(np.where(model.jnt_qposadr == qpos_addr)[0][0])
        return float(data.qpos[qpos_addr]), np.array(data.xanchor[joint_id]), np.array(data.xaxis[joint_id])

    @staticmethod
    def _rotate(point, anchor, axis, angle):
        return anchor + Rotation.from_rotvec(axis * angle).apply(point - anchor)

    def _handle_target(self, env, handle_angle: float, hinge_angle: float) -> np.ndarray:
        raw = env.raw
        site = np.array(raw.sim.data.site_xpos[raw.door_handle_site_id])
        latch, latch_anchor, latch_axis = self._joint(env, raw.handle_qpos_addr)
        hinge, hinge_anchor, hinge_axis = self._joint(env, raw.hinge_qpos_addr)
        point = self._rotate(site, latch_anchor, latch_axis, handle_angle - latch)
        return self._rotate(point, hinge_anchor, hinge_axis, hinge_angle - hinge)

    def _down_sign(self, env) -> float:
        # The lever turns "down" for one sign of the latch joint; pick the one that lowers the handle end.
        raw = env.raw
        site_z = raw.sim.data.site_xpos[raw.door_handle_site_id][2]
        return 1.0 if self._handle_target(env, 0.3, 0.0)[2] < site_z else -1.0

    @staticmethod
    def _wrist(env):
        raw = env.raw
        model = raw.sim.model._model
        return model, raw.sim.data._data, model.joint(raw.robots[0].robot_joints[-1])

    def _wrist_angle(self, env) -> float:
        _, data, wrist = self._wrist(env)
        return float(data.qpos[wrist.qposadr[0]])

    def _wrist_sign(self, env) -> float:
        """+1 if rolling the hand about its own axis (targeted rotation) turns the last wrist joint positively."""
        _, data, wrist = self._wrist(env)
        return float(np.sign(np.dot(data.xaxis[wrist.id], _base_frame(env)[1] @ self._rotation[:, 2])))

    def _wrist_can_turn(self, env) -> bool:
        """Whether the last wrist joint has room to follow the lever's turn from its current angle."""
        model, _, wrist = self._wrist(env)
        low, high = model.jnt_range[wrist.id]
        hand_axis = _base_frame(env)[1] @ self._rotation[:, 2]
        lever_axis = self._joint(env, env.raw.handle_qpos_addr)[2] * self._sign
        change = self._wrist_sign(env) * np.dot(hand_axis, lever_axis) * self.HANDLE_TURN
        return low + 0.15 < self._wrist_angle(env) + change < high - 0.15

    def _grasp_pose(self, env, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hand rotation (base frame) pointing at the door along the lever's axis, fingers vertical; and that axis.

        Approaching along the latch axis makes turning the lever a roll of the last wrist joint, and opening the
        door a pull straight back; a grasp from above would need a large, joint-limit-prone wrist pitch.
        """
        raw = env.raw
        base_rotation = _base_frame(env)[1]
        _, latch_anchor, latch_axis = self._joint(env, raw.handle_qpos_addr)
        door = body_position(env, raw.object_body_ids["door"])
        site = np.array(raw.sim.data.site_xpos[raw.door_handle_site_id])
        # Towards the door panel from the lever (the lever stands off the panel on the robot's side).
        approach = latch_axis * np.sign(np.dot(door - site, latch_axis))
        approach[2] = 0.0
        approach /= np.linalg.norm(approach)
        candidates = []
        for finger_axis in (np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, -1.0])):
            world = np.column_stack([finger_axis, np.cross(approach, finger_axis), approach])
            candidates.append(base_rotation.T @ world)
        # Of the two finger directions, take the one closer to the current hand orientation.
        best = min(candidates, key=lambda r: Rotation.from_matrix(r @ rotation.T).magnitude())
        return best, base_rotation.T @ approach

    def act(self, env, obs) -> np.ndarray:
        """Next action of the phase machine."""
        raw = env.raw
        controller = WaypointController(env)
        position, rotation = controller.ee_pose()
        if self._rotation is None:
            self._rotation, self._approach = self._grasp_pose(env, rotation)
            self._sign = self._down_sign(env)
        self.phase_steps += 1
        site = to_base(env, raw.sim.data.site_xpos[raw.door_handle_site_id])
        if self.phase == "above":  # in front of the lever, fingers open
            action, error, turn = controller.action(site - self._approach * 0.08, self._rotation, OPEN)
            if (error < 0.015 and turn < 0.08) or self.phase_steps > 60:
                if self._flip_steps_left == 0 and not self._flipped and not self._wrist_can_turn(env):
                    # Same grasp with the fingers swapped puts the wrist joint half a turn away from its limit. Go
                    # there in two quarter turns, away from the limit (a half-turn target could go either way).
                    self._flip_direction = -np.sign(self._wrist_angle(env)) * self._wrist_sign(env)
                    self._flip_steps_left, self._flipped = 2, True
                if self._flip_steps_left > 0:
                    quarter = Rotation.from_euler("z", self._flip_direction * np.pi / 2).as_matrix()
                    self._rotation = self._rotation @ quarter
                    self._flip_steps_left -= 1
                    self.phase_steps = 0
                elif self._flipped or self._wrist_can_turn(env):
                    self.phase, self.phase_steps = "descend", 0
        elif self.phase == "descend":  # move in until the bar is between the fingers
            action, error, _ = controller.action(site, self._rotation, OPEN)
            if error < 0.008 or self.phase_steps > 40:
                self.phase, self.phase_steps = "close", 0
        elif self.phase == "close":
            action, _, _ = controller.action(site, self._rotation, CLOSE)
            if self.phase_steps >= 10:
                self._offset = position - site
                self._grasp_angles = (self._joint(env, raw.handle_qpos_addr)[0],
                                      self._joint(env, raw.hinge_qpos_addr)[0])
                self.phase, self.phase_steps = "turn", 0
        else:
            action = self._turn_or_pull(env, controller)
        return action

    def _turn_or_pull(self, env, controller: WaypointController) -> np.ndarray:
        raw = env.raw
        latch, _, latch_axis = self._joint(env, raw.handle_qpos_addr)
        hinge, _, hinge_axis = self._joint(env, raw.hinge_qpos_addr)
        latch_goal = self._sign * self.HANDLE_TURN
        hinge_goal = 0.0 if self.phase == "turn" else self.DOOR_OPEN
        # Small steps along the joints' arcs: a far target saturates the controller and the grasp slips.
        latch_next = latch + np.clip(latch_goal - latch, -self.MAX_STEP, self.MAX_STEP)
        hinge_next = hinge + np.clip(hinge_goal - hinge, -self.HINGE_LEAD, self.HINGE_LEAD)
        target = to_base(env, self._handle_target(env, latch_next, hinge_next)) + self._offset
        # The hand turns with the lever and the door so the grasp is not twisted off the bar.
        base_rotation = _base_frame(env)[1]
        turn_world = (Rotation.from_rotvec(hinge_axis * (hinge_next - self._grasp_angles[1]))
                      * Rotation.from_rotvec(latch_axis * self.WRIST_FOLLOW * (latch_next - self._grasp_angles[0])))
        target_rotation = base_rotation.T @ turn_world.as_matrix() @ base_rotation @ self._rotation
        action, _, _ = controller.action(target, target_rotation, CLOSE)
        if self.phase == "turn" and (abs(latch) > 0.92 * self.HANDLE_TURN or self.phase_steps > 60):
            self.phase, self.phase_steps = "pull", 0
        return action


ROBOSUITE_EXPERTS["Door"] = DoorExpert


def nut_assembly_square_expert() -> PickPlaceExpert:
    """NutAssemblySquare: grasp the square nut by its handle, carry it over the square peg, lower it on, let go."""

    def handle(env):
        raw = env.raw
        nut = raw.nuts[[n.name for n in raw.nuts].index(raw.obj_to_use)]
        return np.array(raw.sim.data.site_xpos[raw.sim.model.site_name2id(nut.important_sites["handle"])])

    def nut_yaw(env):
        # The handle sticks out of the ring; close the fingers across it (perpendicular to centre -> handle).
        raw = env.raw
        arm = handle(env) - body_position(env, raw.obj_body_id[raw.obj_to_use])
        return float(np.arctan2(arm[1], arm[0]))

    def handle_over_peg(env):
        raw = env.raw
        peg = body_position(env, raw.peg1_body_id)  # the square nut belongs on peg 1
        centre_to_handle = handle(env) - body_position(env, raw.obj_body_id[raw.obj_to_use])
        # Ring centre over the peg, 2 cm above the table top: on_peg() needs it below table + 5 cm.
        return np.array([peg[0], peg[1], raw.table_offset[2] + 0.02]) + np.array([*centre_to_handle[:2], 0.0])

    return PickPlaceExpert(object_position=handle, object_yaw=nut_yaw, yaw_period=np.pi, yaw_offset=np.pi / 2,
                           goal=handle_over_peg, carry_height=0.12, place_clearance=0.0)


ROBOSUITE_EXPERTS["NutAssemblySquare"] = nut_assembly_square_expert
