"""Franka bridge logic: target-pose composition (checked against scipy), limits, gripper hysteresis, robot modes."""
from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sole_r1_ros.logic.franka import (FrankaBridgeConfig, FrankaBridgeLogic, GripperAction, GripperConfig,
                                      GripperHysteresis, RobotMode, compute_target_pose, parse_robot_mode)
from sole_r1_ros.logic.franka.bridge import quat_from_rotvec, quat_multiply, quat_to_rotvec
from sole_r1_ros.logic.safety import CommandDelta

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DOWN = np.array([1.0, 0.0, 0.0, 0.0])          # flange pointing down: 180 deg about x (xyzw)
HOME = np.array([0.5, 0.0, 0.3])
WIDE = dict(max_translation_m=1.0, max_rotation_rad=math.pi, workspace_min=(-2, -2, -2), workspace_max=(2, 2, 2))


def cmd(translation=(0, 0, 0), rotation=(0, 0, 0), gripper=0.0) -> CommandDelta:
    return CommandDelta(np.array(translation, float), np.array(rotation, float), gripper, 1)


def same_rotation(q_a, q_b, atol=1e-9) -> bool:
    """q and -q are the same rotation."""
    return bool(np.allclose(q_a, q_b, atol=atol) or np.allclose(q_a, -np.asarray(q_b), atol=atol))


# ---- quaternion math vs scipy ----------------------------------------------------------------------------
def test_quaternion_helpers_match_scipy_on_random_rotations():
    rng = np.random.default_rng(0)
    for _ in range(200):
        rotvec = rng.normal(size=3) * rng.uniform(0, 3)
        assert same_rotation(quat_from_rotvec(rotvec), Rotation.from_rotvec(rotvec).as_quat())
        a, b = Rotation.random(random_state=rng), Rotation.random(random_state=rng)
        assert same_rotation(quat_multiply(a.as_quat(), b.as_quat()), (a * b).as_quat())
        np.testing.assert_allclose(quat_to_rotvec(a.as_quat()), a.as_rotvec(), atol=1e-9)
    np.testing.assert_allclose(quat_from_rotvec([1e-15, 0, 0]), [5e-16, 0, 0, 1], atol=1e-20)


def test_target_orientation_is_the_base_frame_delta_applied_to_the_measured_one():
    rng = np.random.default_rng(1)
    config = FrankaBridgeConfig(**WIDE)
    for _ in range(100):
        measured = Rotation.random(random_state=rng)
        delta = rng.normal(size=3) * 0.5
        target = compute_target_pose(HOME, measured.as_quat(), cmd(rotation=delta), config)
        expected = (Rotation.from_rotvec(delta) * measured).as_quat()
        assert same_rotation(target.quaternion, expected)
        assert np.dot(target.quaternion, measured.as_quat()) >= 0.0       # same hemisphere as measured
        assert np.linalg.norm(target.quaternion) == pytest.approx(1.0)


def test_rotation_about_base_z_turns_a_downward_gripper_about_the_vertical():
    target = compute_target_pose(HOME, DOWN, cmd(rotation=(0, 0, 0.1)), FrankaBridgeConfig())
    rotation = Rotation.from_quat(target.quaternion)
    np.testing.assert_allclose(rotation.apply([0, 0, 1]), [0, 0, -1], atol=1e-12)   # still points down
    np.testing.assert_allclose(rotation.apply([1, 0, 0]), [math.cos(0.1), math.sin(0.1), 0], atol=1e-12)


def test_unnormalised_measured_quaternion_is_normalised_and_broken_one_refused():
    target = compute_target_pose(HOME, DOWN * 3.0, cmd(), FrankaBridgeConfig())
    np.testing.assert_allclose(target.quaternion, DOWN)
    with pytest.raises(ValueError, match="invalid quaternion"):
        compute_target_pose(HOME, [0, 0, 0, 0], cmd(), FrankaBridgeConfig())
    with pytest.raises(ValueError, match="NaN or inf"):
        compute_target_pose(HOME, DOWN, cmd(translation=(math.nan, 0, 0)), FrankaBridgeConfig())


# ---- translation and limits ------------------------------------------------------------------------------
def test_translation_is_scaled_added_to_the_measured_position_and_step_limited():
    config = FrankaBridgeConfig(translation_scale=0.5, max_translation_m=0.02)
    target = compute_target_pose(HOME, DOWN, cmd(translation=(0.02, 0.0, -0.01)), config)
    np.testing.assert_allclose(target.position, HOME + [0.01, 0.0, -0.005])
    assert target.reasons == []
    target = compute_target_pose(HOME, DOWN, cmd(translation=(0.0, 0.08, 0.06)), config)   # 0.05 m after gain
    np.testing.assert_allclose(target.position, HOME + [0.0, 0.016, 0.012])
    assert target.reasons == ["translation_clipped"]


def test_rotation_step_is_limited_to_max_rotation():
    config = FrankaBridgeConfig(max_rotation_rad=0.1)
    target = compute_target_pose(HOME, DOWN, cmd(rotation=(0.0, 0.5, 0.0)), config)
    step = Rotation.from_quat(target.quaternion) * Rotation.from_quat(DOWN).inv()
    np.testing.assert_allclose(step.as_rotvec(), [0.0, 0.1, 0.0], atol=1e-12)
    assert target.reasons == ["rotation_clipped"]


def test_target_is_clipped_to_the_workspace_box():
    config = FrankaBridgeConfig(workspace_min=(0.3, -0.2, 0.1), workspace_max=(0.6, 0.2, 0.5))
    target = compute_target_pose([0.59, 0.0, 0.11], DOWN, cmd(translation=(0.02, 0.0, -0.02)), config)
    np.testing.assert_allclose(target.position, [0.6, 0.0, 0.1])
    assert target.reasons == ["workspace_clipped"]


def test_orientation_cone_pulls_the_target_back_to_the_reference_limit():
    config = FrankaBridgeConfig(max_orientation_deviation_rad=0.3, max_rotation_rad=1.0)
    tilted = (Rotation.from_rotvec([0.25, 0, 0]) * Rotation.from_quat(DOWN)).as_quat()
    target = compute_target_pose(HOME, tilted, cmd(rotation=(0.2, 0.0, 0.0)), config)   # would reach 0.45 rad
    deviation = Rotation.from_quat(DOWN).inv() * Rotation.from_quat(target.quaternion)
    assert deviation.magnitude() == pytest.approx(0.3, abs=1e-9)
    assert target.reasons == ["orientation_clipped"]
    inside = compute_target_pose(HOME, tilted, cmd(rotation=(-0.2, 0.0, 0.0)), config)
    assert inside.reasons == []


def test_invalid_bridge_config_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="workspace_min"):
        FrankaBridgeConfig(workspace_min=(0.7, 0, 0), workspace_max=(0.6, 1, 1))
    with pytest.raises(ValueError, match="translation_scale must be > 0"):
        FrankaBridgeConfig(translation_scale=0.0)
    with pytest.raises(ValueError, match="grasp_force_n"):
        GripperConfig(grasp_force_n=130.0)      # SERL's 130 N exceeds the Franka Hand's continuous force
    assert FrankaBridgeConfig(gripper={"threshold": 0.8}).gripper.threshold == 0.8


# ---- gripper hysteresis ----------------------------------------------------------------------------------
def test_gripper_toggles_only_past_the_threshold_and_only_on_state_change():
    gripper = GripperHysteresis(GripperConfig(threshold=0.5, min_toggle_interval_s=0.0))
    sequence = [0.0, -0.4, -0.5, -1.0, -0.9, 0.3, 0.49, 0.5, 1.0, 0.2, -0.6]
    actions = [gripper.update(value, t=i * 0.1) for i, value in enumerate(sequence)]
    assert actions == [None, None, GripperAction.CLOSE, None, None, None, None, GripperAction.OPEN, None, None,
                       GripperAction.CLOSE]
    assert gripper.closed


def test_gripper_ignores_toggles_within_the_debounce_interval():
    gripper = GripperHysteresis(GripperConfig(min_toggle_interval_s=0.6))
    assert gripper.update(-1.0, t=0.0) is GripperAction.CLOSE
    assert gripper.update(1.0, t=0.3) is None          # too soon after closing
    assert gripper.update(1.0, t=0.59) is None
    assert gripper.suppressed == 2 and gripper.closed
    assert gripper.update(1.0, t=0.6) is GripperAction.OPEN
    assert gripper.update(math.nan, t=5.0) is None and not gripper.closed


def test_gripper_goal_fields_match_the_franka_msgs_goals():
    gripper = GripperHysteresis(GripperConfig(open_width_m=0.08, speed_m_s=0.1, grasp_force_n=40.0))
    assert gripper.goal_fields(GripperAction.OPEN) == {"width": 0.08, "speed": 0.1}
    close = gripper.goal_fields(GripperAction.CLOSE)
    assert close["force"] == 40.0 and set(close["epsilon"]) == {"inner", "outer"}


# ---- robot modes and the bridge --------------------------------------------------------------------------
def test_robot_mode_values_and_names_match_franka_msgs_frankarobotstate():
    text = (FIXTURES / "franka_msgs_subset" / "msg" / "FrankaRobotState.msg").read_text()
    constants = dict(re.findall(r"uint8 ROBOT_MODE_(\w+)=(\d+)", text))
    assert {name: int(value) for name, value in constants.items()} == {m.name: m.value for m in RobotMode}
    assert parse_robot_mode(4) is RobotMode.REFLEX
    assert parse_robot_mode("robot_mode_user_stopped") is RobotMode.USER_STOPPED
    with pytest.raises(ValueError, match="unknown robot mode"):
        parse_robot_mode(7)


def test_bridge_reports_an_estop_reason_once_when_a_robot_stop_begins():
    bridge = FrankaBridgeLogic()
    assert bridge.on_robot_state(RobotMode.MOVE, HOME, DOWN) is None
    assert bridge.on_robot_state(RobotMode.REFLEX, HOME, DOWN) == "robot reported REFLEX"
    assert bridge.on_robot_state(RobotMode.REFLEX, HOME, DOWN) is None          # still the same stop
    assert bridge.on_robot_state(RobotMode.USER_STOPPED, HOME, DOWN) == "robot reported USER_STOPPED"


def test_bridge_steps_from_the_measured_pose_and_sends_gripper_actions():
    bridge = FrankaBridgeLogic(FrankaBridgeConfig(gripper=GripperConfig(min_toggle_interval_s=0.0)))
    assert bridge.step(cmd(translation=(0.01, 0, 0)), hold=False, t=0.0).reasons == ["no_robot_state"]
    bridge.on_robot_state(RobotMode.MOVE, HOME, DOWN)
    out = bridge.step(cmd(translation=(0.01, 0, 0), gripper=-1.0), hold=False, t=0.1)
    assert not out.hold and out.gripper is GripperAction.CLOSE
    np.testing.assert_allclose(out.target.position, HOME + [0.01, 0, 0])
    # The next step adds to the *measured* pose, not to the previous target.
    out = bridge.step(cmd(translation=(0.01, 0, 0), gripper=-1.0), hold=False, t=0.2)
    np.testing.assert_allclose(out.target.position, HOME + [0.01, 0, 0])
    assert out.gripper is None


def test_hold_latches_the_pose_where_the_robot_was_and_does_not_creep():
    bridge = FrankaBridgeLogic()
    bridge.on_robot_state(RobotMode.MOVE, HOME, DOWN)
    first = bridge.step(cmd(translation=(0.02, 0, 0), gripper=-1.0), hold=True, t=0.0)
    assert first.hold and first.gripper is None and first.reasons == ["hold"]
    bridge.on_robot_state(RobotMode.MOVE, HOME + [0.0, 0.0, -0.003], DOWN)      # sagging under load
    second = bridge.step(cmd(), hold=True, t=0.1)
    np.testing.assert_allclose(second.target.position, HOME)
    moving = bridge.step(cmd(), hold=False, t=0.2)                               # hold released
    np.testing.assert_allclose(moving.target.position, HOME + [0.0, 0.0, -0.003])


@pytest.mark.parametrize("mode", [RobotMode.REFLEX, RobotMode.USER_STOPPED, RobotMode.GUIDING, RobotMode.OTHER])
def test_bridge_holds_in_modes_that_cannot_move(mode):
    bridge = FrankaBridgeLogic()
    bridge.on_robot_state(mode, HOME, DOWN)
    out = bridge.step(cmd(translation=(0.01, 0, 0)), hold=False, t=0.0)
    assert out.hold and out.reasons == [f"robot_mode_{mode.name}"]
    assert bridge.counters[f"robot_mode_{mode.name}"] == 1


def test_bridge_counts_and_skips_broken_robot_state():
    bridge = FrankaBridgeLogic()
    bridge.on_robot_state(RobotMode.MOVE, HOME, DOWN)
    bridge.on_robot_state(RobotMode.MOVE, [math.nan, 0, 0], DOWN)
    bridge.on_robot_state(RobotMode.MOVE, HOME + 0.1, [0, 0, 0, 0])
    assert bridge.counters["bad_pose"] == 2
    np.testing.assert_allclose(bridge.position, HOME)
    bridge.on_robot_state(42, HOME, DOWN)
    assert bridge.counters["bad_robot_mode"] == 1 and bridge.mode is RobotMode.OTHER


def test_error_recovery_and_homing_only_when_the_robot_can_take_them():
    bridge = FrankaBridgeLogic()
    bridge.on_robot_state(RobotMode.USER_STOPPED, HOME, DOWN)
    ok, message = bridge.request_error_recovery()
    assert not ok and "release the user stop" in message
    ok, message = bridge.request_homing()
    assert not ok and "USER_STOPPED" in message
    bridge.on_robot_state(RobotMode.REFLEX, HOME, DOWN)
    ok, message = bridge.request_error_recovery()
    assert ok and "reset the e-stop" in message
    bridge.on_robot_state(RobotMode.MOVE, HOME, DOWN)
    assert not bridge.request_error_recovery()[0]
    bridge.gripper.sync(closed=True)
    bridge.on_robot_state(RobotMode.IDLE, HOME, DOWN)
    assert bridge.request_homing()[0] and not bridge.gripper.closed           # homing ends open
    assert bridge.counters["error_recovery_requested"] == 1 and bridge.counters["homing_requested"] == 1


# ---- the test-only franka_msgs package -------------------------------------------------------------------
def _fixture_builder():
    spec = importlib.util.spec_from_file_location("build_franka_msgs", FIXTURES / "build_franka_msgs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_franka_msgs_fixture_builds_and_agrees_with_the_bridge_logic():
    builder = _fixture_builder()
    install = builder.build_franka_msgs(builder.DEFAULT_CACHE_DIR)
    assert builder.build_franka_msgs(builder.DEFAULT_CACHE_DIR) == install          # cached, idempotent
    builder.import_franka_msgs(install)
    from franka_msgs.action import ErrorRecovery, Grasp, Homing, Move
    from franka_msgs.msg import FrankaRobotState
    from rclpy.serialization import deserialize_message, serialize_message

    state = FrankaRobotState()
    for mode in RobotMode:
        assert getattr(FrankaRobotState, f"ROBOT_MODE_{mode.name}") == mode.value
    state.robot_mode = FrankaRobotState.ROBOT_MODE_REFLEX
    state.o_t_ee.pose.position.x, state.o_t_ee.pose.orientation.x, state.o_t_ee.pose.orientation.w = 0.5, 1.0, 0.0
    state = deserialize_message(serialize_message(state), FrankaRobotState)
    bridge = FrankaBridgeLogic()
    pose = state.o_t_ee.pose
    reason = bridge.on_robot_state(state.robot_mode, [pose.position.x, pose.position.y, pose.position.z],
                                   [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w])
    assert reason == "robot reported REFLEX"
    fields = bridge.gripper.goal_fields(GripperAction.CLOSE)
    goal = Grasp.Goal(width=fields["width"], speed=fields["speed"], force=fields["force"])
    goal.epsilon.inner, goal.epsilon.outer = fields["epsilon"]["inner"], fields["epsilon"]["outer"]
    assert deserialize_message(serialize_message(goal), Grasp.Goal).force == 40.0
    assert Move.Goal(**bridge.gripper.goal_fields(GripperAction.OPEN)).width == 0.08
    assert hasattr(Homing.Result(), "success") and ErrorRecovery.Goal() is not None
