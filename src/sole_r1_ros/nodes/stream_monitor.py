"""stream_monitor: report what arrives on the camera (and progress) topics -- rates, sizes, latency.

Used by the replay demo to print what the graph saw, and handy on a real robot to check the cameras before
training (`sole-r1 launch video_replay` or add it to any graph).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Optional

import numpy as np
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import Image

from sole_r1.msg import ProgressEstimate
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.conventions import param
from sole_r1_ros.ros.images import ImageConversionError, image_to_numpy


@dataclasses.dataclass
class StreamMonitorConfig:
    """Parameters of stream_monitor."""

    report_period: float = param(2.0, "seconds between log reports", low=0.1, high=3600.0)
    stop_after: float = param(0.0, "exit (code 0) after this many seconds with a final summary; 0 = run forever",
                              low=0.0, high=1e6)


@dataclasses.dataclass
class StreamStats:
    """Counters of one stream."""

    count: int = 0
    first: Optional[float] = None
    last: Optional[float] = None
    shape: tuple = ()
    mean_intensity: float = float("nan")
    latencies: list = dataclasses.field(default_factory=list)
    errors: int = 0

    def rate(self) -> float:
        """Mean message rate (Hz) between the first and the last message."""
        if self.count < 2 or self.first is None or self.last is None or self.last <= self.first:
            return 0.0
        return (self.count - 1) / (self.last - self.first)

    def summary(self) -> str:
        """One line for the log."""
        if self.count == 0:
            return "no messages"
        lat = np.asarray(self.latencies[-500:]) * 1e3
        latency = f", latency p50 {np.percentile(lat, 50):.1f} ms p99 {np.percentile(lat, 99):.1f} ms" if lat.size else ""
        shape = f", {self.shape[1]}x{self.shape[0]}" if len(self.shape) >= 2 else ""
        errors = f", {self.errors} malformed" if self.errors else ""
        return f"{self.count} msgs at {self.rate():.1f} Hz{shape}, mean intensity {self.mean_intensity:.0f}{latency}{errors}"


class StreamMonitor(Node):
    """Subscribes the camera and progress topics and logs their statistics."""

    def __init__(self) -> None:
        super().__init__("stream_monitor")
        self.config = conv.declare_config(self, StreamMonitorConfig)
        self.stats = {"shoulder": StreamStats(), "wrist": StreamStats(), "progress": StreamStats()}
        self.last_progress: Optional[ProgressEstimate] = None
        for name, topic in (("shoulder", conv.SHOULDER_IMAGE), ("wrist", conv.WRIST_IMAGE)):
            self.create_subscription(Image, topic, lambda m, n=name: self._on_image(n, m), conv.IMAGE_SUBSCRIBER_QOS)
        self.create_subscription(ProgressEstimate, conv.PROGRESS, self._on_progress, conv.RELIABLE_QOS)
        self._start = time.monotonic()
        self.create_timer(self.config.report_period, self._report)

    def _on_image(self, name: str, msg: Image) -> None:
        stats = self.stats[name]
        now = time.monotonic()
        stats.count += 1
        stats.first = now if stats.first is None else stats.first
        stats.last = now
        sent = Time.from_msg(msg.header.stamp).nanoseconds
        if sent:
            stats.latencies.append((self.get_clock().now().nanoseconds - sent) * 1e-9)
        try:
            array = image_to_numpy(msg, "rgb8")
        except ImageConversionError as exc:
            stats.errors += 1
            self.get_logger().warn(f"{name}: malformed image ({exc})", throttle_duration_sec=5.0)
            return
        stats.shape = array.shape
        stats.mean_intensity = float(array.mean())

    def _on_progress(self, msg: ProgressEstimate) -> None:
        stats = self.stats["progress"]
        now = time.monotonic()
        stats.count += 1
        stats.first = now if stats.first is None else stats.first
        stats.last = now
        self.last_progress = msg

    def _report(self) -> None:
        for name, stats in self.stats.items():
            if name == "progress" and stats.count == 0:
                continue
            self.get_logger().info(f"{name}: {stats.summary()}")
        if self.last_progress is not None:
            p = self.last_progress
            self.get_logger().info(f"last progress {p.progress:.0f}% valid={p.valid} ({p.rewarder})")
        if self.config.stop_after and time.monotonic() - self._start >= self.config.stop_after:
            self.get_logger().info("stop_after reached: final summary above")
            raise SystemExit(0)


def main(args: Optional[list[str]] = None) -> int:
    """Run the stream_monitor node."""
    return conv.run_node(StreamMonitor, args)


if __name__ == "__main__":
    raise SystemExit(main())
