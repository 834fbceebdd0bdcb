"""config/real_franka.yaml builds valid safety and bridge configs; config/sole_r1.rviz shows the project's topics."""
from __future__ import annotations

import dataclasses

import numpy as np
import yaml

from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.logic.franka import FrankaBridgeConfig, GripperConfig
from sole_r1_ros.logic.safety import SafetyConfig


def load_params(repo_root, node: str) -> dict:
    document = yaml.safe_load((repo_root / "config" / "real_franka.yaml").read_text())
    return document[f"/**/{node}"]["ros__parameters"]   # /**/: the keys match namespaced nodes too


def bridge_config(params: dict) -> FrankaBridgeConfig:
    known = {f.name for f in dataclasses.fields(FrankaBridgeConfig)}
    return FrankaBridgeConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items() if k in known})


def test_safety_gate_parameters_build_a_valid_config(repo_root):
    config = SafetyConfig.from_dict(load_params(repo_root, "safety_gate"))   # unknown keys would raise
    assert config.cameras == ("shoulder", "wrist") and config.limit_mode == "clip"
    # 10 Hz control must pass the rate limit with jitter to spare.
    assert 1.0 / config.max_command_rate_hz < 0.1 * 0.8


def test_bridge_parameters_build_a_valid_config_with_the_gripper_section(repo_root):
    params = load_params(repo_root, "franka_bridge")
    config = bridge_config(params)
    assert isinstance(config.gripper, GripperConfig)
    assert set(params["gripper"]) == {f.name for f in dataclasses.fields(GripperConfig)}


def test_bridge_limits_are_no_looser_than_the_gate_limits(repo_root):
    gate = SafetyConfig.from_dict(load_params(repo_root, "safety_gate"))
    bridge = bridge_config(load_params(repo_root, "franka_bridge"))
    assert bridge.max_translation_m <= gate.max_translation_m
    assert bridge.max_rotation_rad <= gate.max_rotation_rad
    assert np.all(np.asarray(bridge.workspace_min) >= gate.workspace_min)
    assert np.all(np.asarray(bridge.workspace_max) <= gate.workspace_max)


def test_camera_sections_name_optical_frames_and_hold_no_untyped_empty_lists(repo_root):
    # An empty YAML list has no element type: as a params file it reached the camera node unset and stopped it.
    assert load_params(repo_root, "shoulder_camera")["frame_id"] == "shoulder_camera_optical_frame"
    assert load_params(repo_root, "wrist_camera")["frame_id"] == "wrist_camera_optical_frame"
    document = yaml.safe_load((repo_root / "config" / "real_franka.yaml").read_text())
    empty = [(node, key) for node, section in document.items() for key, value in section["ros__parameters"].items()
             if value == []]
    assert not empty, f"empty lists in config/real_franka.yaml: {empty}"


def test_rviz_config_shows_cameras_reward_poses_and_workspace_in_the_base_frame(repo_root):
    rviz = yaml.safe_load((repo_root / "config" / "sole_r1.rviz").read_text())
    manager = rviz["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "base"
    shown = {(d["Class"].split("/")[-1], d["Topic"]["Value"]) for d in manager["Displays"] if "Topic" in d}
    assert shown == {
        ("Image", conv.SHOULDER_IMAGE), ("Image", conv.WRIST_IMAGE), ("MarkerArray", conv.REWARD_MARKERS),
        ("Pose", conv.EE_POSE), ("Pose", conv.TARGET_POSE), ("Marker", "/safety/workspace"),
    }
