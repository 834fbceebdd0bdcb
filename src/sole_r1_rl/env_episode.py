"""One env's episode inside the trainer: its reward shaper, its frame stack and what its progress queries carry
(first and previously scored frames, the rewarder's own last answer). The trainer keeps one per env."""
from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Optional

from sole_r1_model.rewarder import ProgressQuery
from sole_r1_rl.obs import FrameStacker
from sole_r1_rl.reward import ProgressRewardShaper, RewardConfig

if TYPE_CHECKING:  # importing sole_r1_sim pulls in MuJoCo; the learner must run on machines without it
    from sole_r1_sim.contract import Observation


@dataclasses.dataclass
class EnvEpisode:
    """Episode state of env `index`; `running` is False between its episodes."""

    index: int
    shaper: ProgressRewardShaper
    stacker: FrameStacker
    running: bool = False
    seed_offset: int = 0               # the episode's number in the run's seed sequence: reset seed = seed + it
    step: int = 0
    last_frames: Optional[dict] = None
    stacked: Optional[dict] = None
    first_images: tuple = ()           # (shoulder, wrist) of o_0
    previous_images: tuple = ()        # (shoulder, wrist) of the last scored frame
    previous_progress: float = 0.0     # the rewarder's last valid answer, told to its next query
    query_index: int = 0
    episode_return: float = 0.0
    started: float = 0.0
    valid: int = 0
    invalid: int = 0

    @classmethod
    def create(cls, index: int, reward: RewardConfig, cameras, frame_stack: int) -> "EnvEpisode":
        """A fresh state for env `index`."""
        return cls(index, ProgressRewardShaper(reward), FrameStacker(cameras, frame_stack))

    def start(self, frames: dict, observation: "Observation", seed_offset: int) -> None:
        """Begin an episode at its reset observation (`frames`: the agent's view of it)."""
        self.shaper.start_episode()
        self.last_frames, self.stacked = frames, self.stacker.reset(frames)
        self.first_images = self.previous_images = images(observation)
        self.previous_progress, self.query_index, self.step = 0.0, 0, 0
        self.episode_return, self.started = 0.0, time.time()
        self.valid, self.invalid = 0, 0
        self.seed_offset, self.running = seed_offset, True

    def advance(self, frames: dict) -> None:
        """The step's next observation becomes the current one (after its transition went to the shaper)."""
        self.last_frames, self.stacked = frames, self.stacker.push(frames)

    def query(self, task: str, observation: "Observation", privileged_progress: Optional[float]) -> ProgressQuery:
        """The progress question about the current frame (call after incrementing `query_index`)."""
        current = images(observation)
        return ProgressQuery(task=task, external=(self.first_images[0], self.previous_images[0], current[0]),
                             wrist=(self.first_images[1], self.previous_images[1], current[1]),
                             previous_progress=self.previous_progress, query_index=self.query_index,
                             stamp=float(self.step), privileged_progress=privileged_progress)

    def record(self, progress: float, valid: bool, observation: "Observation") -> None:
        """The answer to `query`: into the shaper; a valid one is what the next query is told."""
        self.shaper.add_estimate(self.step, progress, valid)
        self.previous_images = images(observation)
        if valid:
            self.previous_progress = float(progress)
            self.valid += 1
        else:
            self.invalid += 1


def images(observation: "Observation") -> tuple:
    """(shoulder, wrist) RGB frames of a contract observation."""
    return observation.shoulder, observation.wrist
