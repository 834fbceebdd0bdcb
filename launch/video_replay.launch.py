"""Replay a recorded episode as camera topics: ros2 launch sole_r1 video_replay.launch.py [side_by_side_path:=...]"""
from sole_r1_ros.runner.launch_support import graph_launch_description


def generate_launch_description():
    """Nodes and arguments come from config/graphs/video_replay.yaml (also run by `sole-r1 launch video_replay`)."""
    return graph_launch_description("video_replay")
