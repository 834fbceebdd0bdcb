"""recorder: writes each episode's topics to its own rosbag2 bag (MCAP storage, zstd chunks) without slowing the graph.

Recorded: both cameras, /robot/ee_pose, /robot/joint_states, /robot/gripper, the gated /robot/command,
/reward/progress, /episode/info and /safety/estopped -- as the CDR bytes received (raw subscriptions), stamped with
their receive time as `ros2 bag record` does. EpisodeInfo STARTED opens `output_dir/episode_<id>_<time>/`, ENDED
closes it; each bag's metadata holds the task, rewarder, config hash, git revision and episode id. Callbacks only
queue bytes for a writer thread; a full queue drops messages and counts them on /diagnostics. Chunks are flushed
every `flush_s`, so a crash loses at most the last second of the open bag (`sole-r1 replay` recovers the rest).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool

from sole_r1.msg import EEDeltaCommand, EpisodeInfo, ProgressEstimate
from sole_r1_ros.logic.bag_files import TOPIC_BY_ROLE, BagTopic
from sole_r1_ros.logic.recording import BagRecorder, EpisodeEvent, EpisodeSplitter, Incoming, git_revision
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.conventions import param

# role -> (topic, message class, subscription QoS). Cameras: reliable with a deeper queue than the reward node's,
# since this callback only copies bytes; latched topics transient-local so a late recorder still gets them.
SUBSCRIPTIONS = {
    "shoulder": (conv.SHOULDER_IMAGE, Image, conv.RELIABLE_QOS),
    "wrist": (conv.WRIST_IMAGE, Image, conv.RELIABLE_QOS),
    "ee_pose": (conv.EE_POSE, PoseStamped, conv.RELIABLE_QOS),
    "joint_states": (conv.JOINT_STATES, JointState, conv.RELIABLE_QOS),
    "gripper": (conv.GRIPPER_STATE, JointState, conv.RELIABLE_QOS),
    "command": (conv.ROBOT_COMMAND, EEDeltaCommand, conv.RELIABLE_QOS),
    "progress": (conv.PROGRESS, ProgressEstimate, conv.RELIABLE_QOS),
    "episode": (conv.EPISODE_INFO, EpisodeInfo, conv.EPISODE_SUBSCRIBER_QOS),
    "estop": (conv.ESTOP_STATE, Bool, conv.LATCHED_QOS),
}


@dataclasses.dataclass
class RecorderConfig:
    """Parameters of recorder."""

    output_dir: str = param("bags", "folder for the episode bags (one rosbag2 folder per episode)")
    rewarder: str = param("", "rewarder spec of this run, written into each bag's metadata")
    run_config: str = param("", "the run's settings as text (e.g. graph arguments): stored, and hashed as config_hash")
    queue_size: int = param(2000, "messages queued for the writer thread; beyond it new messages are dropped",
                            low=10, high=1_000_000)
    chunk_kib: int = param(256, "MCAP chunk size, KiB (a crash loses at most the open chunk)", low=8, high=65536)
    flush_s: float = param(1.0, "close and flush the open chunk at least this often, seconds", low=0.05, high=60.0)
    preroll_s: float = param(2.0, "keep this much of the stream between episodes (frames that overtake STARTED)",
                             low=0.0, high=30.0)
    tail_s: float = param(0.5, "keep recording this long after ENDED (the episode's last estimates), seconds",
                          low=0.0, high=30.0)


class Recorder(Node):
    """Queues every recorded message for the bag writer thread; publishes its counters on /diagnostics."""

    def __init__(self) -> None:
        super().__init__("recorder")
        self.config = cfg = conv.declare_config(self, RecorderConfig)
        topics = [BagTopic(role, topic, TOPIC_BY_ROLE[role].msgtype, TOPIC_BY_ROLE[role].latched)
                  for role, (topic, _, _) in SUBSCRIPTIONS.items()]
        metadata = {"rewarder": cfg.rewarder, "run_config": cfg.run_config,
                    "config_hash": hashlib.sha256(cfg.run_config.encode()).hexdigest()[:16],
                    "git_revision": git_revision(), "ros_distro": os.environ.get("ROS_DISTRO", ""),
                    "recorded_by": "sole_r1 recorder"}
        self._splitter = EpisodeSplitter(cfg.output_dir, topics, metadata, cfg.preroll_s, cfg.tail_s,
                                         cfg.chunk_kib * 1024, on_closed=self._on_closed)
        self._recorder = BagRecorder(self._splitter, cfg.queue_size, cfg.flush_s, on_error=self._on_error)
        for role, (topic, msg_type, qos) in SUBSCRIPTIONS.items():
            callback = self._on_episode if role == "episode" else (lambda data, t=topic: self._queue(t, data))
            self.create_subscription(msg_type, topic, callback, qos, raw=True)
        self._diagnostics = self.create_publisher(DiagnosticArray, conv.DIAGNOSTICS, conv.RELIABLE_QOS)
        self._reported_drops = 0
        self.create_timer(1.0, self._report)
        self.get_logger().info(f"recording {len(topics)} topics, one bag per episode, into "
                               f"{Path(cfg.output_dir).resolve()} (git {metadata['git_revision']})")

    def _queue(self, topic: str, data: bytes, event: Optional[EpisodeEvent] = None) -> None:
        # System time, as rosbag2 records receive time; the writer thread compares it with time.time_ns().
        self._recorder.put(Incoming(topic, time.time_ns(), data, event))

    def _on_episode(self, data: bytes) -> None:
        msg = deserialize_message(data, EpisodeInfo)
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        event = EpisodeEvent(int(msg.event), int(msg.episode_id), stamp, msg.task, msg.task_name,
                             int(msg.step_count), msg.end_reason,
                             bool(msg.true_success) if msg.true_success_known else None)
        self._queue(conv.EPISODE_INFO, data, event)

    def _on_closed(self, path: Path, counts: dict) -> None:
        size = sum(f.stat().st_size for f in path.iterdir()) / 1e6
        frames = counts.get(conv.SHOULDER_IMAGE, 0)
        self.get_logger().info(f"bag closed: {path} ({sum(counts.values())} messages, {frames} frame pairs, "
                               f"{size:.1f} MB)")

    def _on_error(self, message: str) -> None:
        self.get_logger().error(f"bag write failed ({message}): the open bag is abandoned (its flushed chunks stay "
                                "readable); recording resumes at the next episode -- check disk space and "
                                f"permissions of {self.config.output_dir}")

    def _report(self) -> None:
        stats = self._recorder.stats()
        new_drops = stats["dropped"] - self._reported_drops
        self._reported_drops = stats["dropped"]
        if stats["errors"]:
            level, message = DiagnosticStatus.ERROR, f"write errors: {stats['last_error']}"
        elif new_drops:
            level, message = DiagnosticStatus.WARN, f"dropped {new_drops} message(s) in 1 s: the disk is too slow"
            self.get_logger().warn(f"{message} ({stats['dropped_by_topic']})", throttle_duration_sec=10.0)
        else:
            level, message = DiagnosticStatus.OK, f"recording {stats['recording']}" if stats["recording"] else "idle"
        self._diagnostics.publish(conv.diagnostics(self, "recorder", level, message, stats))

    def close(self) -> None:
        """Write what is queued and finish the open bag."""
        path = self._recorder.close()
        if path is not None:
            self.get_logger().info(f"stopped: finished {path}")


def main(args: Optional[list[str]] = None) -> int:
    """Run the recorder node."""
    return conv.run_node(Recorder, args)


if __name__ == "__main__":
    raise SystemExit(main())
