"""Franka bridge logic (pure, no rclpy): gated EE deltas -> target poses, binary gripper, robot-mode handling.

- Target pose = *measured* EE pose + scaled delta: translation added in the base frame, rotation composed as an
  axis-angle rotation in the base frame on the measured orientation (q_target = q_delta * q_measured, xyzw),
  then clipped to the per-step limits, the workspace box and (optionally) a cone around a reference orientation.
- Gripper: binary with hysteresis as in SERL's FrankaEnv (`_send_gripper_command`): close when the command is
  <= -threshold while open, open when >= +threshold while closed, nothing in between; SERL then sleeps 0.6 s so
  the gripper cannot chatter -- we never block the control loop, we ignore toggles within that interval instead.
- Robot mode (franka_msgs FrankaRobotState.robot_mode): motion only in IDLE/MOVE. Unlike SERL's server, which
  clears errors before every pose command, error recovery and gripper homing run only on operator request.
"""
from __future__ import annotations

import collections
import dataclasses
import enum
import math
import time
from typing import Callable, Optional

import numpy as np

from sole_r1_config import param
from sole_r1_ros.logic.franka.robot_mode import STOP_MODES, RobotMode, parse_robot_mode
from sole_r1_ros.logic.safety.command import CommandDelta, clip_norm

FRANKA_HAND_MAX_WIDTH_M = 0.08      # Franka Hand stroke
FRANKA_HAND_MAX_FORCE_N = 70.0      # continuous grasp force of the Franka Hand


# ---- quaternions (x, y, z, w), written out so tests can check them against scipy ---------------------------
def parse_pose(position, quaternion) -> tuple[np.ndarray, np.ndarray]:
    """(position (3,), unit quaternion xyzw) from raw values; ValueError when either is malformed or not finite."""
    q = quat_normalize(quaternion)
    p = np.asarray(position, dtype=np.float64).reshape(3)
    if not np.all(np.isfinite(p)):
        raise ValueError("non-finite position")
    return p, q


def quat_normalize(q) -> np.ndarray:
    """Unit quaternion; ValueError for a non-finite or near-zero one (a broken pose message)."""
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(q)) if q.shape == (4,) else 0.0
    if q.shape != (4,) or not np.all(np.isfinite(q)) or norm < 1e-6:
        raise ValueError(f"invalid quaternion {q.tolist()}: need 4 finite values (x, y, z, w) with nonzero norm")
    return q / norm


def quat_multiply(a, b) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz])


def quat_conjugate(q) -> np.ndarray:
    """Inverse of a unit quaternion."""
    return np.array([-q[0], -q[1], -q[2], q[3]], dtype=np.float64)


def quat_from_rotvec(rotvec) -> np.ndarray:
    """Unit quaternion of an axis-angle vector (axis * angle, radians)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.array([*(0.5 * rotvec), 1.0]) / math.sqrt(1.0 + 0.25 * angle * angle)
    return np.array([*(math.sin(angle / 2) / angle * rotvec), math.cos(angle / 2)])


def quat_to_rotvec(q) -> np.ndarray:
    """Axis-angle vector of a unit quaternion, angle in [0, pi]."""
    q = np.asarray(q, dtype=np.float64)
    if q[3] < 0:            # q and -q are the same rotation; take the short way round
        q = -q
    sin_half = float(np.linalg.norm(q[:3]))
    angle = 2.0 * math.atan2(sin_half, q[3])
    if sin_half < 1e-12:
        return 2.0 * q[:3]
    return q[:3] * (angle / sin_half)


# ---- configuration ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class GripperConfig:
    """Binary gripper (Franka Hand through franka_msgs Move/Grasp actions)."""

    threshold: float = param(0.5, "|command| beyond which the gripper opens (+) or closes (-) (SERL: 0.5)",
                             low=1e-3, high=1.0)
    min_toggle_interval_s: float = param(0.6, "toggles sooner than this after the last one are ignored, s (SERL: "
                                         "0.6)", low=0.0, high=60.0)
    open_width_m: float = param(0.08, "Move goal width when opening, m", low=0.0, high=FRANKA_HAND_MAX_WIDTH_M)
    speed_m_s: float = param(0.1, "finger speed for Move and Grasp, m/s", low=1e-3, high=1.0)
    grasp_width_m: float = param(0.0, "Grasp goal width, m", low=0.0, high=FRANKA_HAND_MAX_WIDTH_M)
    grasp_force_n: float = param(40.0, "Grasp force, N (Franka Hand: at most 70)", low=1e-3,
                                 high=FRANKA_HAND_MAX_FORCE_N)
    grasp_epsilon_m: float = param(0.08, "Grasp inner/outer tolerance, m (0.08: any object width is a grasp)",
                                   low=0.0, high=FRANKA_HAND_MAX_WIDTH_M)
    initially_closed: bool = param(False, "believed gripper state at start")

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"GripperConfig.threshold must be in (0, 1], got {self.threshold}")
        if not self.min_toggle_interval_s >= 0.0:
            raise ValueError(f"GripperConfig.min_toggle_interval_s must be >= 0, got {self.min_toggle_interval_s}")
        for name in ("open_width_m", "grasp_width_m", "grasp_epsilon_m"):
            if not 0.0 <= getattr(self, name) <= FRANKA_HAND_MAX_WIDTH_M:
                raise ValueError(f"GripperConfig.{name} must be in [0, {FRANKA_HAND_MAX_WIDTH_M}] m, "
                                 f"got {getattr(self, name)}")
        if not self.speed_m_s > 0.0:
            raise ValueError(f"GripperConfig.speed_m_s must be > 0, got {self.speed_m_s}")
        if not 0.0 < self.grasp_force_n <= FRANKA_HAND_MAX_FORCE_N:
            raise ValueError(f"GripperConfig.grasp_force_n must be in (0, {FRANKA_HAND_MAX_FORCE_N}] N, "
                             f"got {self.grasp_force_n}")


@dataclasses.dataclass
class FrankaBridgeConfig:
    """Target-pose limits and gripper of franka_bridge; the node declares each field as a ROS parameter
    of the same name (the gripper's as gripper.*)."""

    translation_scale: float = param(1.0, "gain on gated translation deltas (e.g. 0.5 for first runs)", low=1e-3,
                                     high=1.0)
    rotation_scale: float = param(1.0, "gain on gated rotation deltas", low=1e-3, high=1.0)
    max_translation_m: float = param(0.03, "per-step limit on the target's offset from the measured pose, m",
                                     low=1e-4, high=0.2)
    max_rotation_rad: float = param(0.15, "per-step limit on the target's rotation from the measured one, rad",
                                    low=1e-4, high=1.0)
    workspace_min: tuple = param((0.25, -0.35, 0.02), "target box lower corner, base frame, m")
    workspace_max: tuple = param((0.75, 0.35, 0.55), "target box upper corner, base frame, m")
    reference_quaternion: tuple = param((1.0, 0.0, 0.0, 0.0), "orientation cone axis, x y z w (default: flange "
                                        "pointing straight down)")
    max_orientation_deviation_rad: float = param(math.inf, "cone half-angle around reference_quaternion, rad "
                                                 "(.inf: off)", low=1e-3)
    gripper: GripperConfig = param(GripperConfig, "binary gripper (gripper.* parameters)")

    def __post_init__(self) -> None:
        for name in ("translation_scale", "rotation_scale", "max_translation_m", "max_rotation_rad",
                     "max_orientation_deviation_rad"):
            value = float(getattr(self, name))
            if not value > 0.0:
                raise ValueError(f"FrankaBridgeConfig.{name} must be > 0, got {value}")
            setattr(self, name, value)
        if math.isinf(self.max_translation_m) or math.isinf(self.max_rotation_rad):
            raise ValueError("FrankaBridgeConfig per-step limits must be finite")
        lo, hi = np.asarray(self.workspace_min, float), np.asarray(self.workspace_max, float)
        if lo.shape != (3,) or hi.shape != (3,) or np.any(~np.isfinite(lo)) or np.any(~np.isfinite(hi)) \
                or np.any(lo >= hi):
            raise ValueError(f"FrankaBridgeConfig workspace_min {self.workspace_min} / workspace_max "
                             f"{self.workspace_max} must be 3 finite values each, min < max on every axis")
        self.workspace_min, self.workspace_max = tuple(lo.tolist()), tuple(hi.tolist())
        self.reference_quaternion = tuple(quat_normalize(self.reference_quaternion).tolist())
        if isinstance(self.gripper, dict):
            self.gripper = GripperConfig(**self.gripper)


# ---- target pose -----------------------------------------------------------------------------------------
@dataclasses.dataclass
class TargetPose:
    """Commanded EE pose in the base frame, and the limits that shaped it."""

    position: np.ndarray        # (3,) metres
    quaternion: np.ndarray      # (4,) x, y, z, w (same hemisphere as the measured orientation)
    reasons: list = dataclasses.field(default_factory=list)


def compute_target_pose(position, quaternion, command: CommandDelta, config: FrankaBridgeConfig) -> TargetPose:
    """Measured pose + scaled delta, limited per step, boxed, and kept in the orientation cone."""
    position = np.asarray(position, dtype=np.float64).reshape(-1)
    if position.shape != (3,) or not np.all(np.isfinite(position)):
        raise ValueError(f"invalid measured EE position {position.tolist()}: need 3 finite values")
    measured_q = quat_normalize(quaternion)
    if not command.is_finite():
        raise ValueError("command contains NaN or inf: the safety gate should have held it")
    reasons = []

    translation, clipped = clip_norm(command.translation * config.translation_scale, config.max_translation_m)
    reasons += ["translation_clipped"] * clipped
    target = np.clip(position + translation, config.workspace_min, config.workspace_max)
    if np.any(target != position + translation):
        reasons.append("workspace_clipped")
        # From outside the box (e.g. after hand guiding) the way back is limited per step too.
        target = position + clip_norm(target - position, config.max_translation_m)[0]

    rotvec, clipped = clip_norm(command.rotation * config.rotation_scale, config.max_rotation_rad)
    reasons += ["rotation_clipped"] * clipped
    # Deltas are in the base frame, so the delta rotation is applied after (left of) the measured one.
    target_q = quat_multiply(quat_from_rotvec(rotvec), measured_q)
    if math.isfinite(config.max_orientation_deviation_rad):
        reference = np.asarray(config.reference_quaternion)
        deviation = quat_to_rotvec(quat_multiply(quat_conjugate(reference), target_q))
        deviation, clipped = clip_norm(deviation, config.max_orientation_deviation_rad)
        if clipped:
            reasons.append("orientation_clipped")
            target_q = quat_multiply(reference, quat_from_rotvec(deviation))
            # Re-limit the step from the measured orientation to the pulled-back target.
            step = clip_norm(quat_to_rotvec(quat_multiply(target_q, quat_conjugate(measured_q))),
                             config.max_rotation_rad)[0]
            target_q = quat_multiply(quat_from_rotvec(step), measured_q)
    target_q = target_q / np.linalg.norm(target_q)
    if float(np.dot(target_q, measured_q)) < 0.0:   # keep consumers that interpolate from flipping sign
        target_q = -target_q
    return TargetPose(target, target_q, reasons)


# ---- gripper ---------------------------------------------------------------------------------------------
class GripperAction(enum.Enum):
    """What to ask the gripper for: franka_msgs Move (open) or Grasp (close)."""

    OPEN = "open"
    CLOSE = "close"


class GripperHysteresis:
    """Turns a continuous gripper command in [-1, 1] into rare OPEN/CLOSE actions (see module docstring)."""

    def __init__(self, config: GripperConfig):
        self.config = config
        self.closed = config.initially_closed
        self._last_toggle_t: Optional[float] = None
        self.suppressed = 0      # toggles ignored because they came within min_toggle_interval_s

    def update(self, command: float, t: float) -> Optional[GripperAction]:
        """The action to send now, or None (no change requested, in the dead band, or too soon)."""
        if not math.isfinite(command):
            return None
        wants_close = command <= -self.config.threshold and not self.closed
        wants_open = command >= self.config.threshold and self.closed
        if not (wants_close or wants_open):
            return None
        if self._last_toggle_t is not None and t - self._last_toggle_t < self.config.min_toggle_interval_s:
            self.suppressed += 1
            return None
        self.closed = wants_close
        self._last_toggle_t = t
        return GripperAction.CLOSE if wants_close else GripperAction.OPEN

    def sync(self, closed: bool) -> None:
        """Set the believed state after an action outside the learner (homing, operator)."""
        self.closed = bool(closed)

    def goal_fields(self, action: GripperAction) -> dict:
        """Field values for the franka_msgs action goal of `action` (Move for OPEN, Grasp for CLOSE)."""
        c = self.config
        if action is GripperAction.OPEN:
            return {"width": c.open_width_m, "speed": c.speed_m_s}
        return {"width": c.grasp_width_m, "speed": c.speed_m_s, "force": c.grasp_force_n,
                "epsilon": {"inner": c.grasp_epsilon_m, "outer": c.grasp_epsilon_m}}


# ---- the bridge ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class BridgeStep:
    """What the bridge node sends for one gated command."""

    target: Optional[TargetPose]             # pose to command; None when no robot state has arrived yet
    gripper: Optional[GripperAction]         # gripper action to send, or None
    hold: bool                               # True when target is the latched hold pose
    reasons: list = dataclasses.field(default_factory=list)


MOTION_MODES = frozenset({RobotMode.IDLE, RobotMode.MOVE})


class FrankaBridgeLogic:
    """State of one Franka bridge: latest measured pose and mode, hold latch, gripper hysteresis, counters."""

    def __init__(self, config: Optional[FrankaBridgeConfig] = None, clock: Callable[[], float] = time.monotonic):
        self.config = config if config is not None else FrankaBridgeConfig()
        self._clock = clock
        self.gripper = GripperHysteresis(self.config.gripper)
        self.mode: Optional[RobotMode] = None
        self.position: Optional[np.ndarray] = None
        self.quaternion: Optional[np.ndarray] = None
        self._hold_pose: Optional[TargetPose] = None
        self.counters: collections.Counter = collections.Counter()

    def on_robot_state(self, mode, position, quaternion) -> Optional[str]:
        """Take the latest FrankaRobotState (robot_mode, o_t_ee); returns an e-stop reason when a robot stop began.

        Bad values are counted and skipped. The node latches the e-stop with the returned reason (REFLEX and
        USER_STOPPED), so the learner's commands stay held until an operator resets it.
        """
        previous = self.mode
        try:
            self.mode = parse_robot_mode(mode)
        except ValueError:
            self.counters["bad_robot_mode"] += 1
            self.mode = RobotMode.OTHER
        estop_reason = None
        if self.mode in STOP_MODES and previous != self.mode:
            self.counters[f"robot_{self.mode.name.lower()}"] += 1
            estop_reason = f"robot reported {self.mode.name}"
        try:
            p, q = parse_pose(position, quaternion)
        except ValueError:
            self.counters["bad_pose"] += 1
            return estop_reason
        self.position, self.quaternion = p, q
        return estop_reason

    def step(self, command: CommandDelta, hold: bool, t: Optional[float] = None) -> BridgeStep:
        """Target pose and gripper action for one gated command (hold=True: keep the latched hold pose)."""
        t = self._clock() if t is None else t
        if self.position is None:
            self.counters["no_robot_state"] += 1
            return BridgeStep(None, None, True, ["no_robot_state"])
        reasons = []
        if hold:
            reasons.append("hold")
        if self.mode is not None and self.mode not in MOTION_MODES:
            reasons.append(f"robot_mode_{self.mode.name}")
        if not command.is_finite():
            reasons.append("nonfinite_command")
        if reasons:
            for reason in reasons:
                self.counters[reason] += 1
            if self._hold_pose is None:
                # Latch where the robot is now, so a long hold does not creep with each new measurement.
                self._hold_pose = TargetPose(self.position.copy(), self.quaternion.copy(), ["hold"])
            return BridgeStep(self._hold_pose, None, True, reasons)
        self._hold_pose = None
        target = compute_target_pose(self.position, self.quaternion, command, self.config)
        for reason in target.reasons:
            self.counters[reason] += 1
        return BridgeStep(target, self.gripper.update(command.gripper, t), False, list(target.reasons))

    def request_error_recovery(self) -> tuple[bool, str]:
        """Operator asked for franka_msgs ErrorRecovery: (ok to send the goal, message)."""
        if self.mode is RobotMode.USER_STOPPED:
            return False, "robot is USER_STOPPED: release the user stop button first, then request recovery again"
        if self.mode is RobotMode.AUTOMATIC_ERROR_RECOVERY:
            return False, "error recovery is already running"
        if self.mode in (RobotMode.MOVE, RobotMode.GUIDING):
            return False, f"robot is in {self.mode.name}: there is no error to recover from"
        self.counters["error_recovery_requested"] += 1
        # The software e-stop stays latched: the operator resets it separately once the robot is IDLE/MOVE.
        return True, "sending ErrorRecovery; reset the e-stop afterwards to resume commands"

    def request_homing(self) -> tuple[bool, str]:
        """Operator asked for gripper Homing: (ok to send the goal, message). Homing ends with the gripper open."""
        if self.mode in STOP_MODES or self.mode is RobotMode.AUTOMATIC_ERROR_RECOVERY:
            return False, f"robot is in {self.mode.name}: recover the robot before homing the gripper"
        self.counters["homing_requested"] += 1
        self.gripper.sync(closed=False)
        return True, "sending gripper Homing"

    def status(self) -> dict:
        """Snapshot for /diagnostics."""
        return {
            "robot_mode": self.mode.name if self.mode is not None else "UNKNOWN",
            "has_pose": self.position is not None,
            "holding": self._hold_pose is not None,
            "gripper_closed": self.gripper.closed,
            "gripper_toggles_suppressed": self.gripper.suppressed,
            "counters": dict(self.counters),
        }
