"""The MuJoCo Franka twin (no ROS): frames like the real robot, impedance tracking, robot stops, gripper, cameras."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sole_r1_ros.logic.franka.robot_mode import RobotMode
from sole_r1_ros.logic.franka.twin import READY_POSE, FrankaTwin, TwinConfig

DOWN = np.array([1.0, 0.0, 0.0, 0.0])     # x, y, z, w: Rx(pi), the Franka EE pointing at the table


@pytest.fixture(scope="module")
def twin():
    robot = FrankaTwin()
    yield robot
    robot.close()


def test_ready_pose_gives_the_franka_o_t_ee_of_the_real_robot(twin):
    # libfranka's O_T_EE at the "ready" joints with the Franka Hand: (0.307, 0, 0.487), pointing down.
    twin.data.qpos[twin._arm_qpos] = READY_POSE
    import mujoco

    mujoco.mj_forward(twin.model, twin.data)
    position, quaternion = twin.ee_pose()
    np.testing.assert_allclose(position, [0.307, 0.0, 0.487], atol=2e-3)
    assert abs(abs(float(np.dot(quaternion, DOWN))) - 1.0) < 1e-6
    twin.reset()


def test_the_arm_tracks_a_target_pose(twin):
    twin.reset()
    start, _ = twin.ee_pose()
    np.testing.assert_allclose(start, TwinConfig().start_position, atol=1e-4)
    goal_q = (Rotation.from_rotvec([0.0, 0.0, 0.3]) * Rotation.from_quat(DOWN)).as_quat()
    assert twin.set_target_pose(start + [0.04, -0.03, -0.05], goal_q)
    twin.step(1.0)
    position, quaternion = twin.ee_pose()
    np.testing.assert_allclose(position, start + [0.04, -0.03, -0.05], atol=3e-3)
    assert (Rotation.from_quat(quaternion).inv() * Rotation.from_quat(goal_q)).magnitude() < 0.02


def test_malformed_targets_are_ignored_and_counted(twin):
    twin.reset()
    before = twin.counters["target_ignored_invalid"]
    assert not twin.set_target_pose([np.nan, 0.0, 0.2], DOWN)
    assert not twin.set_target_pose([0.4, 0.0, 0.2], [0.0, 0.0, 0.0, 0.0])
    assert twin.counters["target_ignored_invalid"] == before + 2
    twin.step(0.2)
    np.testing.assert_allclose(twin.ee_pose()[0], TwinConfig().start_position, atol=2e-3)


def test_user_stop_brakes_the_arm_and_recovery_needs_the_button_released(twin):
    twin.reset()
    start, _ = twin.ee_pose()
    twin.press_user_stop()
    assert twin.mode is RobotMode.USER_STOPPED
    assert not twin.set_target_pose(start + [0.0, 0.05, 0.0], DOWN)
    twin.step(0.5)
    np.testing.assert_allclose(twin.ee_pose()[0], start, atol=1e-6)
    ok, message = twin.error_recovery()
    assert not ok and "release" in message
    assert twin.release_user_stop() and twin.mode is RobotMode.IDLE
    assert not twin.set_target_pose(start + [0.0, 0.05, 0.0], DOWN), "targets count only after error recovery"
    assert twin.error_recovery()[0] and twin.mode is RobotMode.MOVE
    assert twin.set_target_pose(start + [0.0, 0.05, 0.0], DOWN)
    twin.step(0.8)
    assert twin.ee_pose()[0][1] > start[1] + 0.04


def test_the_twin_can_pick_up_its_cube(twin):
    twin.reset()
    cube = twin.cube_position()
    assert twin.set_target_pose(cube + [0.0, 0.0, 0.10], DOWN)
    twin.step(1.0)
    assert twin.set_target_pose(cube + [0.0, 0.0, 0.0], DOWN)
    twin.step(1.0)
    goal = twin.start_gripper_goal("grasp", 0.0, speed=0.1, force=40.0, epsilon_inner=0.08, epsilon_outer=0.08)
    for _ in range(300):
        twin.step(0.01)
        if goal.done:
            break
    assert goal.success, goal.error
    assert 0.03 < twin.gripper_width() < 0.045           # the 4 cm cube is between the fingers
    assert twin.set_target_pose(cube + [0.0, 0.0, 0.15], DOWN)
    twin.step(1.5)
    assert twin.cube_position()[2] > cube[2] + 0.1, "the cube did not come up with the hand"


def test_move_goal_blocked_by_nothing_succeeds_and_bad_goals_fail(twin):
    twin.reset()
    goal = twin.start_gripper_goal("move", 0.03, speed=0.1)
    for _ in range(300):
        twin.step(0.01)
        if goal.done:
            break
    assert goal.success and abs(twin.gripper_width() - 0.03) < 0.005
    bad = twin.start_gripper_goal("move", 0.2, speed=0.1)
    assert bad.done and not bad.success and "out of range" in bad.error


def test_cameras_render_distinct_top_left_origin_views(twin):
    twin.reset()
    shoulder, wrist = twin.render("shoulder"), twin.render("wrist")
    assert shoulder.shape == wrist.shape == (128, 128, 3) and shoulder.dtype == np.uint8
    assert np.abs(shoulder.astype(int) - wrist.astype(int)).mean() > 20
    # Shoulder view: the table (warm brown, R > B) fills the bottom rows; the wrist camera looks down at it.
    bottom = shoulder[-16:].reshape(-1, 3).astype(int)
    assert (bottom[:, 0] - bottom[:, 2]).mean() > 30
    centre = wrist[40:88, 40:88].reshape(-1, 3).astype(int)
    assert (centre[:, 0] - centre[:, 2]).mean() > 30
    with pytest.raises(ValueError, match="unknown twin camera"):
        twin.render("side")
