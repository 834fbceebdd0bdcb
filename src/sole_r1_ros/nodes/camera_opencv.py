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

import dataclasses
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.duration import Duration
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.logic.cameras import CropResize, FrameError, LatestFrameGrabber, fov_intrinsics
from sole_r1_ros.ros.conventions import ParameterError, param
from sole_r1_ros.ros.images import camera_info_from_intrinsics, numpy_to_image


@dataclasses.dataclass
class CameraConfig:
    """Parameters of the camera nodes (both backends)."""

    name: str = param("shoulder", "camera name: topics default to /cameras/<name>/image_raw and camera_info")
    backend: str = param("opencv", "frame source", choices=("opencv", "realsense"))
    # Declared by the node itself (init=False): a V4L2 index or a RealSense serial arrives as a YAML integer.
    device: str = dataclasses.field(default="", init=False)
    standby: bool = param(False, "open nothing, publish nothing (the view comes from elsewhere, e.g. fake_franka)")
    image_topic: str = param("", "Image topic (empty: /cameras/<name>/image_raw)")
    info_topic: str = param("", "CameraInfo topic (empty: /cameras/<name>/camera_info)")
    frame_id: str = param("", "frame_id of the images (empty: <name>_camera)")
    width: int = param(640, "capture width requested from the device (0: device default)", low=0, high=8192)
    height: int = param(480, "capture height requested from the device (0: device default)", low=0, high=8192)
    fps: float = param(30.0, "publish rate, frames per second", low=0.5, high=240.0)
    crop: list = param([], "[x, y, width, height] of the captured frame to keep, pixels (empty: all)")
    output_width: int = param(128, "published image width (0 with output_height 0: the cropped size)", low=0,
                              high=8192)
    output_height: int = param(128, "published image height", low=0, high=8192)
    intrinsics: list = param([], "[fx, fy, cx, cy] of the captured frame (empty: from the device or fovy_deg)")
    fovy_deg: float = param(60.0, "vertical field of view for CameraInfo when no intrinsics are known", low=1.0,
                            high=179.0)
    loop: bool = param(True, "video files: start again at the end")
    reopen_period_s: float = param(1.0, "reopen a device that delivered nothing for this long, s", low=0.1,
                                   high=60.0)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ParameterError(f"parameter 'name' must be a plain camera name like 'wrist', got {self.name!r}")
        self.image_topic = self.image_topic or f"/cameras/{self.name}/image_raw"
        self.info_topic = self.info_topic or f"/cameras/{self.name}/camera_info"
        self.frame_id = self.frame_id or f"{self.name}_camera"
        if self.intrinsics and len(self.intrinsics) != 4:
            raise ParameterError(f"parameter 'intrinsics' needs [fx, fy, cx, cy], got {self.intrinsics}")
        try:
            self.pipeline = CropResize(tuple(self.crop), self.output_width, self.output_height)
        except ValueError as exc:
            raise ParameterError(f"parameter 'crop'/'output_width'/'output_height': {exc}") from exc


class OpenCVSource:
    """A cv2.VideoCapture on a V4L2 device or a video file."""

    def __init__(self, config: CameraConfig):
        self.config = config
        spec = config.device.strip()
        if not spec:
            raise ParameterError("parameter 'device' is empty: give a V4L2 index, /dev/video*, "
                                 "/dev/v4l/by-id/... or a video file")
        self.target = int(spec) if spec.isdigit() else spec
        self.is_file = isinstance(self.target, str) and not self.target.startswith("/dev/")
        if self.is_file and not Path(self.target).is_file():
            raise ParameterError(f"parameter 'device': no camera device or video file at {self.target}")
        self.capture: Optional[cv2.VideoCapture] = None
        if not self.open():
            raise ParameterError(
                f"cannot open camera device {spec!r}: check the path (ls /dev/v4l/by-id/), that your user is in "
                "the 'video' group, and that no other process holds the camera" if not self.is_file
                else f"cannot decode video file {spec!r} with OpenCV")

    def open(self) -> bool:
        """(Re)open the device; True when a first frame could be read."""
        self.release()
        capture = cv2.VideoCapture(self.target) if self.is_file else cv2.VideoCapture(self.target, cv2.CAP_V4L2)
        if not self.is_file:
            cfg = self.config
            if cfg.width and cfg.height:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
            capture.set(cv2.CAP_PROP_FPS, cfg.fps)
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)   # the driver queue is what makes frames stale
        self.capture = capture
        return capture.isOpened() and capture.grab()

    def read(self) -> tuple[bool, Optional[np.ndarray]]:
        """Next BGR frame; a video file starts again at its end when looping."""
        ok, frame = self.capture.read()
        if not ok and self.is_file and self.config.loop:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.capture.read()
        return ok, frame

    def device_intrinsics(self) -> Optional[tuple]:
        """Factory intrinsics: unknown for V4L2 devices and files."""
        return None

    def release(self) -> None:
        """Close the device."""
        if self.capture is not None:
            self.capture.release()
            self.capture = None


def open_source(config: CameraConfig):
    """The frame source for config.backend."""
    if config.backend == "realsense":
        from sole_r1_ros.nodes.camera_realsense import RealSenseSource

        return RealSenseSource(config)
    return OpenCVSource(config)


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
            raise ParameterError(f"parameter 'device' = {value!r}: give a device index, path, file or serial number")
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
