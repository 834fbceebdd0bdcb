"""CommandDelta: one end-effector motion command in physical units, as the gate and the bridges see it."""
from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass
class CommandDelta:
    """One end-effector motion command in physical units (mirrors sole_r1/msg/EEDeltaCommand)."""

    translation: np.ndarray      # (3,) metres, base frame
    rotation: np.ndarray         # (3,) axis-angle (axis * angle), radians, base frame
    gripper: float               # -1 close .. +1 open; 0 asks for no gripper change
    episode_id: int = 0

    def __post_init__(self) -> None:
        # Shapes are checked here (a wrong shape is a programming error); NaN/inf pass so that the gate can
        # reject and count them instead of the message conversion crashing a callback.
        self.translation = np.asarray(self.translation, dtype=np.float64).reshape(-1)
        self.rotation = np.asarray(self.rotation, dtype=np.float64).reshape(-1)
        if self.translation.shape != (3,) or self.rotation.shape != (3,):
            raise ValueError(f"CommandDelta needs 3 translation and 3 rotation values, got shapes "
                             f"{self.translation.shape} and {self.rotation.shape}")
        self.gripper = float(self.gripper)
        self.episode_id = int(self.episode_id)

    @classmethod
    def zero(cls, episode_id: int = 0) -> "CommandDelta":
        """A command that moves nothing and leaves the gripper as it is (the body of a hold)."""
        return cls(np.zeros(3), np.zeros(3), 0.0, episode_id)

    def is_finite(self) -> bool:
        """True when no field is NaN or inf."""
        return bool(np.all(np.isfinite(self.translation)) and np.all(np.isfinite(self.rotation))
                    and math.isfinite(self.gripper))


def clip_norm(vector: np.ndarray, limit: float) -> tuple[np.ndarray, bool]:
    """Scale `vector` down to Euclidean norm `limit`, keeping its direction; return (vector, was_clipped)."""
    norm = float(np.linalg.norm(vector))
    if norm <= limit:
        return vector, False
    return vector * (limit / norm), True
