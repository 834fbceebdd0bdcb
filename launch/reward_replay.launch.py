"""Score a replayed episode live: ros2 launch sole_r1 reward_replay.launch.py [rewarder:=tiny] [side_by_side_path:=...]"""
from sole_r1_ros.runner.launch_support import graph_launch_description


def generate_launch_description():
    """Nodes and arguments come from config/graphs/reward_replay.yaml (also run by `sole-r1 launch reward_replay`)."""
    return graph_launch_description("reward_replay")
