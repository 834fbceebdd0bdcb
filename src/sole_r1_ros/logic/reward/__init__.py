"""The reward node's logic without rclpy: frame pairing and memory, query scheduling, failures, message builders.

`nodes/reward_node.py` is the thin ROS adapter around `RewardSession`; everything here is testable without a graph
(the messages it publishes are built in `sole_r1_ros.ros.markers`).
"""
from sole_r1_ros.logic.reward.episode_frames import EpisodeFrames, EpisodeFramesConfig, FramePair
from sole_r1_ros.logic.reward.session import Estimate, RewardSession, RewardSessionConfig

__all__ = ["EpisodeFrames", "EpisodeFramesConfig", "Estimate", "FramePair", "RewardSession", "RewardSessionConfig"]
