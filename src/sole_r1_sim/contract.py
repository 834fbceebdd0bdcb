"""The one environment contract every simulation suite (and the real-robot twin) implements.

Observation: shoulder RGB + wrist RGB (uint8 HxWx3, top-left origin) + proprioception.
Action: 7-D in [-1, 1] = EE translation delta (3), EE rotation delta as axis-angle (3), gripper (-1 close .. +1 open);
each suite scales it to physical units with its `ActionScale`.
There is no environment reward: rewards come from a Rewarder (sole_r1_model). `true_success()` and
`privileged_progress()` read simulator state; they are for logging, the oracle rewarder and data-synthesis labels,
never for the learner.
"""
from __future__ import annotations

import abc
import dataclasses
import logging
from typing import Any, Optional

import numpy as np

ACTION_DIM = 7
LOG = logging.getLogger("sole_r1.sim")


@dataclasses.dataclass
class Proprio:
    """Proprioception in the robot base frame."""

    ee_position: np.ndarray          # (3,) metres
    ee_quaternion: np.ndarray        # (4,) x, y, z, w
    gripper_opening: float           # 0 closed .. 1 fully open
    joint_positions: np.ndarray      # (n,) radians (arm joints, then gripper joints)
    joint_names: tuple = ()

    def as_vector(self) -> np.ndarray:
        """Flat float32 vector for the learner: EE position, quaternion, gripper opening (8 values)."""
        return np.concatenate([self.ee_position, self.ee_quaternion, [self.gripper_opening]]).astype(np.float32)


@dataclasses.dataclass
class Observation:
    """What every env returns each step."""

    shoulder: np.ndarray   # HxWx3 uint8 RGB, top-left origin
    wrist: np.ndarray      # HxWx3 uint8 RGB, top-left origin
    proprio: Proprio


@dataclasses.dataclass(frozen=True)
class ActionScale:
    """Physical size of a unit action per control step."""

    translation: float = 0.05        # metres per step at |a| = 1
    rotation: float = 0.2            # radians per step at |a| = 1
    rotation_axes: tuple = (True, True, True)   # which rotation components the suite can execute

    def to_physical(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Split a normalised 7-D action into (translation m, rotation rad axis-angle, gripper [-1, 1])."""
        action = validate_action(action)
        rotation = action[3:6] * self.rotation * np.asarray(self.rotation_axes, dtype=np.float64)
        return action[:3] * self.translation, rotation, float(action[6])


def validate_action(action: Any) -> np.ndarray:
    """Return `action` as a float64 (7,) array clipped to [-1, 1]; raise ValueError on wrong shape or NaN/inf."""
    array = np.asarray(action, dtype=np.float64).reshape(-1)
    if array.shape != (ACTION_DIM,):
        raise ValueError(f"action must have {ACTION_DIM} values, got shape {np.shape(action)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"action contains NaN or inf: {array}")
    return np.clip(array, -1.0, 1.0)


def step_status(task_name: str, steps: int, max_steps: int, qpos: np.ndarray) -> tuple[bool, dict]:
    """(truncated, info) after a step: time limit, or an unstable simulation (NaN joints) truncates the episode."""
    info = {"step": steps}
    unstable = not np.all(np.isfinite(qpos))
    if unstable:
        LOG.warning("%s: simulation became unstable at step %d; truncating the episode", task_name, steps)
        info["sim_unstable"] = True
    return unstable or steps >= max_steps, info


class ManipulationEnv(abc.ABC):
    """Gymnasium-style manipulation env behind the project's contract (see module docstring)."""

    suite: str = ""
    task_name: str = ""
    instruction: str = ""
    action_scale: ActionScale = ActionScale()
    max_episode_steps: int = 200

    @abc.abstractmethod
    def reset(self, seed: Optional[int] = None) -> tuple[Observation, dict]:
        """Start a new episode (reproducible for a given seed); returns (observation, info)."""

    @abc.abstractmethod
    def step(self, action: np.ndarray) -> tuple[Observation, float, bool, bool, dict]:
        """Apply a normalised 7-D action; returns (obs, 0.0, terminated, truncated, info) -- reward is always 0."""

    @abc.abstractmethod
    def true_success(self) -> bool:
        """PRIVILEGED: whether the task is solved, from simulator state."""

    @abc.abstractmethod
    def privileged_progress(self) -> float:
        """PRIVILEGED: task progress in [0, 100] from simulator state."""

    def close(self) -> None:
        """Free renderers and simulator resources."""

    def __enter__(self) -> "ManipulationEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
