"""Train on a real Franka: ros2 launch sole_r1 real_franka.launch.py robot_ip:=... task:="..." [use_fake_hardware:=true]"""
from sole_r1_ros.runner.launch_support import graph_launch_description


def generate_launch_description():
    """Nodes and arguments come from config/graphs/real_franka.yaml (also run by `sole-r1 launch real_franka`)."""
    return graph_launch_description("real_franka")
