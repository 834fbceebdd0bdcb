"""foxglove_view: a live view of the graph without rviz -- a foxglove-sdk WebSocket server for the Foxglove app.

Serves both cameras (foxglove.CompressedImage JPEG/PNG, or foxglove.RawImage), the rewarder's progress and chain of
thought (JSON + a foxglove.Log line per answer), the end-effector pose (foxglove.PoseInFrame), the gated commands,
episode events and the e-stop latch (JSON). Open the Foxglove app, "Open connection" -> ws://127.0.0.1:8765, and
import config/foxglove/sole_r1_layout.json. The server binds to 127.0.0.1 by default: pass host:=0.0.0.0 only on
a trusted network (anyone who connects sees the cameras).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import foxglove
from foxglove.channels import CompressedImageChannel, LogChannel, PoseInFrameChannel, RawImageChannel
from foxglove.messages import (CompressedImage, Log, LogLevel, Pose, PoseInFrame, Quaternion, RawImage, Timestamp,
                               Vector3)
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Bool

from sole_r1.msg import EEDeltaCommand, EpisodeInfo, ProgressEstimate
from sole_r1_ros.logic import live_view
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.conventions import ConfigError, param
from sole_r1_ros.ros.images import ImageConversionError, image_to_numpy

PROGRESS_LOG = "/reward/chain_of_thought"   # foxglove.Log: one line per answer (the Log panel shows the CoT)


@dataclasses.dataclass
class FoxgloveViewConfig:
    """Parameters of foxglove_view."""

    host: str = param("127.0.0.1", "address the WebSocket server binds to (0.0.0.0: every interface, trusted LAN only)")
    port: int = param(8765, "WebSocket port (0: any free port, logged at start)", low=0, high=65535)
    image_format: str = param("jpeg", "camera encoding sent to clients", choices=live_view.IMAGE_FORMATS)
    jpeg_quality: int = param(80, "JPEG quality (image_format jpeg)", low=1, high=100)
    max_image_rate: float = param(10.0, "images per second per camera sent at most (0: every frame)", low=0.0,
                                  high=1000.0)
    name: str = param("sole_r1", "server name shown by the Foxglove app")

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise ConfigError("parameter 'host' is empty: use 127.0.0.1 (this machine) or 0.0.0.0 (every interface)")


class FoxgloveView(Node):
    """Forwards camera, reward, pose, command, episode and e-stop topics to foxglove-sdk channels."""

    def __init__(self) -> None:
        super().__init__("foxglove_view")
        self.config = cfg = conv.declare_config(self, FoxgloveViewConfig)
        self._fox = foxglove.Context()
        try:
            self._server = foxglove.start_server(name=cfg.name, host=cfg.host, port=cfg.port, context=self._fox)
        except Exception as exc:  # noqa: BLE001 -- the SDK raises its own error types for a busy port
            raise ConfigError(f"cannot serve on {cfg.host}:{cfg.port} ({exc}): pick another port:=") from exc
        image_channel = RawImageChannel if cfg.image_format == "raw" else CompressedImageChannel
        self._cameras = {}
        for name, topic in (("shoulder", conv.SHOULDER_IMAGE), ("wrist", conv.WRIST_IMAGE)):
            self._cameras[topic] = (image_channel(topic, context=self._fox),
                                    live_view.RateLimiter(cfg.max_image_rate))
            self.create_subscription(Image, topic, lambda m, t=topic: self._on_image(t, m), conv.IMAGE_SUBSCRIBER_QOS)
        self._progress = self._json_channel(conv.PROGRESS, "sole_r1.ProgressEstimate")
        self._cot = LogChannel(PROGRESS_LOG, context=self._fox)
        self._command = self._json_channel(conv.ROBOT_COMMAND, "sole_r1.EEDeltaCommand")
        self._estop = self._json_channel(conv.ESTOP_STATE, "sole_r1.EStop")
        self._episode = self._json_channel(conv.EPISODE_INFO, "sole_r1.EpisodeInfo")
        self._pose = PoseInFrameChannel(conv.EE_POSE, context=self._fox)
        self.create_subscription(ProgressEstimate, conv.PROGRESS, self._on_progress, conv.RELIABLE_QOS)
        self.create_subscription(EEDeltaCommand, conv.ROBOT_COMMAND,
                                 lambda m: self._command.log(live_view.command_payload(m)), conv.RELIABLE_QOS)
        self._estopped: Optional[bool] = None
        self.create_subscription(Bool, conv.ESTOP_STATE, self._on_estop, conv.LATCHED_QOS)
        # The e-stop latch is published once; repeating it lets a viewer that connects later see it (no latching here).
        self.create_timer(1.0, self._repeat_estop)
        self.create_subscription(EpisodeInfo, conv.EPISODE_INFO,
                                 lambda m: self._episode.log(live_view.episode_payload(m)),
                                 conv.EPISODE_SUBSCRIBER_QOS)
        self.create_subscription(PoseStamped, conv.EE_POSE, self._on_pose, conv.RELIABLE_QOS)
        self.get_logger().info(f"live view on ws://{cfg.host}:{self._server.port} (foxglove-sdk); Foxglove app: "
                               "Open connection -> that address, then import config/foxglove/sole_r1_layout.json")

    def _json_channel(self, topic: str, schema: str) -> foxglove.Channel:
        return foxglove.Channel(topic, schema=foxglove.Schema(name=schema, encoding="jsonschema",
                                                              data=live_view.json_schema(schema)),
                                message_encoding="json", context=self._fox)

    def _on_image(self, topic: str, msg: Image) -> None:
        channel, limiter = self._cameras[topic]
        if not channel.has_sinks() or not limiter.ready():
            return  # nobody watching (or too soon): no encoding cost at all
        stamp = Timestamp(msg.header.stamp.sec, msg.header.stamp.nanosec)
        try:
            rgb = image_to_numpy(msg, "rgb8")
        except ImageConversionError as exc:
            self.get_logger().warn(f"{topic}: {exc}", throttle_duration_sec=10.0)
            return
        if self.config.image_format == "raw":
            channel.log(RawImage(timestamp=stamp, frame_id=msg.header.frame_id, width=rgb.shape[1],
                                 height=rgb.shape[0], encoding="rgb8", step=rgb.shape[1] * 3, data=rgb.tobytes()))
            return
        data = live_view.encode_image(rgb, self.config.image_format, self.config.jpeg_quality)
        channel.log(CompressedImage(timestamp=stamp, frame_id=msg.header.frame_id, data=data,
                                    format=self.config.image_format))

    def _on_progress(self, msg: ProgressEstimate) -> None:
        self._progress.log(live_view.progress_payload(msg))
        level = LogLevel.Info if msg.valid else LogLevel.Warning
        self._cot.log(Log(timestamp=Timestamp(msg.header.stamp.sec, msg.header.stamp.nanosec), level=level,
                          message=live_view.progress_text(msg), name="reward_node"))

    def _on_estop(self, msg: Bool) -> None:
        self._estopped = bool(msg.data)
        self._estop.log({"estopped": self._estopped})

    def _repeat_estop(self) -> None:
        if self._estopped is not None:
            self._estop.log({"estopped": self._estopped})

    def _on_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        self._pose.log(PoseInFrame(timestamp=Timestamp(msg.header.stamp.sec, msg.header.stamp.nanosec),
                                   frame_id=msg.header.frame_id,
                                   pose=Pose(position=Vector3(x=p.x, y=p.y, z=p.z),
                                             orientation=Quaternion(x=q.x, y=q.y, z=q.z, w=q.w))))

    def close(self) -> None:
        """Stop the WebSocket server."""
        self._server.stop()


def main(args: Optional[list[str]] = None) -> int:
    """Run the foxglove_view node."""
    return conv.run_node(FoxgloveView, args)


if __name__ == "__main__":
    raise SystemExit(main())
