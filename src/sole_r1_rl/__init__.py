"""DrQ-v2 / SERL-style learner with no rclpy: agent math, replay, reward-from-progress, checkpoints, trainer.

    from sole_r1_rl import AgentConfig, DrQV2Agent, ReplayBuffer, ProgressRewardShaper
    agent = DrQV2Agent(AgentConfig.preset("drqv2", device="cuda"))

The ROS learner node is a thin adapter over these classes; `python -m sole_r1_rl.trainer` runs the same
code in one process.
"""
from sole_r1_rl.agent import DrQV2Agent
from sole_r1_rl.checkpoint import TrainingCounters, load_checkpoint, save_checkpoint
from sole_r1_rl.config import PRESETS, AgentConfig
from sole_r1_rl.loader import BatchLoader
from sole_r1_rl.replay import Batch, ReplayBuffer
from sole_r1_rl.reward import ProgressRewardShaper, RewardConfig
from sole_r1_rl.schedule import parse_schedule

__all__ = [
    "PRESETS",
    "AgentConfig",
    "Batch",
    "BatchLoader",
    "DrQV2Agent",
    "ProgressRewardShaper",
    "ReplayBuffer",
    "RewardConfig",
    "TrainingCounters",
    "load_checkpoint",
    "parse_schedule",
    "save_checkpoint",
]
