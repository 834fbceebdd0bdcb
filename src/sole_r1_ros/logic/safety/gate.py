"""SafetyGate: the only path from the learner's commands to a robot bridge (pure logic, no rclpy).

Every learner command goes through `filter()`; a node also calls `tick()` periodically so that a hold goes out
even when the learner has stopped talking. The gate holds the robot when the e-stop is latched, the robot reports
a stop or a mode it cannot move in, or any watched input (cameras, proprio, reward, learner commands) is stale; it
rejects NaN/inf commands, limits the per-step motion, keeps the commanded target inside the workspace box, drops
commands that come faster than the rate limit, and counts every intervention by kind for /diagnostics.

Time is injected (every method takes `t`, seconds on any monotonic clock; by default the injected `clock`,
`time.monotonic` unless given), so tests and simulators in lockstep control it fully. The node keeps the default:
ROS time can stand still or jump back (use_sim_time), which would silence the watchdogs.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import math
import time
from typing import Callable, Optional, Sequence

import numpy as np

from sole_r1_config import from_mapping, param
from sole_r1_ros.logic.franka.robot_mode import RobotMode, STOP_MODES, parse_robot_mode
from sole_r1_ros.logic.safety.command import CommandDelta, clip_norm

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class GateDecision:
    """What to send to the robot bridge: a command, a hold, or nothing (a dropped command)."""

    command_out: Optional[CommandDelta]   # the command to publish (zero deltas when hold), None when dropped
    hold: bool                            # publish with hold=true: the bridge keeps its pose, ignores deltas
    reasons: list = dataclasses.field(default_factory=list)   # interventions applied, e.g. ["stale_camera"]

    @property
    def dropped(self) -> bool:
        """True when nothing should be published (the command came faster than the rate limit)."""
        return self.command_out is None


@dataclasses.dataclass
class SafetyConfig:
    """Safety gate limits and watchdogs; safety_gate declares each field as a ROS parameter of the same name."""

    camera_timeout_s: float = param(0.15, "hold when any camera's newest frame is older, s (.inf: off; 30 Hz: 4 "
                                    "missed frames)", low=1e-3)
    proprio_timeout_s: float = param(0.25, "hold when the newest EE pose is older, s (.inf: off)", low=1e-3)
    reward_timeout_s: float = param(5.0, "hold when the newest reward estimate is older, s (~1 Hz expected)",
                                    low=1e-3)
    command_timeout_s: float = param(0.5, "hold when the learner has sent nothing for this long, s", low=1e-3)
    cameras: tuple = param(("shoulder", "wrist"), "camera names watched separately by the camera watchdog")
    max_translation_m: float = param(0.03, "per-step translation limit (Euclidean norm), m", low=1e-4, high=0.2)
    max_rotation_rad: float = param(0.15, "per-step rotation limit (axis-angle norm), rad", low=1e-4, high=1.0)
    limit_mode: str = param("clip", "clip: scale an oversize step down to the limit; reject: hold instead",
                            choices=("clip", "reject"))
    workspace_min: tuple = param((0.25, -0.35, 0.02), "lower corner of the box the EE target must stay in, base "
                                 "frame, m")
    workspace_max: tuple = param((0.75, 0.35, 0.55), "upper corner of that box, base frame, m")
    max_command_rate_hz: float = param(15.0, "commands closer together than 1/rate are dropped, Hz", low=0.1,
                                       high=1000.0)
    motion_modes: tuple = param(("IDLE", "MOVE"), "robot modes in which commands may pass (when a mode is reported)")

    def __post_init__(self) -> None:
        for name in ("camera_timeout_s", "proprio_timeout_s", "reward_timeout_s", "command_timeout_s",
                     "max_translation_m", "max_rotation_rad", "max_command_rate_hz"):
            value = float(getattr(self, name))
            if not value > 0 or math.isnan(value):
                raise ValueError(f"SafetyConfig.{name} must be > 0 (use .inf to disable a watchdog), got {value}")
            setattr(self, name, value)
        for name in ("max_translation_m", "max_rotation_rad", "max_command_rate_hz"):
            if math.isinf(getattr(self, name)):
                raise ValueError(f"SafetyConfig.{name} must be finite: a safety limit cannot be disabled")
        if self.limit_mode not in ("clip", "reject"):
            raise ValueError(f"SafetyConfig.limit_mode must be 'clip' or 'reject', got {self.limit_mode!r}")
        self.cameras = tuple(str(c) for c in self.cameras)
        if not self.cameras:
            raise ValueError("SafetyConfig.cameras must name at least one camera to watch")
        lo = np.asarray(self.workspace_min, dtype=np.float64)
        hi = np.asarray(self.workspace_max, dtype=np.float64)
        if lo.shape != (3,) or hi.shape != (3,) or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("SafetyConfig.workspace_min/workspace_max must be 3 finite numbers each (x, y, z m)")
        if np.any(lo >= hi):
            raise ValueError(f"SafetyConfig.workspace_min {lo.tolist()} must be below workspace_max "
                             f"{hi.tolist()} on every axis")
        self.workspace_min, self.workspace_max = tuple(lo.tolist()), tuple(hi.tolist())
        self.motion_modes = tuple(parse_robot_mode(m).name for m in self.motion_modes)

    @classmethod
    def from_dict(cls, values: dict) -> "SafetyConfig":
        """Build from a parameter dict (e.g. YAML); unknown keys are an error that lists the valid ones."""
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items()}
        return from_mapping(cls, values, "safety parameter")


class SafetyGate:
    """Latched e-stop, watchdogs, command sanitising and rate limiting between learner and robot bridge."""

    def __init__(self, config: Optional[SafetyConfig] = None, clock: Callable[[], float] = time.monotonic):
        self.config = config = config if config is not None else SafetyConfig()
        self._clock = clock
        self._last_seen = {"proprio": None, "reward": None, "command": None}
        self._camera_seen = {name: None for name in config.cameras}
        self._ee_position: Optional[np.ndarray] = None
        self._robot_mode: Optional[RobotMode] = None
        self._estop_reason: Optional[str] = None
        self._last_forwarded_t: Optional[float] = None
        self._episode_id = 0
        self._lo = np.asarray(config.workspace_min)
        self._hi = np.asarray(config.workspace_max)
        self.counters: collections.Counter = collections.Counter()

    # ---- inputs -------------------------------------------------------------------------------------------
    def _now(self, t: Optional[float]) -> float:
        return self._clock() if t is None else float(t)

    def on_camera(self, t: Optional[float] = None, camera: Optional[str] = None) -> None:
        """A camera frame arrived (camera=None: all watched cameras at once)."""
        t = self._now(t)
        if camera is None:
            for name in self._camera_seen:
                self._camera_seen[name] = t
        elif camera in self._camera_seen:
            self._camera_seen[camera] = t
        else:
            raise ValueError(f"unknown camera {camera!r}: the gate watches {list(self._camera_seen)} "
                             "(set the safety parameter 'cameras')")

    def on_proprio(self, t: Optional[float], ee_position: Sequence[float]) -> None:
        """A measured end-effector position (base frame, metres) arrived; non-finite ones are counted, ignored."""
        position = np.asarray(ee_position, dtype=np.float64).reshape(-1)
        if position.shape != (3,) or not np.all(np.isfinite(position)):
            self.counters["bad_proprio"] += 1
            return
        self._ee_position = position
        self._last_seen["proprio"] = self._now(t)

    def on_reward(self, t: Optional[float] = None) -> None:
        """A reward estimate arrived (valid or not: the watchdog checks that the reward node is alive)."""
        self._last_seen["reward"] = self._now(t)

    def on_robot_mode(self, mode, t: Optional[float] = None) -> None:
        """The robot reported its mode (franka_msgs robot_mode value or name); REFLEX / USER_STOPPED latch e-stop."""
        try:
            mode = parse_robot_mode(mode)
        except ValueError:
            self.counters["bad_robot_mode"] += 1
            mode = RobotMode.OTHER   # unknown means "not known to be safe to move"
        if mode in STOP_MODES and self._robot_mode != mode:
            self.trigger_estop(f"robot reported {mode.name}")
        self._robot_mode = mode

    # ---- e-stop ------------------------------------------------------------------------------------------
    @property
    def estopped(self) -> bool:
        """True while the e-stop is latched."""
        return self._estop_reason is not None

    def robot_stop_active(self) -> bool:
        """True while the robot itself reports a stop (REFLEX or USER_STOPPED)."""
        return self._robot_mode in STOP_MODES

    def trigger_estop(self, reason: str = "operator request") -> None:
        """Latch the e-stop: every output is a hold until reset_estop() succeeds."""
        if self._estop_reason is None:
            LOG.warning("e-stop latched: %s", reason)
            self._estop_reason = str(reason) or "unspecified"
        self.counters["estop_triggered"] += 1

    def reset_estop(self) -> tuple[bool, str]:
        """Release the e-stop latch; refused while the robot still reports a stop. Returns (ok, message)."""
        if self.robot_stop_active():
            return False, (f"robot still reports {self._robot_mode.name}: release the robot's stop button "
                           "and run error recovery first, then reset the e-stop")
        if self._estop_reason is None:
            return True, "e-stop was not latched"
        reason, self._estop_reason = self._estop_reason, None
        self.counters["estop_reset"] += 1
        LOG.warning("e-stop reset (was: %s)", reason)
        return True, f"e-stop released (was latched because: {reason})"

    # ---- checks ------------------------------------------------------------------------------------------
    def _hold_reasons(self, t: float) -> list:
        """Reasons to hold regardless of the command: e-stop, robot mode, stale inputs."""
        reasons = []
        if self._estop_reason is not None:
            reasons.append("estop")
        if self._robot_mode is not None and self._robot_mode.name not in self.config.motion_modes:
            reasons.append("robot_mode")
        timeouts = {"proprio": self.config.proprio_timeout_s, "reward": self.config.reward_timeout_s,
                    "command": self.config.command_timeout_s}
        for name, seen in self._last_seen.items():
            if seen is None or t - seen > timeouts[name]:
                reasons.append(f"stale_{name}")
        if any(seen is None or t - seen > self.config.camera_timeout_s for seen in self._camera_seen.values()):
            reasons.append("stale_camera")
        return reasons

    def _hold(self, reasons: list) -> GateDecision:
        for reason in reasons:
            self.counters[reason] += 1
        return GateDecision(CommandDelta.zero(self._episode_id), hold=True, reasons=reasons)

    def filter(self, command: CommandDelta, t: Optional[float] = None) -> GateDecision:
        """Decide what to forward for one learner command: the (possibly clipped) command, a hold, or a drop."""
        t = self._now(t)
        self._last_seen["command"] = t
        self._episode_id = command.episode_id
        reasons = self._hold_reasons(t)
        if not command.is_finite():
            reasons.append("nonfinite_command")
        if reasons:
            return self._hold(reasons)
        min_interval = 1.0 / self.config.max_command_rate_hz
        if self._last_forwarded_t is not None and t - self._last_forwarded_t < min_interval:
            self.counters["rate_limited"] += 1
            return GateDecision(None, hold=False, reasons=["rate_limited"])

        translation, t_clipped = clip_norm(command.translation, self.config.max_translation_m)
        rotation, r_clipped = clip_norm(command.rotation, self.config.max_rotation_rad)
        if self.config.limit_mode == "reject" and (t_clipped or r_clipped):
            return self._hold(["translation_limit"] * t_clipped + ["rotation_limit"] * r_clipped)
        reasons = ["translation_clipped"] * t_clipped + ["rotation_clipped"] * r_clipped

        # The box bounds the *target* (measured EE + delta), so a command that would leave it stops at the wall.
        target = self._ee_position + translation
        boxed = np.clip(target, self._lo, self._hi)
        if np.any(boxed != target):
            reasons.append("workspace_clipped")
            # If the EE is already outside (e.g. after hand guiding) the way back is still limited per step.
            translation, _ = clip_norm(boxed - self._ee_position, self.config.max_translation_m)
        gripper = float(np.clip(command.gripper, -1.0, 1.0))
        if gripper != command.gripper:
            reasons.append("gripper_clipped")
        for reason in reasons:
            self.counters[reason] += 1
        self.counters["forwarded"] += 1
        self._last_forwarded_t = t
        return GateDecision(CommandDelta(translation, rotation, gripper, command.episode_id), False, reasons)

    def tick(self, t: Optional[float] = None) -> Optional[GateDecision]:
        """Periodic check: a hold decision while the gate must hold (e-stop, robot stop, stale input), else None."""
        reasons = self._hold_reasons(self._now(t))
        return self._hold(reasons) if reasons else None

    def status(self, t: Optional[float] = None) -> dict:
        """Snapshot for /diagnostics: e-stop, robot mode, input ages (s, None = never), counters."""
        t = self._now(t)
        ages = {name: (None if seen is None else t - seen) for name, seen in self._last_seen.items()}
        ages.update({f"camera_{name}": (None if seen is None else t - seen)
                     for name, seen in self._camera_seen.items()})
        hold_reasons = self._hold_reasons(t)
        return {
            "ok": not hold_reasons,
            "hold_reasons": hold_reasons,
            "estopped": self.estopped,
            "estop_reason": self._estop_reason or "",
            "robot_mode": self._robot_mode.name if self._robot_mode is not None else "UNKNOWN",
            "robot_stop_active": self.robot_stop_active(),
            "input_ages_s": ages,
            "counters": dict(self.counters),
        }
