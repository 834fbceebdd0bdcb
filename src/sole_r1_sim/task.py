"""TaskSpec: one task of a suite as read from config/tasks/<suite>.yaml (the registry builds, envs consume)."""
from __future__ import annotations

import dataclasses

from sole_r1_sim.render import CameraSpec


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Everything the suite env needs to know about one task (from config/tasks/<suite>.yaml)."""

    suite: str
    name: str
    instruction: str
    max_episode_steps: int
    cameras: tuple[CameraSpec, CameraSpec]          # (shoulder, wrist)
    camera_preset: str = "default"
    options: dict = dataclasses.field(default_factory=dict)  # suite-specific (progress family, suite env name, ...)

    def __post_init__(self) -> None:
        if not self.instruction.strip():
            raise ValueError(f"task {self.suite}/{self.name}: empty instruction in config/tasks/{self.suite}.yaml")
        if self.max_episode_steps < 1:
            raise ValueError(f"task {self.suite}/{self.name}: max_episode_steps must be >= 1")
        roles = tuple(camera.role for camera in self.cameras)
        if roles != ("shoulder", "wrist"):
            raise ValueError(f"task {self.suite}/{self.name}: cameras must be (shoulder, wrist), got {roles}")
