"""The reward node's logic without rclpy: frame pairing and memory, query scheduling, failures, message builders.

`nodes/reward_node.py` is the thin ROS adapter around `RewardSession`; everything here is testable without a graph
(`markers` builds ROS message objects but needs no node).
"""
from sole_r1_ros.reward.episode_frames import EpisodeFrames, EpisodeFramesConfig, FramePair
from sole_r1_ros.reward.session import Estimate, RewardSession, RewardSessionConfig

__all__ = ["EpisodeFrames", "EpisodeFramesConfig", "Estimate", "FramePair", "RewardSession", "RewardSessionConfig"]
