"""The recorder node: one bag per episode, what was published is what is read back, a SIGKILL loses only the tail."""
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image
from std_msgs.msg import Bool

from sole_r1.msg import EpisodeInfo, ProgressEstimate
from sole_r1_ros.logic import bag_files
from sole_r1_ros.logic.bags import find_bags, read_episode
from sole_r1_ros.logic.recording import (EVENT_ENDED, EVENT_STARTED, EVENT_STEP, BagRecorder, EpisodeEvent,
                                         EpisodeSplitter, Incoming)
from sole_r1_ros.nodes.recorder import SUBSCRIPTIONS
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.images import numpy_to_image


def test_bag_topics_are_the_conventions_topics():
    # logic/bag_files.py cannot import conventions (rclpy): its copy of the names must stay equal.
    assert {t.role: t.name for t in bag_files.TOPICS} == {role: s[0] for role, s in SUBSCRIPTIONS.items()}


def test_a_full_queue_drops_and_counts_instead_of_blocking():
    class SlowSplitter:
        bag, closed, dropped_in_bag = None, [], 0

        def handle(self, item):
            time.sleep(0.2)

        def tick(self, now_ns, flush_s):
            pass

        def close_bag(self, reason=""):
            return None

    recorder = BagRecorder(SlowSplitter(), queue_size=10)
    start = time.monotonic()
    accepted = [recorder.put(Incoming("/x", time.time_ns(), b"1")) for _ in range(50)]
    assert time.monotonic() - start < 0.1, "put() must never wait for the writer"
    stats = recorder.stats()
    assert accepted.count(False) == stats["dropped"] == stats["dropped_by_topic"]["/x"] >= 39
    recorder._stop.set()


def _episode(episode_id, event, stamp, privileged=float("nan"), reason=""):
    msg = EpisodeInfo(episode_id=episode_id, event=event, task="Reach the goal.", task_name="reach-v3",
                      end_reason=reason, true_success_known=event == EpisodeInfo.EVENT_ENDED, true_success=True,
                      privileged_progress=privileged)
    msg.header.stamp = stamp
    return msg


class FakeRobot:
    """Publishes what a bridge, reward node and safety gate would: frames, poses, estimates, episode events."""

    def __init__(self, ros):
        node = ros.node
        self.node = node
        self.images = {name: node.create_publisher(Image, topic, conv.RELIABLE_QOS)
                       for name, topic in (("shoulder", conv.SHOULDER_IMAGE), ("wrist", conv.WRIST_IMAGE))}
        self.pose = node.create_publisher(PoseStamped, conv.EE_POSE, conv.RELIABLE_QOS)
        self.progress = node.create_publisher(ProgressEstimate, conv.PROGRESS, conv.RELIABLE_QOS)
        self.info = node.create_publisher(EpisodeInfo, conv.EPISODE_INFO, conv.EPISODE_QOS)
        self.estop = node.create_publisher(Bool, conv.ESTOP_STATE, conv.LATCHED_QOS)
        self.sent: dict = {}  # episode id -> {stamp ns: shoulder frame}

    def run_episode(self, episode_id, frames, end=True, stop=None):
        self.info.publish(_episode(episode_id, EpisodeInfo.EVENT_STARTED, self.node.get_clock().now().to_msg()))
        sent = self.sent.setdefault(episode_id, {})
        for k in range(frames):
            if stop is not None and stop.is_set():
                break
            stamp = self.node.get_clock().now().to_msg()
            frame = np.random.default_rng(k).integers(0, 255, (48, 64, 3), dtype=np.uint8)
            self.images["shoulder"].publish(numpy_to_image(frame, "rgb8", stamp=stamp))
            self.images["wrist"].publish(numpy_to_image(255 - frame, "rgb8", stamp=stamp))
            pose = PoseStamped()
            pose.header.stamp, pose.pose.position.x = stamp, 0.01 * k
            self.pose.publish(pose)
            self.info.publish(_episode(episode_id, EpisodeInfo.EVENT_STEP, stamp, privileged=float(k)))
            if k % 5 == 0:
                self.progress.publish(ProgressEstimate(episode_id=episode_id, progress=float(k), valid=True,
                                                       query_index=k // 5, rewarder="oracle"))
            sent[stamp.sec * 1_000_000_000 + stamp.nanosec] = frame
            time.sleep(0.05)
        if end:
            self.info.publish(_episode(episode_id, EpisodeInfo.EVENT_ENDED, self.node.get_clock().now().to_msg(),
                                       reason="time_limit"))


@pytest.mark.slow
def test_recorder_writes_one_bag_per_episode_and_a_sigkill_keeps_the_flushed_part(ros, tmp_path):
    out = tmp_path / "bags"
    process = subprocess.Popen([sys.executable, "-m", "sole_r1_ros.nodes.recorder", "--ros-args",
                                "-p", f"output_dir:={out}", "-p", "rewarder:=oracle", "-p", "run_config:=task=reach",
                                "-p", "flush_s:=0.2", "-p", "tail_s:=0.3", "-p", "chunk_kib:=64"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        robot = FakeRobot(ros)
        ros.wait_for(lambda: robot.images["wrist"].get_subscription_count() > 0
                     and robot.info.get_subscription_count() > 0, 60, "the recorder's subscriptions")
        robot.estop.publish(Bool(data=False))
        robot.run_episode(1, 20)
        ros.wait_for(lambda: list(out.glob("episode_00001_*/metadata.yaml")), 20, "episode 1's bag to close")
        stop = threading.Event()
        second = threading.Thread(target=robot.run_episode, args=(2, 400), kwargs={"end": False, "stop": stop})
        second.start()
        time.sleep(2.0)
        process.send_signal(signal.SIGKILL)   # no chance to close: only the flushed chunks survive
        process.wait(10)
        stop.set()
        second.join(30)
    finally:
        if process.poll() is None:
            process.kill()
        log = process.stdout.read().decode(errors="replace")
    first_bag, second_bag = find_bags([out])
    first = read_episode(first_bag)
    assert not first.recovered and first.metadata["complete"] == "true", log
    assert first.metadata["episode_id"] == "1" and first.metadata["rewarder"] == "oracle"
    assert first.metadata["task"] == "Reach the goal." and first.metadata["end_reason"] == "time_limit"
    assert first.metadata["config_hash"] and first.metadata["git_revision"]
    assert first.counts[conv.SHOULDER_IMAGE] == first.counts[conv.WRIST_IMAGE] == 20
    assert first.counts[conv.EE_POSE] == 20 and first.counts[conv.PROGRESS] == 4
    assert first.counts[conv.EPISODE_INFO] == 22 and first.true_success is True
    assert first.counts[conv.ESTOP_STATE] == 1, "the latched e-stop state, published before the episode"
    assert list(first.camera_stamps["shoulder"]) == sorted(robot.sent[1]), "every frame, in order"
    for index, frame in enumerate(first.frames("shoulder", range(20))):
        assert np.array_equal(frame, robot.sent[1][int(first.camera_stamps["shoulder"][index])])
    assert np.array_equal(first.privileged_progress(), np.arange(20.0))
    # A standard, indexed MCAP file (what rosbag2's mcap plugin reads): ros2 profile, zstd chunks, full summary.
    with open(next(first_bag.glob("*.mcap")), "rb") as handle:
        reader = make_reader(handle)
        summary = reader.get_summary()
        assert reader.get_header().profile == "ros2" and len(summary.channels) == len(bag_files.TOPICS)
        assert {c.compression for c in summary.chunk_indexes} == {"zstd"} and len(summary.chunk_indexes) >= 2
        assert {c.topic: summary.statistics.channel_message_counts[c.id] for c in summary.channels.values()} \
            == first.counts

    second = read_episode(second_bag, scratch=tmp_path / "recovered")
    assert second.recovered and second.metadata["episode_id"] == "2" and second.metadata["rewarder"] == "oracle"
    sent = sorted(robot.sent[2])
    recovered = list(second.camera_stamps["shoulder"])
    # Flushed every 0.2 s while ~40 frames went out in 2 s: all but the last unflushed ones survive, in order.
    assert len(recovered) >= 25 and recovered == sent[: len(recovered)], (len(recovered), len(sent))
    last = second.frames("shoulder", [len(recovered) - 1])[0]
    assert np.array_equal(last, robot.sent[2][int(recovered[-1])])


class TestEpisodeSplitter:
    """Which messages go into which bag, without ROS (payloads are opaque bytes here)."""

    def make(self, tmp_path):
        self.closed = []
        return EpisodeSplitter(tmp_path, bag_files.TOPICS, {"rewarder": "x"}, preroll_s=1.0, tail_s=0.5,
                               on_closed=lambda path, counts: self.closed.append((path, counts)))

    @staticmethod
    def event(kind, episode_id, stamp, **fields):
        return Incoming(conv.EPISODE_INFO, stamp + 1000, b"e", EpisodeEvent(kind, episode_id, stamp, **fields))

    @staticmethod
    def frame(received):
        return Incoming(conv.SHOULDER_IMAGE, received, b"f")

    def test_frames_that_overtake_started_and_the_latched_estop_open_the_bag(self, tmp_path):
        splitter = self.make(tmp_path)
        s = 10**9
        splitter.handle(Incoming(conv.ESTOP_STATE, 1 * s, b"b"))       # latched, long before the episode
        splitter.handle(self.frame(50 * s))                             # the previous episode's tail: left out
        splitter.handle(self.frame(100 * s + 5))                        # published after STARTED, arrived first
        splitter.handle(self.event(EVENT_STARTED, 3, 100 * s, task="Reach."))
        splitter.handle(self.frame(100 * s + 10))
        splitter.handle(self.event(EVENT_ENDED, 3, 101 * s, end_reason="time_limit", true_success=True))
        splitter.handle(self.frame(101 * s + 100))                      # within the tail: still episode 3
        splitter.tick(103 * s, flush_s=1.0)
        [(path, counts)] = self.closed
        assert counts[conv.SHOULDER_IMAGE] == 3 and counts[conv.ESTOP_STATE] == 1 and counts[conv.EPISODE_INFO] == 2
        metadata = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]["custom_data"]
        assert metadata["end_reason"] == "time_limit" and metadata["true_success"] == "true"
        assert metadata["episode_id"] == "3" and metadata["task"] == "Reach." and metadata["rewarder"] == "x"

    def test_replayed_or_finished_episode_events_open_no_bag_but_a_restarted_bridge_does(self, tmp_path):
        splitter = self.make(tmp_path)
        s = 10**9
        splitter.handle(self.event(EVENT_STARTED, 5, 100 * s))
        splitter.handle(self.event(EVENT_ENDED, 5, 110 * s))
        splitter.handle(self.event(EVENT_STEP, 5, 111 * s))            # a simulator steps on until the reset
        splitter.handle(self.event(EVENT_STARTED, 5, 100 * s))         # transient-local history, delivered again
        splitter.handle(self.event(EVENT_STARTED, 4, 90 * s))
        splitter.tick(112 * s, flush_s=1.0)
        assert len(self.closed) == 1 and splitter.bag is None
        splitter.handle(self.event(EVENT_STARTED, 1, 200 * s))         # the bridge restarted: ids start again
        splitter.handle(self.event(EVENT_STARTED, 2, 210 * s))         # no ENDED for 1: closed when 2 starts
        assert [p.name.split("_")[1] for p, _ in self.closed] == ["00005", "00001"]
        assert splitter.close_bag("shutdown").name.startswith("episode_00002")
        ends = [yaml.safe_load((p / "metadata.yaml").read_text())["rosbag2_bagfile_information"]["custom_data"]
                ["end_reason"] for p, _ in self.closed]
        assert ends == ["unknown", "next_episode", "shutdown"]
