"""config/graphs/real_franka.yaml: resolves for real and fake hardware, agrees with config/real_franka.yaml, and
(slow) runs end to end on the MuJoCo twin: the learner's commands pass the gate and move the twin's arm."""
from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
import yaml
from geometry_msgs.msg import PoseStamped

from sole_r1.msg import EEDeltaCommand
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros import franka_interfaces as fi
from sole_r1_ros.logic.franka import GripperConfig
from sole_r1_ros.runner.graph import GraphError, resolve_graph

from .franka_testlib import franka_msgs_env

NODES = ["shoulder_camera", "wrist_camera", "franka_bridge", "reward_node", "safety_gate", "learner_node",
         "episode_manager", "recorder"]


def config_section(repo_root, node: str) -> dict:
    return yaml.safe_load((repo_root / "config" / "real_franka.yaml").read_text())[f"/**/{node}"]["ros__parameters"]


def test_fake_hardware_adds_the_twin_and_puts_the_cameras_on_standby():
    fake = resolve_graph("real_franka", {"robot_ip": "172.16.0.2", "use_fake_hardware": "true"})
    assert [n.name for n in fake.nodes] == ["fake_franka", *NODES]
    real = resolve_graph("real_franka", {"robot_ip": "172.16.0.2"})
    assert [n.name for n in real.nodes] == NODES
    cameras = {n.name: n.parameters for n in real.nodes if n.executable == "camera_opencv"}
    assert {c["standby"] for c in cameras.values()} == {False}
    assert {n.parameters["standby"] for n in fake.nodes if n.executable == "camera_opencv"} == {True}
    assert cameras["wrist_camera"]["device"] == "/dev/v4l/by-id/usb-wrist-camera-video-index0"
    # A numeric V4L2 index or RealSense serial arrives as an integer: the camera node accepts it as text.
    numeric = resolve_graph("real_franka", {"robot_ip": "x", "shoulder_camera": "0", "camera_backend": "realsense"})
    shoulder = next(n for n in numeric.nodes if n.name == "shoulder_camera").parameters
    assert shoulder["device"] == 0 and shoulder["backend"] == "realsense"


def test_robot_ip_is_required():
    with pytest.raises(GraphError, match="robot_ip"):
        resolve_graph("real_franka", {"use_fake_hardware": "true"})


def test_the_default_rewarder_is_the_zmq_server_of_the_gpu_box():
    graph = resolve_graph("real_franka", {"robot_ip": "172.16.0.2", "rewarder_endpoint": "tcp://10.0.0.5:8001"})
    reward = next(n for n in graph.nodes if n.name == "reward_node").parameters
    assert reward["rewarder"] == "zmq"
    assert yaml.safe_load(reward["rewarder_options"]) == {"endpoint": "tcp://10.0.0.5:8001"}


def test_config_real_franka_yaml_is_loaded_for_the_nodes_it_configures(repo_root):
    shipped = yaml.safe_load((repo_root / "config" / "real_franka.yaml").read_text())
    configured = {key.removeprefix("/**/") for key in shipped}
    graph = resolve_graph("real_franka", {"robot_ip": "172.16.0.2"})
    loaded = {n.name for n in graph.nodes if str(repo_root / "config" / "real_franka.yaml") in n.params_files}
    assert loaded == configured == {"shoulder_camera", "wrist_camera", "franka_bridge", "reward_node", "safety_gate"}
    own = resolve_graph("real_franka", {"robot_ip": "x", "params_file": str(repo_root / "config" / "real_franka.yaml")})
    assert all(n.params_files in ([], [str(repo_root / "config" / "real_franka.yaml")]) for n in own.nodes)
    # The graph no longer restates the file's safety values: only argument-driven parameters are written there.
    gate = next(n for n in graph.nodes if n.name == "safety_gate").parameters
    assert gate == {"reward_timeout_s": 5.0}
    bridge = config_section(repo_root, "franka_bridge")
    assert bridge["gripper"] == dataclasses.asdict(GripperConfig())
    for key in ("robot_state_topic", "gripper_move_action", "gripper_grasp_action",
                "gripper_homing_action", "error_recovery_action", "gripper_joint_states_topic"):
        assert bridge[key] == getattr(fi, key.upper()), key


def test_file_parameters_are_parameters_the_nodes_declare(repo_root):
    modules = {"safety_gate": ("sole_r1_ros.nodes.safety_gate", ["GateNodeConfig", "SafetyConfig"]),
               "franka_bridge": ("sole_r1_ros.nodes.franka_bridge", ["FrankaBridgeNodeConfig", "FrankaInterfaceNames",
                                                                      "FrankaBridgeConfig"]),
               "shoulder_camera": ("sole_r1_ros.nodes.camera_opencv", ["CameraConfig"]),
               "wrist_camera": ("sole_r1_ros.nodes.camera_opencv", ["CameraConfig"]),
               "reward_node": ("sole_r1_ros.nodes.reward_node", ["RewardNodeConfig"])}
    for node, (module, configs) in modules.items():
        loaded = [importlib.import_module(module), fi, importlib.import_module("sole_r1_ros.logic.safety.gate"),
                  importlib.import_module("sole_r1_ros.logic.camera_sources")]
        declared = set()
        for name in configs:
            declared |= {f.name for f in dataclasses.fields(next(getattr(m, name) for m in loaded if hasattr(m, name)))}
        assert set(config_section(repo_root, node)) <= declared, node


def test_a_namespace_moves_every_node_and_sole_r1_name_under_it():
    graph = resolve_graph("real_franka", {"robot_ip": "x", "namespace": "left"})
    assert {n.namespace for n in graph.nodes} == {"left"}
    for node in graph.nodes:
        assert node.remappings[conv.ROBOT_COMMAND] == "/left/robot/command"
        assert node.remappings[conv.ESTOP] == "/left/estop" and conv.DIAGNOSTICS not in node.remappings
    assert all(not n.remappings for n in resolve_graph("real_franka", {"robot_ip": "x"}).nodes)


@pytest.mark.parametrize("node, module, configs", [
    ("fake_franka", "sole_r1_ros.nodes.fake_franka", ["FakeFrankaConfig", "FrankaInterfaceNames"]),
    ("shoulder_camera", "sole_r1_ros.nodes.camera_opencv", ["CameraConfig"]),
    ("franka_bridge", "sole_r1_ros.nodes.franka_bridge", ["FrankaBridgeNodeConfig", "FrankaInterfaceNames",
                                                          "FrankaBridgeConfig"]),
    ("safety_gate", "sole_r1_ros.nodes.safety_gate", ["GateNodeConfig", "SafetyConfig"]),
    ("reward_node", "sole_r1_ros.nodes.reward_node", ["RewardNodeConfig"]),
    ("recorder", "sole_r1_ros.nodes.recorder", ["RecorderConfig"]),
])
def test_graph_parameters_are_parameters_the_nodes_declare(node, module, configs):
    graph = {n.name: n.parameters for n in resolve_graph("real_franka", {"robot_ip": "x",
                                                                        "use_fake_hardware": "true"}).nodes}
    loaded = importlib.import_module(module)
    if module.endswith("safety_gate"):
        loaded = [loaded, importlib.import_module("sole_r1_ros.logic.safety.gate")]
    else:
        loaded = [loaded, fi]
    declared = {"device"} if node == "shoulder_camera" else set()   # declared by the camera node itself
    for name in configs:
        cls = next(getattr(m, name) for m in loaded if hasattr(m, name))
        declared |= {f.name for f in dataclasses.fields(cls)}
    assert set(graph[node]) <= declared


@pytest.mark.slow
def test_learner_commands_move_the_twin_arm_through_the_gate_and_bridge(ros, launch_graph, tmp_path):
    poses = ros.collect(PoseStamped, conv.EE_POSE)
    gated = ros.collect(EEDeltaCommand, conv.ROBOT_COMMAND)
    graph = launch_graph("real_franka", env=franka_msgs_env(), use_fake_hardware="true", robot_ip="none",
                         rewarder="tiny", rewarder_options="", reward_timeout_s=60.0, run_dir=str(tmp_path / "run"),
                         episode_steps=40)
    ros.wait_for(lambda: poses, 90.0, f"/robot/ee_pose from the twin (log: {graph.log_path})")
    p = poses[0][1].pose.position
    start = np.array([p.x, p.y, p.z])

    def moved() -> float:
        q = poses[-1][1].pose.position
        return float(np.linalg.norm(np.array([q.x, q.y, q.z]) - start))

    ros.wait_for(lambda: any(not m.hold for _, m in gated) and moved() > 0.02, 240.0,
                 f"the learner's gated commands to move the arm (log: {graph.log_path})")
    assert graph.process.poll() is None, graph.log()
    assert graph.stop() == 0, graph.log()
