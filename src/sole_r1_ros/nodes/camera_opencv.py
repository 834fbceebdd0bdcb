"""camera_opencv: one camera (OpenCV / V4L2 device, or a video file standing in for one) -> Image + CameraInfo.

Publishes `/cameras/<name>/image_raw` (rgb8) and `/cameras/<name>/camera_info` at `fps`, each frame cropped and
resized like SERL's Franka envs (sole_r1_ros.logic.cameras). `device` is a V4L2 index ("0"), a device path
(prefer the stable `/dev/v4l/by-id/...`), or a video file (replayed at `fps`, looping). Live devices are read by
a background thread that keeps only the newest frame; a device that stops delivering is reopened every
`reopen_period_s` (the safety gate's camera watchdog holds the robot meanwhile).

The same node serves the RealSense backend (`backend: realsense`, see camera_realsense.py): graph files cannot pick
an executable by argument, so config/graphs/real_franka.yaml starts this executable with the backend as a
parameter. `standby: true` opens nothing and publishes nothing (with use_fake_hardware the twin renders the views).
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.duration import Duration
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.logic.camera_sources import CameraConfig, open_source
from sole_r1_ros.logic.cameras import FrameError, LatestFrameGrabber, fov_intrinsics
from sole_r1_ros.ros.conventions import ConfigError
from sole_r1_ros.ros.images import camera_info_from_intrinsics, numpy_to_image
from sole_r1_ros.ros.static_tf import StaticTransforms


class CameraNode(Node):
    """Publishes one camera's cropped, resized RGB frames and matching CameraInfo."""

    forced_backend: Optional[str] = None     # set by executables dedicated to one backend (camera_realsense)

    def __init__(self) -> None:
        super().__init__("camera")
        self.config = cfg = conv.declare_config(self, CameraConfig)
        cfg.device = self._declare_device()
        cfg.backend = self.forced_backend or cfg.backend
        self.published = 0
        self.counters = {"bad_frames": 0, "reopens": 0, "no_new_frame": 0}
        self.source, self.grabber = None, None
        if cfg.standby:
            self.get_logger().info(f"standby: {cfg.image_topic} comes from another node (fake hardware)")
            return
        if cfg.parent_frame:
            self._static_tf = StaticTransforms(self)
            self._static_tf.add(cfg.parent_frame, cfg.frame_id, cfg.optical_pose[:3], cfg.optical_pose[3:])
        self.source = open_source(cfg)
        if not getattr(self.source, "is_file", False):
            self.grabber = LatestFrameGrabber(self.source.read, cfg.name)
        self._last_sequence = 0
        self._last_reopen = time.monotonic()
        self._pub_image = self.create_publisher(Image, cfg.image_topic, conv.IMAGE_PUBLISHER_QOS)
        self._pub_info = self.create_publisher(CameraInfo, cfg.info_topic, conv.RELIABLE_QOS)
        self.create_timer(1.0 / cfg.fps, self._tick)
        self.get_logger().info(f"{cfg.backend} camera {cfg.device or '(default)'} -> {cfg.image_topic} at "
                               f"{cfg.fps:g} Hz, crop {list(cfg.crop) or 'none'}, "
                               f"{cfg.output_width}x{cfg.output_height} rgb8")

    def _declare_device(self) -> str:
        """The 'device' parameter as text, whatever YAML type it arrived as (0, 123456, /dev/video0, a path)."""
        descriptor = ParameterDescriptor(
            description="opencv: V4L2 index, /dev/video* or /dev/v4l/by-id/... path, or a video file; realsense: "
                        "serial number (empty: the only connected camera)", read_only=True, dynamic_typing=True)
        value = self.declare_parameter("device", "", descriptor).value
        if isinstance(value, (list, tuple)) or isinstance(value, float):
            raise ConfigError(f"parameter 'device' = {value!r}: give a device index, path, file or serial number")
        return "" if value is None else str(value)

    def _next_frame(self) -> tuple[Optional[np.ndarray], Optional[float]]:
        """(BGR frame, capture time) not published before, or (None, None)."""
        if self.grabber is None:                       # video file: one new frame per tick
            ok, frame = self.source.read()
            return (frame, time.monotonic()) if ok else (None, None)
        sequence, stamp, frame = self.grabber.latest()
        if frame is None or sequence == self._last_sequence:
            self.counters["no_new_frame"] += 1
            self._maybe_reopen()
            return None, None
        self._last_sequence = sequence
        return frame, stamp

    def _maybe_reopen(self) -> None:
        now = time.monotonic()
        period = self.config.reopen_period_s
        if now - self.grabber.last_success < period or now - self._last_reopen < period:
            return
        self._last_reopen = now
        self.counters["reopens"] += 1
        self.get_logger().warning(f"no frames from {self.config.device or 'the camera'} for "
                                  f"{now - self.grabber.last_success:.1f} s: reopening (unplugged?)",
                                  throttle_duration_sec=5.0)
        self.grabber.stop()
        self.source.open()
        self.grabber = LatestFrameGrabber(self.source.read, self.config.name)
        self._last_sequence = 0

    def _tick(self) -> None:
        frame, captured = self._next_frame()
        if frame is None:
            return
        cfg = self.config
        try:
            image = cfg.pipeline.apply(frame, bgr=True)
        except FrameError as exc:
            self.counters["bad_frames"] += 1
            self.get_logger().error(f"frame dropped: {exc}", throttle_duration_sec=5.0)
            return
        # Stamp with the capture time, not the publish time: the reward node pairs the two views by stamp.
        age_ns = int((time.monotonic() - captured) * 1e9)
        stamp = (self.get_clock().now() - Duration(nanoseconds=max(0, age_ns))).to_msg()
        self._pub_image.publish(numpy_to_image(image, "rgb8", stamp=stamp, frame_id=cfg.frame_id))
        self._pub_info.publish(self._camera_info(frame.shape[1], frame.shape[0], stamp))
        self.published += 1

    def _camera_info(self, width: int, height: int, stamp) -> CameraInfo:
        cfg = self.config
        source = tuple(cfg.intrinsics) or self.source.device_intrinsics() or fov_intrinsics(width, height,
                                                                                           cfg.fovy_deg)
        fx, fy, cx, cy = cfg.pipeline.intrinsics(*source, width, height)
        out_w, out_h = cfg.pipeline.output_size(width, height)
        return camera_info_from_intrinsics(out_w, out_h, fx, fy, cx, cy, cfg.frame_id, stamp)

    def close(self) -> None:
        """Stop the grabber and release the device."""
        if self.grabber is not None:
            self.grabber.stop()
        if self.source is not None:
            self.source.release()


def main(args: Optional[list[str]] = None) -> int:
    """Run an OpenCV (or, with backend:=realsense, RealSense) camera node."""
    return conv.run_node(CameraNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
