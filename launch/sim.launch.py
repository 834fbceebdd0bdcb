"""Train in simulation: ros2 launch sole_r1 sim.launch.py suite:=metaworld task:=reach-v3 [rewarder:=...]"""
from sole_r1_ros.runner.launch_support import graph_launch_description


def generate_launch_description():
    """Nodes and arguments come from config/graphs/sim_<suite>.yaml (also run by `sole-r1 launch sim_<suite>`)."""
    return graph_launch_description("sim_{suite}", selector="suite", selector_default="metaworld")
