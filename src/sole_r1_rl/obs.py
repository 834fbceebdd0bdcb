"""Learner-side observations: a contract `Observation` as channel-first uint8 frames per camera + a proprio vector,
and the frame stack the actor sees (the replay rebuilds the same stacks from frames it stores once)."""
from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # importing sole_r1_sim pulls in MuJoCo; the learner must run on machines without it
    from sole_r1_sim.contract import Observation

PROPRIO = "proprio"


def observation_frames(observation: "Observation", cameras: Sequence[str], image_size: int) -> dict:
    """{camera: (3, H, W) uint8, 'proprio': (P,) float32} from a contract Observation; ValueError on bad input."""
    frames = {}
    for name in cameras:
        image = getattr(observation, name, None)
        if image is None:
            raise ValueError(f"observation has no camera {name!r}; the agent's cameras are {tuple(cameras)}")
        frames[name] = image_to_chw(image, image_size, name)
    proprio = np.asarray(observation.proprio.as_vector(), dtype=np.float32)
    if not np.all(np.isfinite(proprio)):
        raise ValueError(f"proprio contains NaN or inf: {proprio}")
    frames[PROPRIO] = proprio
    return frames


def image_to_chw(image: np.ndarray, image_size: int, name: str = "camera") -> np.ndarray:
    """Check an HxWx3 uint8 RGB frame of the expected size and return it channel-first and contiguous."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"{name} frame must be an HxWx3 uint8 array, got {type(image).__name__} shape={shape}")
    if image.shape[:2] != (image_size, image_size):
        raise ValueError(f"{name} frame is {image.shape[0]}x{image.shape[1]} but the agent expects "
                         f"{image_size}x{image_size}: render at that size (make_env image_size) or change "
                         "AgentConfig.image_size")
    return np.ascontiguousarray(image.transpose(2, 0, 1))


class FrameStacker:
    """Keeps the last `frame_stack` frames per camera; at an episode start the first frame fills the stack
    (the replay clamps stacks at episode starts the same way, so acting and learning see the same inputs)."""

    def __init__(self, cameras: Sequence[str], frame_stack: int) -> None:
        self.cameras = tuple(cameras)
        self.frame_stack = frame_stack
        self._frames = {name: collections.deque(maxlen=frame_stack) for name in self.cameras}

    def reset(self, frames: dict) -> dict:
        """Start an episode with its first frames; returns the stacked observation."""
        for name in self.cameras:
            self._frames[name].clear()
            self._frames[name].extend([frames[name]] * self.frame_stack)
        return self._stacked(frames)

    def push(self, frames: dict) -> dict:
        """Add the newest frames; returns the stacked observation."""
        for name in self.cameras:
            self._frames[name].append(frames[name])
        return self._stacked(frames)

    def _stacked(self, frames: dict) -> dict:
        stacked = {name: np.concatenate(self._frames[name], axis=0) for name in self.cameras}
        stacked[PROPRIO] = frames[PROPRIO]
        return stacked
