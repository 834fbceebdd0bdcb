"""franka_bridge against fake_franka (the MuJoCo twin) over ROS, with the test-only franka_msgs.

One graph (twin + bridge, separate processes, real franka_msgs types, actions and services) serves every test of
this module; each test starts from `reset_scene`. The test harness plays the safety gate: it publishes gated
EEDeltaCommands on /robot/command and watches what the bridge reports (/robot/ee_pose, joint states, mode, e-stop).
"""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from sole_r1.msg import EEDeltaCommand
from sole_r1_ros.ros import conventions as conv

from .conftest import LaunchedGraph, RosHarness
from .franka_testlib import command, finger_width, franka_msgs_env, latest_position, publish_for

BOX_MAX_X = 0.52     # tight box face in front of the start pose (x = 0.45) so the clip shows within a second

GRAPH = f"""
description: franka_bridge + fake_franka (test)
nodes:
  - name: fake_franka
    executable: fake_franka
    parameters: {{camera_rate_hz: 5.0, start_position: [0.45, 0.0, 0.25]}}
  - name: franka_bridge
    executable: franka_bridge
    parameters:
      workspace_min: [0.30, -0.30, 0.05]
      workspace_max: [{BOX_MAX_X}, 0.30, 0.45]
      max_orientation_deviation_rad: 0.6
      gripper: {{min_toggle_interval_s: 0.3}}
"""


@pytest.fixture(scope="module")
def robot(tmp_path_factory):
    """(harness, graph): fake_franka + franka_bridge running, the harness subscribed to the bridge's outputs."""
    env = franka_msgs_env()
    folder = tmp_path_factory.mktemp("franka")
    (folder / "graph.yaml").write_text(GRAPH)
    graph = LaunchedGraph(str(folder / "graph.yaml"), {}, folder / "graph.log", env)
    harness = RosHarness("franka_test")
    h = harness
    h.poses = h.collect(PoseStamped, conv.EE_POSE)
    h.targets = h.collect(PoseStamped, conv.TARGET_POSE)
    h.joints = h.collect(JointState, conv.JOINT_STATES)
    h.modes = h.collect(String, conv.ROBOT_MODE, conv.LATCHED_QOS)
    h.estops = h.collect(Bool, conv.ESTOP, conv.LATCHED_QOS)
    h.images = h.collect(Image, conv.WRIST_IMAGE, conv.IMAGE_SUBSCRIBER_QOS)
    h.commands = h.node.create_publisher(EEDeltaCommand, conv.ROBOT_COMMAND, conv.RELIABLE_QOS)
    h.clients = {name: h.node.create_client(Trigger, path) for name, path in (
        ("reset_scene", "/fake_franka/reset_scene"), ("press_user_stop", "/fake_franka/press_user_stop"),
        ("release_user_stop", "/fake_franka/release_user_stop"), ("trigger_reflex", "/fake_franka/trigger_reflex"),
        ("error_recovery", conv.ERROR_RECOVERY_SERVICE), ("home_gripper", conv.HOME_GRIPPER_SERVICE))}
    try:
        h.wait_for(lambda: h.poses and h.joints and h.modes, 60.0,
                   f"/robot/ee_pose from the bridge (log: {graph.log_path})")
        yield h, graph
    finally:
        harness.close()
        code = graph.stop()
        graph.kill()
        assert code == 0, graph.log()


def trigger(h, name: str):
    """Call one of the Trigger services and return the response."""
    return h.call(h.clients[name], Trigger.Request(), timeout=20.0)


def settle(h, seconds: float = 0.6) -> np.ndarray:
    """Let the arm come to rest and return the measured EE position."""
    time.sleep(seconds)
    return latest_position(h.poses)


def fresh_start(h) -> np.ndarray:
    """Twin back at the start pose in MOVE mode; returns the EE position."""
    assert trigger(h, "reset_scene").success
    h.wait_for(lambda: h.modes[-1][1].data == "MOVE", 5.0, "robot mode MOVE")
    h.commands.publish(command(hold=False))     # clears the bridge's hold latch after a stop
    return settle(h)


def test_gated_commands_move_the_twin_ee_in_the_commanded_direction(robot):
    h, _ = robot
    start = fresh_start(h)
    np.testing.assert_allclose(start, [0.45, 0.0, 0.25], atol=0.01)
    publish_for(h.commands, command(translation=(0.0, 0.02, 0.0)), 1.0)
    moved = settle(h) - start
    assert moved[1] > 0.08, f"EE moved {moved} for 10 x 2 cm commands along +y"
    assert abs(moved[0]) < 0.02 and abs(moved[2]) < 0.02, moved
    before = latest_position(h.poses)
    publish_for(h.commands, command(translation=(0.0, 0.0, -0.02)), 0.8)
    moved = settle(h) - before
    assert moved[2] < -0.06 and abs(moved[1]) < 0.02, moved
    assert len(h.images) > 0 and h.images[-1][1].width == 128       # the twin's wrist camera streams too


def test_targets_are_clipped_to_the_workspace_box(robot):
    h, _ = robot
    fresh_start(h)
    first_target = len(h.targets)
    publish_for(h.commands, command(translation=(0.10, 0.0, 0.0)), 1.5)    # oversize steps, towards the wall
    position = settle(h)
    targets_x = [msg.pose.position.x for _, msg in h.targets[first_target:]]
    assert targets_x and max(targets_x) <= BOX_MAX_X + 1e-9
    assert BOX_MAX_X - 0.02 < position[0] <= BOX_MAX_X + 0.005, position
    # Oversize steps were cut to the 3 cm per-step limit: the first target is at most 3 cm ahead of the start.
    assert targets_x[0] <= 0.45 + 0.03 + 0.005


def test_gripper_closes_and_opens_through_franka_actions(robot):
    h, _ = robot
    fresh_start(h)
    assert finger_width(h.joints) > 0.075
    publish_for(h.commands, command(gripper=-1.0), 0.3)
    h.wait_for(lambda: finger_width(h.joints) < 0.005, 5.0, "the fingers to close (Grasp)")
    publish_for(h.commands, command(gripper=0.2), 0.5)        # inside the dead band: nothing happens
    assert finger_width(h.joints) < 0.005
    publish_for(h.commands, command(gripper=1.0), 0.3)
    h.wait_for(lambda: finger_width(h.joints) > 0.075, 5.0, "the fingers to open (Move)")
    response = trigger(h, "home_gripper")
    assert response.success, response.message


def test_user_stop_latches_the_estop_and_recovery_happens_only_on_the_operator_service(robot):
    h, _ = robot
    start = fresh_start(h)
    assert trigger(h, "press_user_stop").success
    h.wait_for(lambda: h.modes[-1][1].data == "USER_STOPPED", 5.0, "/robot/mode USER_STOPPED")
    h.wait_for(lambda: h.estops and h.estops[-1][1].data is True, 5.0, "/estop True")
    # A late joiner sees the latched e-stop too.
    late = h.collect(Bool, conv.ESTOP, conv.LATCHED_QOS)
    h.wait_for(lambda: late and late[-1][1].data is True, 5.0, "latched /estop for a late subscriber")

    publish_for(h.commands, command(translation=(0.0, 0.02, 0.0)), 1.0)
    assert np.linalg.norm(settle(h, 0.3) - start) < 0.003, "the arm moved while USER_STOPPED"
    refused = trigger(h, "error_recovery")
    assert not refused.success and "USER_STOPPED" in refused.message

    assert trigger(h, "release_user_stop").success
    h.wait_for(lambda: h.modes[-1][1].data == "IDLE", 5.0, "/robot/mode IDLE after release")
    publish_for(h.commands, command(translation=(0.0, 0.02, 0.0)), 0.8)
    assert h.modes[-1][1].data == "IDLE", "the bridge recovered the robot by itself"
    assert np.linalg.norm(settle(h, 0.3) - start) < 0.01

    recovered = trigger(h, "error_recovery")
    assert recovered.success, recovered.message
    h.wait_for(lambda: h.modes[-1][1].data == "MOVE", 5.0, "/robot/mode MOVE after error recovery")
    h.wait_for(lambda: h.estops[-1][1].data is False, 5.0, "/estop False once recovered")
    before = latest_position(h.poses)
    publish_for(h.commands, command(translation=(0.0, 0.02, 0.0)), 0.8)
    assert settle(h)[1] - before[1] > 0.05, "commands do not move the arm after recovery"


def test_a_reflex_holds_the_arm_until_the_operator_recovers_it(robot):
    h, _ = robot
    start = fresh_start(h)
    assert trigger(h, "trigger_reflex").success
    h.wait_for(lambda: h.modes[-1][1].data == "REFLEX", 5.0, "/robot/mode REFLEX")
    h.wait_for(lambda: h.estops[-1][1].data is True, 5.0, "/estop True after a reflex")
    publish_for(h.commands, command(translation=(0.0, -0.02, 0.0), gripper=-1.0), 1.5)
    assert h.modes[-1][1].data == "REFLEX"
    assert np.linalg.norm(settle(h, 0.3) - start) < 0.003
    assert finger_width(h.joints) > 0.075, "the gripper moved during a reflex"
    assert trigger(h, "error_recovery").success
    h.wait_for(lambda: h.modes[-1][1].data == "MOVE", 5.0, "/robot/mode MOVE")


@pytest.mark.parametrize("node", ["franka_bridge", "fake_franka"])
def test_without_franka_msgs_the_nodes_exit_with_install_instructions(node):
    # This test process has no franka_msgs on its path (only the graphs above get the fixture's environment).
    result = subprocess.run([sys.executable, "-m", f"sole_r1_ros.nodes.{node}"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "install franka_ros2" in result.stderr and "build_franka_msgs.py" in result.stderr
    assert "Traceback" not in result.stderr


def test_targets_go_to_crisp_controllers_input_with_its_qos(robot):
    # crisp_controllers subscribes the relative `target_pose` (so /target_pose here) with rclcpp::QoS(1), and ignores
    # targets while a second publisher is matched: exactly one publisher, the bridge.
    h, _ = robot
    subscribers = h.node.get_subscriptions_info_by_topic("/target_pose")
    publishers = h.node.get_publishers_info_by_topic("/target_pose")
    assert [s.node_name for s in subscribers] == ["fake_franka"]
    assert [p.node_name for p in publishers] == ["franka_bridge"]
    for endpoint in subscribers + publishers:
        assert endpoint.qos_profile.reliability.name == "RELIABLE"
        assert endpoint.qos_profile.durability.name == "VOLATILE"
    assert not h.node.get_publishers_info_by_topic("/cartesian_impedance_controller/target_pose")


def test_both_target_controllers_are_named_as_upstream():
    from sole_r1_ros.ros.franka_interfaces import FrankaInterfaceNames

    crisp = FrankaInterfaceNames()
    assert (crisp.target_topic, crisp.target_qos.depth) == ("target_pose", 1)
    example = FrankaInterfaceNames(target_controller="franka_example")
    assert example.target_topic == "cartesian_impedance_example_controller/equilibrium_pose"
    assert example.target_qos.depth == 10
    assert FrankaInterfaceNames(target_pose_topic="my/input").target_topic == "my/input"
