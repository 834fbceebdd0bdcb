"""sim_bridge driven over ROS topics: the end effector follows commands, resets work, lockstep waits for rewards."""
import subprocess
import sys
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image

from sole_r1.msg import EEDeltaCommand, EpisodeInfo, ProgressEstimate
from sole_r1.srv import ResetEpisode
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.images import image_to_numpy
from sole_r1_ros.ros.msg_convert import pose_to_arrays


def _start(**params):
    cmd = [sys.executable, "-m", "sole_r1_ros.nodes.sim_bridge", "--ros-args"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={value}"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture
def bridge(request):
    process = _start(**request.param)
    yield process
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def _command(dx=0.0, dy=0.0, dz=0.0, gripper=1.0, stamp=None):
    msg = EEDeltaCommand(gripper=gripper)
    msg.translation.x, msg.translation.y, msg.translation.z = dx, dy, dz
    if stamp is not None:
        msg.header.stamp = stamp
    return msg


SUITES = [
    {"suite": "metaworld", "task": "reach-v3", "mode": "realtime", "control_rate": 20.0, "image_size": 64},
    {"suite": "robosuite", "task": "Lift", "mode": "realtime", "control_rate": 20.0, "image_size": 64},
]


@pytest.mark.slow
@pytest.mark.parametrize("bridge", SUITES, indirect=True, ids=["metaworld", "robosuite"])
def test_end_effector_follows_commands_and_resets(ros, bridge):
    poses = ros.collect(PoseStamped, conv.EE_POSE)
    frames = ros.collect(Image, conv.WRIST_IMAGE, conv.IMAGE_SUBSCRIBER_QOS)
    infos = ros.collect(EpisodeInfo, conv.EPISODE_INFO)
    commands = ros.node.create_publisher(EEDeltaCommand, conv.ROBOT_COMMAND, conv.RELIABLE_QOS)
    ros.wait_for(lambda: len(poses) > 5 and frames and commands.get_subscription_count() > 0, 120,
                 "the bridge's first observations")
    frame = image_to_numpy(frames[-1][1], "rgb8")
    assert frame.shape == (64, 64, 3) and frame.std() > 3
    start = pose_to_arrays(poses[-1][1])[0]
    for axis in (0, 2):  # +x, then +z, 1 cm per step for ~1.5 s
        before = pose_to_arrays(poses[-1][1])[0]
        delta = [0.0, 0.0, 0.0]
        delta[axis] = 0.01
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            commands.publish(_command(*delta))
            time.sleep(0.05)
        time.sleep(0.3)
        moved = pose_to_arrays(poses[-1][1])[0] - before
        assert moved[axis] > 0.03, f"EE moved {moved} for +{'xyz'[axis]} commands"
        assert moved[axis] > 2 * np.abs(np.delete(moved, axis)).max(), f"motion not along the command: {moved}"
    reset = ros.node.create_client(ResetEpisode, conv.RESET_EPISODE_SERVICE)
    response = ros.call(reset, ResetEpisode.Request(seed=0), timeout=60)
    assert response.success and response.episode_id == 2 and response.instruction
    time.sleep(0.5)
    after_reset = pose_to_arrays(poses[-1][1])[0]
    assert np.linalg.norm(after_reset - start) < 0.03, "seed 0 reset returns the arm to its start pose"
    steps = [m for _, m in infos if m.event == EpisodeInfo.EVENT_STEP]
    assert steps and steps[-1].true_success_known and 0.0 <= steps[-1].privileged_progress <= 100.0
    started = [m for _, m in infos if m.event == EpisodeInfo.EVENT_STARTED and m.episode_id == 2]
    assert started and started[0].task == response.instruction
    bad = ros.call(reset, ResetEpisode.Request(task_name="no-such-task", seed=-1), timeout=60)
    assert not bad.success and "no-such-task" in bad.message


@pytest.mark.parametrize("bridge", [{"suite": "metaworld", "task": "reach-v3", "mode": "lockstep", "image_size": 32,
                                     "reward_every": 3, "command_timeout": 60.0,
                                     "min_subscribers": 1}], indirect=True)
def test_lockstep_steps_once_per_command_and_waits_for_rewards(ros, bridge):
    poses = ros.collect(PoseStamped, conv.EE_POSE)
    ros.collect(Image, conv.WRIST_IMAGE, conv.IMAGE_SUBSCRIBER_QOS)  # min_subscribers: 1 -- the bridge waits for us
    commands = ros.node.create_publisher(EEDeltaCommand, conv.ROBOT_COMMAND, conv.RELIABLE_QOS)
    progress = ros.node.create_publisher(ProgressEstimate, conv.PROGRESS, conv.RELIABLE_QOS)
    ros.wait_for(lambda: poses and commands.get_subscription_count() > 0, 120, "the first observation")
    time.sleep(0.5)
    assert len(poses) == 1, "lockstep publishes one observation and waits"
    for step in range(6):
        stamp = poses[-1][1].header.stamp
        commands.publish(_command(0.01, stamp=stamp))
        if step % 3 == 0:  # a reward frame: no step until its estimate arrives
            time.sleep(0.5)
            assert len(poses) == step + 1, f"step {step}: stepped before the reward arrived"
            progress.publish(ProgressEstimate(header=poses[-1][1].header, progress=5.0, valid=True))
        ros.wait_for(lambda: len(poses) == step + 2, 30, f"observation {step + 1}")
    stale = poses[-2][1].header.stamp  # a command for an old observation is ignored
    commands.publish(_command(0.01, stamp=stale))
    time.sleep(0.5)
    assert len(poses) == 7


@pytest.mark.parametrize("bridge", [{"suite": "metaworld", "task": "reach-v3", "mode": "lockstep", "image_size": 32,
                                     "reward_every": 1000, "command_timeout": 60.0,
                                     "min_subscribers": 1}], indirect=True)
def test_a_nan_gripper_command_without_the_gate_is_held_counted_and_the_bridge_steps_on(ros, bridge):
    poses = ros.collect(PoseStamped, conv.EE_POSE)
    diagnostics = ros.collect(DiagnosticArray, conv.DIAGNOSTICS)
    ros.collect(Image, conv.WRIST_IMAGE, conv.IMAGE_SUBSCRIBER_QOS)
    commands = ros.node.create_publisher(EEDeltaCommand, conv.ROBOT_COMMAND, conv.RELIABLE_QOS)
    progress = ros.node.create_publisher(ProgressEstimate, conv.PROGRESS, conv.RELIABLE_QOS)
    ros.wait_for(lambda: poses and commands.get_subscription_count() > 0, 120, "the first observation")
    progress.publish(ProgressEstimate(header=poses[-1][1].header, progress=0.0, valid=True))  # frame 0 is scored
    commands.publish(_command(0.01, gripper=float("nan"), stamp=poses[-1][1].header.stamp))
    ros.wait_for(lambda: len(poses) == 2, 30, "the step that holds the NaN command")
    held = pose_to_arrays(poses[-1][1])[0] - pose_to_arrays(poses[0][1])[0]
    commands.publish(_command(0.01, stamp=poses[-1][1].header.stamp))
    ros.wait_for(lambda: len(poses) == 3, 30, "a step on the next valid command")
    moved = pose_to_arrays(poses[-1][1])[0] - pose_to_arrays(poses[-2][1])[0]
    assert abs(held[0]) < moved[0] / 2, f"the NaN command moved the arm {held}, a valid one {moved}"
    assert bridge.poll() is None

    def bad_commands():
        for _, array in diagnostics:
            for status in array.status:
                values = {kv.key: kv.value for kv in status.values}
                if status.name == "sole_r1: sim_bridge" and int(values.get("count_bad_commands", 0)) > 0:
                    return int(values["count_bad_commands"])
        return 0

    assert ros.wait_for(bad_commands, 10, "bad_commands on /diagnostics") == 1
