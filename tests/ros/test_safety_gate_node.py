"""safety_gate node over ROS: e-stop via topic / service / robot mode, watchdog holds, rejections, reset."""
import subprocess
import sys
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from sole_r1.msg import EEDeltaCommand, ProgressEstimate
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.images import numpy_to_image
from sole_r1_ros.ros.msg_convert import pose_from_arrays

PARAMS = {"camera_timeout_s": 0.4, "proprio_timeout_s": 0.4, "reward_timeout_s": 0.8, "command_timeout_s": 0.6,
          "max_command_rate_hz": 100.0, "hold_rate_hz": 20.0, "diagnostics_period_s": 0.2,
          "workspace_min": [0.3, -0.3, 0.05], "workspace_max": [0.7, 0.3, 0.5], "max_translation_m": 0.03}


@pytest.fixture
def gate_process(request):
    args = [f"{k}:={v}" for k, v in {**PARAMS, **getattr(request, "param", {})}.items()]
    cmd = [sys.executable, "-m", "sole_r1_ros.nodes.safety_gate", "--ros-args"]
    for arg in args:
        cmd += ["-p", arg.replace(" ", "")]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    yield process
    process.terminate()
    process.wait(10)


class Feeder:
    """Keeps the gate's watched inputs fresh (cameras, pose, reward) unless told to stop one."""

    def __init__(self, ros):
        self.ros = ros
        node = ros.node
        self.cams = [node.create_publisher(Image, t, conv.IMAGE_PUBLISHER_QOS) for t in (conv.SHOULDER_IMAGE,
                                                                                          conv.WRIST_IMAGE)]
        self.pose = node.create_publisher(PoseStamped, conv.EE_POSE, conv.RELIABLE_QOS)
        self.progress = node.create_publisher(ProgressEstimate, conv.PROGRESS, conv.RELIABLE_QOS)
        self.command = node.create_publisher(EEDeltaCommand, conv.LEARNER_COMMAND, conv.RELIABLE_QOS)
        self.mode = node.create_publisher(String, conv.ROBOT_MODE, conv.LATCHED_QOS)
        self.estop = node.create_publisher(Bool, conv.ESTOP, conv.LATCHED_QOS)
        self.out = ros.collect(EEDeltaCommand, conv.ROBOT_COMMAND)
        self.state = ros.collect(Bool, conv.ESTOP_STATE, conv.LATCHED_QOS)
        self.diag = ros.collect(DiagnosticArray, conv.DIAGNOSTICS)
        self.image = numpy_to_image(np.zeros((8, 8, 3), np.uint8))
        self.paused = set()
        self.ee = [0.5, 0.0, 0.2]   # the measured EE position the feeder reports

    def feed(self, seconds, command=(0.01, 0.0, 0.0), gripper=1.0):
        """Publish inputs at ~20 Hz and a learner command at 10 Hz for `seconds`."""
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            if "camera" not in self.paused:
                for cam in self.cams:
                    cam.publish(self.image)
            if "pose" not in self.paused:
                self.pose.publish(pose_from_arrays(self.ee, [1, 0, 0, 0]))
            if "reward" not in self.paused:
                self.progress.publish(ProgressEstimate(progress=10.0, valid=True))
            if command is not None and "command" not in self.paused and i % 2 == 0:
                msg = EEDeltaCommand(gripper=gripper, episode_id=3)
                msg.translation.x, msg.translation.y, msg.translation.z = command
                self.command.publish(msg)
            i += 1
            time.sleep(0.05)

    def recent(self, since):
        return [m for t, m in self.out if t >= since]

    def counters(self):
        values = {kv.key: kv.value for kv in self.diag[-1][1].status[0].values}
        return {k[len("count_"):]: int(v) for k, v in values.items() if k.startswith("count_")}


def _wait_connected(ros, feeder):
    ros.wait_for(lambda: feeder.command.get_subscription_count() > 0 and feeder.state, 30, "the safety gate")


def test_commands_pass_when_inputs_fresh_then_stale_inputs_hold(ros, gate_process):
    feeder = Feeder(ros)
    _wait_connected(ros, feeder)
    feeder.feed(1.0)
    t0 = time.monotonic()
    feeder.feed(1.0)
    passed = [m for m in feeder.recent(t0) if not m.hold]
    assert passed and all(abs(m.translation.x - 0.01) < 1e-9 and m.episode_id == 3 for m in passed)
    assert not any(m.hold for m in feeder.recent(t0))
    for stream in ("camera", "reward", "command", "pose"):
        feeder.paused = {stream}
        feeder.feed(1.2)  # longer than that stream's timeout
        t1 = time.monotonic()
        feeder.feed(0.5)
        recent = feeder.recent(t1)
        assert recent and all(m.hold for m in recent), f"stale {stream} must hold"
        assert all(m.translation.x == 0.0 for m in recent)
        feeder.paused = set()
        feeder.feed(1.0)
        t2 = time.monotonic()
        feeder.feed(0.5)
        assert any(not m.hold for m in feeder.recent(t2)), f"fresh {stream} must release the hold"
    counts = feeder.counters()
    for reason in ("stale_camera", "stale_reward", "stale_command", "stale_proprio"):
        assert counts.get(reason, 0) > 0, reason


def test_nan_and_out_of_box_commands_are_rejected_and_counted(ros, gate_process):
    feeder = Feeder(ros)
    _wait_connected(ros, feeder)
    feeder.feed(1.0)
    t0 = time.monotonic()
    feeder.feed(0.6, command=(float("nan"), 0.0, 0.0))
    assert all(m.hold for m in feeder.recent(t0))
    t1 = time.monotonic()
    feeder.feed(0.6, command=(0.0, 0.0, -0.5))  # EE at z=0.2: a 0.5 m dive; limits clip it to 3 cm downwards
    out = [m for m in feeder.recent(t1) if not m.hold]
    assert out and all(abs(m.translation.z + 0.03) < 1e-9 for m in out)
    feeder.ee = [0.5, 0.0, 0.06]  # 1 cm above the box floor
    feeder.feed(0.5, command=(0.0, 0.0, -0.02))  # let the gate see the new pose (pose and commands race)
    t2 = time.monotonic()
    feeder.feed(0.5, command=(0.0, 0.0, -0.02))
    out = [m for m in feeder.recent(t2) if not m.hold]
    assert out and all(abs(m.translation.z + 0.01) < 1e-6 for m in out)  # stops at the wall
    counts = feeder.counters()
    assert counts["nonfinite_command"] > 0 and counts["translation_clipped"] > 0 and counts["workspace_clipped"] > 0


@pytest.mark.parametrize("how", ["topic", "service", "robot_mode"])
def test_estop_latches_holds_and_reset_resumes(ros, gate_process, how):
    feeder = Feeder(ros)
    _wait_connected(ros, feeder)
    feeder.feed(1.0)
    assert feeder.state[-1][1].data is False
    if how == "topic":
        feeder.estop.publish(Bool(data=True))
    elif how == "service":
        response = ros.call(ros.node.create_client(Trigger, conv.TRIGGER_ESTOP_SERVICE), Trigger.Request())
        assert response.success
    else:
        feeder.mode.publish(String(data="USER_STOPPED"))
    ros.wait_for(lambda: feeder.state[-1][1].data is True, 5, "the e-stop latch")
    t0 = time.monotonic()
    feeder.feed(1.0)
    recent = feeder.recent(t0)
    assert recent and all(m.hold for m in recent)
    reset = ros.node.create_client(Trigger, conv.RESET_ESTOP_SERVICE)
    if how == "robot_mode":
        refused = ros.call(reset, Trigger.Request())
        assert not refused.success and "USER_STOPPED" in refused.message
        feeder.mode.publish(String(data="IDLE"))
        feeder.feed(0.3)
    if how == "topic":
        feeder.estop.publish(Bool(data=False))  # does not release by itself
        feeder.feed(0.5)
        assert feeder.state[-1][1].data is True
    assert ros.call(reset, Trigger.Request()).success
    ros.wait_for(lambda: feeder.state[-1][1].data is False, 5, "the released latch")
    feeder.feed(1.0)
    t1 = time.monotonic()
    feeder.feed(0.6)
    assert any(not m.hold for m in feeder.recent(t1)), "commands pass again after reset"


@pytest.mark.parametrize("gate_process", [{"use_sim_time": "true"}], indirect=True)
def test_watchdogs_run_on_a_steady_clock_while_ros_time_stands_still(ros, gate_process):
    clock = ros.node.create_publisher(Clock, "/clock", 10)
    feeder = Feeder(ros)
    _wait_connected(ros, feeder)
    for _ in range(5):   # a paused simulator: ROS time stops here
        clock.publish(Clock(clock=Time(sec=1000)))
        time.sleep(0.05)
    feeder.feed(1.0)
    feeder.paused = {"camera"}
    feeder.feed(1.2)
    t0 = time.monotonic()
    feeder.feed(0.5)
    recent = feeder.recent(t0)
    assert recent and all(m.hold for m in recent), "a stale camera must hold, whatever ROS time does"
