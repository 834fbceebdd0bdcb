"""FrankaTwin: a MuJoCo Panda + Franka Hand that behaves like franka_ros2 does towards the bridge (no rclpy).

- The arm tracks a target EE pose with a Cartesian impedance controller at 1 kHz (sole_r1_sim/twin/controller.py).
- Robot modes as libfranka reports them: MOVE while the controller runs; `press_user_stop()` -> USER_STOPPED and
  `trigger_reflex()` -> REFLEX engage the brakes (the arm freezes where it is, targets are ignored and counted);
  after `release_user_stop()` the robot is IDLE but its controller stays aborted until `error_recovery()`, as on
  the real arm. Error recovery fails while the user stop is pressed.
- Gripper goals mirror franka_msgs Move / Grasp / Homing: start one, step the physics, poll `gripper_goal_status()`.
- Two cameras (`shoulder`, `wrist`) rendered off-screen with shadows and reflections off (cheap on CPU).
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Optional

# sole_r1_sim first: its package __init__ picks the headless GL backend before mujoco is imported.
from sole_r1_sim.twin.controller import CartesianImpedanceController, ImpedanceConfig
from sole_r1_sim.twin.scene import ARM_JOINTS, FINGER_JOINTS, HIDDEN_GROUP, SceneConfig, build_scene_xml

import mujoco  # noqa: I001
import numpy as np

from sole_r1_ros.logic.franka.bridge import (FRANKA_HAND_MAX_FORCE_N, FRANKA_HAND_MAX_WIDTH_M, parse_pose,
                                             quat_normalize)
from sole_r1_ros.logic.franka.robot_mode import RobotMode

READY_POSE = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])   # Franka "ready" joints
CAMERAS = ("shoulder", "wrist")


@dataclasses.dataclass
class TwinConfig:
    """The twin's scene, controller gains and start pose."""

    scene: SceneConfig = dataclasses.field(default_factory=SceneConfig)
    impedance: ImpedanceConfig = dataclasses.field(default_factory=ImpedanceConfig)
    start_position: tuple = (0.45, 0.0, 0.25)       # EE start position, base frame, metres (inside the safety box)
    start_quaternion: tuple = (1.0, 0.0, 0.0, 0.0)  # x, y, z, w: pointing down
    gripper_timeout_s: float = 5.0                  # a gripper goal that has not settled by then fails

    def __post_init__(self) -> None:
        if isinstance(self.scene, dict):
            self.scene = SceneConfig(**self.scene)
        if isinstance(self.impedance, dict):
            self.impedance = ImpedanceConfig(**self.impedance)
        start = np.asarray(self.start_position, dtype=np.float64)
        if start.shape != (3,) or not np.all(np.isfinite(start)):
            raise ValueError(f"TwinConfig.start_position must be 3 finite values, got {self.start_position}")
        self.start_quaternion = tuple(quat_normalize(self.start_quaternion).tolist())
        if not self.gripper_timeout_s > 0:
            raise ValueError(f"TwinConfig.gripper_timeout_s must be > 0, got {self.gripper_timeout_s}")


@dataclasses.dataclass
class GripperGoal:
    """A running gripper goal (franka_msgs Move, Grasp or Homing)."""

    kind: str                   # "move" | "grasp" | "homing"
    width: float                # goal width, metres
    speed: float                # m/s (finger opening rate)
    start_time: float           # sim time when accepted
    epsilon_inner: float = 0.0  # Grasp tolerances, metres
    epsilon_outer: float = 0.0
    done: bool = False
    success: bool = False
    error: str = ""


class FrankaTwin:
    """The simulated robot: step it, command it, read it, render it."""

    def __init__(self, config: Optional[TwinConfig] = None):
        self.config = config = config or TwinConfig()
        self.model = mujoco.MjModel.from_xml_string(build_scene_xml(config.scene))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._arm_qpos = np.array([m.joint(j).qposadr[0] for j in ARM_JOINTS])
        self._arm_dofs = np.array([m.joint(j).dofadr[0] for j in ARM_JOINTS])
        self._finger_qpos = np.array([m.joint(j).qposadr[0] for j in FINGER_JOINTS])
        self._finger_dofs = np.array([m.joint(j).dofadr[0] for j in FINGER_JOINTS])
        self._finger_act = np.array([m.actuator(f"gripper_finger_joint{i}").id for i in (1, 2)])
        self._arm_act = np.array([m.actuator(f"torq_j{i}").id for i in range(1, 8)])
        self._ee_site = m.site("ee").id
        self._cube_qpos = m.joint("cube_joint").qposadr[0]
        self._default_finger_force = m.actuator_forcerange[self._finger_act].copy()
        self.controller = CartesianImpedanceController(m, "ee", ARM_JOINTS, config.impedance)
        self.counters: collections.Counter = collections.Counter()
        self._renderer: Optional[mujoco.Renderer] = None
        self.reset()

    # ---- lifecycle ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Arm at the start pose (solved by IK from the ready posture), gripper open, cube back, mode MOVE."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._arm_qpos] = READY_POSE
        self._solve_ik(np.asarray(self.config.start_position), np.asarray(self.config.start_quaternion))
        self.controller.set_posture(self.data.qpos[self._arm_qpos])
        self.data.qpos[self._finger_qpos] = [FRANKA_HAND_MAX_WIDTH_M / 2, -FRANKA_HAND_MAX_WIDTH_M / 2]
        self._finger_target = FRANKA_HAND_MAX_WIDTH_M
        self._finger_goal_width = FRANKA_HAND_MAX_WIDTH_M
        self._finger_speed = 0.1
        self.model.actuator_forcerange[self._finger_act] = self._default_finger_force
        self.data.ctrl[self._finger_act] = [FRANKA_HAND_MAX_WIDTH_M / 2, -FRANKA_HAND_MAX_WIDTH_M / 2]
        mujoco.mj_forward(self.model, self.data)
        self.target_position, self.target_quaternion = self.ee_pose()
        self.mode = RobotMode.MOVE
        self.controller_aborted = False
        self._brake_qpos: Optional[np.ndarray] = None
        self.gripper_goal: Optional[GripperGoal] = None

    def _solve_ik(self, position: np.ndarray, quaternion: np.ndarray, iterations: int = 200) -> None:
        """Damped least-squares IK on the arm joints (kinematics only), from the current joint positions."""
        from sole_r1_ros.logic.franka.bridge import quat_conjugate, quat_multiply, quat_to_rotvec

        m, d = self.model, self.data
        jacp, jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        for _ in range(iterations):
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            current_pos, current_q = self.ee_pose()
            err = np.concatenate([position - current_pos,
                                  quat_to_rotvec(quat_multiply(quaternion, quat_conjugate(current_q)))])
            if np.linalg.norm(err) < 1e-6:
                break
            mujoco.mj_jacSite(m, d, jacp, jacr, self._ee_site)
            jac = np.vstack([jacp[:, self._arm_dofs], jacr[:, self._arm_dofs]])
            step = jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(6), err)
            q = d.qpos[self._arm_qpos] + step
            d.qpos[self._arm_qpos] = np.clip(q, m.jnt_range[[m.joint(j).id for j in ARM_JOINTS], 0],
                                             m.jnt_range[[m.joint(j).id for j in ARM_JOINTS], 1])
        else:
            raise ValueError(f"start pose {position.tolist()} / {quaternion.tolist()} is out of the arm's reach")

    def close(self) -> None:
        """Free the off-screen renderer."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ---- commands -------------------------------------------------------------------------------------------
    def set_target_pose(self, position, quaternion) -> bool:
        """New target for the impedance controller; ignored (and counted) when stopped, aborted or malformed."""
        if self.mode in (RobotMode.USER_STOPPED, RobotMode.REFLEX) or self.controller_aborted:
            self.counters["target_ignored_stopped"] += 1
            return False
        try:
            p, q = parse_pose(position, quaternion)
        except ValueError:
            self.counters["target_ignored_invalid"] += 1
            return False
        self.target_position, self.target_quaternion = p, q
        self.counters["targets"] += 1
        return True

    def start_gripper_goal(self, kind: str, width: float, speed: float = 0.1, force: float = 20.0,
                           epsilon_inner: float = 0.005, epsilon_outer: float = 0.005) -> GripperGoal:
        """Begin a Move / Grasp / Homing goal; a running goal is preempted (it ends unsuccessful)."""
        if self.gripper_goal is not None and not self.gripper_goal.done:
            self.gripper_goal.done, self.gripper_goal.error = True, "preempted by a newer gripper goal"
        if kind == "homing":
            width, speed = FRANKA_HAND_MAX_WIDTH_M, 0.1
        goal = GripperGoal(kind, float(width), float(speed), float(self.data.time), epsilon_inner, epsilon_outer)
        if not (0.0 <= goal.width <= FRANKA_HAND_MAX_WIDTH_M and 0.0 < goal.speed <= 0.2):
            goal.done, goal.error = True, f"width {goal.width} m / speed {goal.speed} m/s out of range"
        elif self.mode in (RobotMode.USER_STOPPED, RobotMode.REFLEX):
            goal.done, goal.error = True, f"robot is {self.mode.name}"
        else:
            # Grasp force is the total of both fingers; Move and Homing use the hand's default force.
            per_finger = min(float(force), FRANKA_HAND_MAX_FORCE_N) / 2 if kind == "grasp" else 20.0
            self.model.actuator_forcerange[self._finger_act] = [[-per_finger, per_finger]] * 2
            self._finger_goal_width, self._finger_speed = goal.width, goal.speed
            self._settled_since: Optional[float] = None
        self.gripper_goal = goal
        return goal

    # ---- robot modes (what libfranka reports) --------------------------------------------------------------
    def press_user_stop(self) -> None:
        """The user stop button is pressed: brakes on, mode USER_STOPPED."""
        self._brake(RobotMode.USER_STOPPED)

    def trigger_reflex(self) -> None:
        """A reflex (collision / limit violation): brakes on, mode REFLEX."""
        self._brake(RobotMode.REFLEX)

    def release_user_stop(self) -> bool:
        """The button is released: IDLE, but the controller stays aborted until error recovery."""
        if self.mode is not RobotMode.USER_STOPPED:
            return False
        self.mode = RobotMode.IDLE
        return True

    def error_recovery(self) -> tuple[bool, str]:
        """franka_msgs ErrorRecovery: clears a reflex / aborted controller; fails while the user stop is pressed."""
        if self.mode is RobotMode.USER_STOPPED:
            return False, "user stop is still pressed: release it first"
        self.mode = RobotMode.MOVE
        self.controller_aborted = False
        self._brake_qpos = None
        self.data.qvel[self._arm_dofs] = 0.0
        mujoco.mj_forward(self.model, self.data)
        # Resume from where the arm stands now, not from a target set before the stop.
        self.target_position, self.target_quaternion = self.ee_pose()
        self.counters["error_recoveries"] += 1
        return True, "recovered"

    def _brake(self, mode: RobotMode) -> None:
        self.counters[f"stop_{mode.name.lower()}"] += 1
        self.mode = mode
        self.controller_aborted = True
        self._brake_qpos = self.data.qpos[self._arm_qpos].copy()
        if self.gripper_goal is not None and not self.gripper_goal.done:
            self.gripper_goal.done, self.gripper_goal.error = True, f"aborted: robot {mode.name}"

    # ---- simulation -----------------------------------------------------------------------------------------
    def step(self, duration_s: float) -> None:
        """Advance the physics by `duration_s` (rounded to whole 1 ms steps), controller on every step."""
        steps = max(1, int(round(duration_s / self.model.opt.timestep)))
        m, d = self.model, self.data
        for _ in range(steps):
            if self._brake_qpos is not None:
                # Brakes: the arm does not move. Gravity is held by the brakes, so no torque is needed.
                d.qpos[self._arm_qpos] = self._brake_qpos
                d.qvel[self._arm_dofs] = 0.0
                d.ctrl[self._arm_act] = 0.0
            elif self.controller_aborted:
                # IDLE after a stop: no controller, gravity compensation only (libfranka keeps the arm floating).
                d.ctrl[self._arm_act] = d.qfrc_bias[self._arm_dofs] - 5.0 * d.qvel[self._arm_dofs]
            else:
                d.ctrl[self._arm_act] = self.controller.torques(d, self.target_position, self.target_quaternion)
            self._drive_fingers(m.opt.timestep)
            mujoco.mj_step(m, d)
            if self._brake_qpos is not None:
                d.qpos[self._arm_qpos] = self._brake_qpos
                d.qvel[self._arm_dofs] = 0.0
        self._update_gripper_goal()

    def _drive_fingers(self, dt: float) -> None:
        # Ramp the finger set point at the goal speed (both fingers together open at `speed`).
        delta = self._finger_goal_width - self._finger_target
        self._finger_target += float(np.clip(delta, -self._finger_speed * dt, self._finger_speed * dt))
        self.data.ctrl[self._finger_act] = [self._finger_target / 2, -self._finger_target / 2]

    def _update_gripper_goal(self) -> None:
        goal = self.gripper_goal
        if goal is None or goal.done:
            return
        t = float(self.data.time)
        moving = np.max(np.abs(self.data.qvel[self._finger_dofs])) > 2e-3
        ramped = abs(self._finger_target - self._finger_goal_width) < 1e-9
        if ramped and not moving:
            self._settled_since = t if self._settled_since is None else self._settled_since
        else:
            self._settled_since = None
        timed_out = t - goal.start_time > self.config.gripper_timeout_s
        if not timed_out and (self._settled_since is None or t - self._settled_since < 0.05):
            return
        width = self.gripper_width()
        goal.done = True
        if goal.kind == "grasp":
            goal.success = goal.width - goal.epsilon_inner <= width <= goal.width + goal.epsilon_outer
            goal.error = "" if goal.success else f"grasp width {width:.4f} m outside the goal tolerance"
        else:
            goal.success = abs(width - goal.width) < 0.005
            goal.error = "" if goal.success else f"fingers stopped at {width:.4f} m, goal {goal.width:.4f} m"

    # ---- readings -------------------------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated time, seconds."""
        return float(self.data.time)

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Measured EE pose (o_t_ee): position (3,) m and quaternion (x, y, z, w), base frame."""
        quat_wxyz = np.zeros(4)
        mujoco.mju_mat2Quat(quat_wxyz, self.data.site_xmat[self._ee_site])
        return self.data.site_xpos[self._ee_site].copy(), np.array([*quat_wxyz[1:], quat_wxyz[0]])

    def arm_joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arm joint positions (rad), velocities (rad/s), commanded torques (N m)."""
        d = self.data
        return d.qpos[self._arm_qpos].copy(), d.qvel[self._arm_dofs].copy(), d.ctrl[self._arm_act].copy()

    def finger_positions(self) -> np.ndarray:
        """Each finger's opening (m, 0..0.04), as franka_gripper's joint_states report them."""
        q = self.data.qpos[self._finger_qpos]
        return np.array([q[0], -q[1]])

    def gripper_width(self) -> float:
        """Distance between the fingers, metres."""
        return float(np.sum(self.finger_positions()))

    def cube_position(self) -> np.ndarray:
        """PRIVILEGED: the cube's centre, base frame (for tests and logs, never for the learner)."""
        return self.data.qpos[self._cube_qpos:self._cube_qpos + 3].copy()

    def camera_optical_pose(self, camera: str) -> tuple[np.ndarray, np.ndarray]:
        """Position and quaternion (x, y, z, w) of a camera's optical frame (REP-103: z forward, x right, y down):
        the shoulder camera in the base frame, the wrist camera in the EE (TCP) frame it is fixed to."""
        if camera not in CAMERAS:
            raise ValueError(f"unknown twin camera {camera!r}; cameras: {list(CAMERAS)}")
        index = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        # MuJoCo cameras look along -z with y up: the optical frame is that frame turned half a turn about x.
        rotation = self.data.cam_xmat[index].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
        position = self.data.cam_xpos[index].copy()
        if camera == "wrist":
            ee_rotation = self.data.site_xmat[self._ee_site].reshape(3, 3)
            position = ee_rotation.T @ (position - self.data.site_xpos[self._ee_site])
            rotation = ee_rotation.T @ rotation
        quat_wxyz = np.zeros(4)
        mujoco.mju_mat2Quat(quat_wxyz, rotation.flatten())
        return position, np.array([*quat_wxyz[1:], quat_wxyz[0]])

    def render(self, camera: str) -> np.ndarray:
        """RGB uint8 image (H, W, 3), top-left origin, of camera 'shoulder' or 'wrist'."""
        if camera not in CAMERAS:
            raise ValueError(f"unknown twin camera {camera!r}; cameras: {list(CAMERAS)}")
        if self._renderer is None:
            scene = self.config.scene
            self._renderer = mujoco.Renderer(self.model, scene.image_height, scene.image_width)
            flags = self._renderer.scene.flags
            flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
            self._view_option = mujoco.MjvOption()
            self._view_option.geomgroup[HIDDEN_GROUP] = 0
            self._view_option.sitegroup[:] = 0       # robosuite's marker sites are not part of the robot
        self._renderer.update_scene(self.data, camera=camera, scene_option=self._view_option)
        return self._renderer.render().copy()
