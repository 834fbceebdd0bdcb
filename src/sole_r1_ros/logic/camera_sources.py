"""Camera frame sources without rclpy: the camera nodes' parameters, OpenCV (V4L2 or a video file) and RealSense.

`nodes/camera_opencv.py` and `nodes/camera_realsense.py` publish what these sources read, through the crop/resize
pipeline of `cameras.py`. pyrealsense2 is imported only when a RealSense source opens.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from sole_r1_config import ConfigError, param
from sole_r1_ros.logic.cameras import CropResize

INSTALL_HINT = ("pyrealsense2 is not installed: `pip install pyrealsense2` (Intel's wheels, x86_64/aarch64 Linux) "
                "or build librealsense with its Python bindings; or use camera_backend:=opencv with the camera's "
                "V4L2 colour node (/dev/v4l/by-id/...-video-index0)")


def import_pyrealsense2():
    """The pyrealsense2 module, or ConfigError with INSTALL_HINT (run_node exits 2 with the message)."""
    try:
        import pyrealsense2
    except ImportError as exc:
        raise ConfigError(f"{INSTALL_HINT} (import error: {exc})") from exc
    return pyrealsense2


class RealSenseSource:
    """The colour stream of one RealSense as BGR frames."""

    is_file = False

    def __init__(self, config: CameraConfig):
        rs = import_pyrealsense2()
        self._rs, self.config = rs, config
        self._pipeline = rs.pipeline()
        stream = rs.config()
        if config.device:
            stream.enable_device(config.device)
        stream.enable_stream(rs.stream.color, config.width, config.height, rs.format.bgr8, int(round(config.fps)))
        try:
            profile = self._pipeline.start(stream)
        except RuntimeError as exc:
            raise ConfigError(f"cannot start RealSense {config.device or '(any)'} at {config.width}x"
                                 f"{config.height} {config.fps:g} fps: {exc} (check the serial number with "
                                 "`rs-enumerate-devices` and that the mode exists)") from exc
        video = profile.get_stream(rs.stream.color).as_video_stream_profile().get_intrinsics()
        self._intrinsics = (video.fx, video.fy, video.ppx, video.ppy)
        self._started = True

    def open(self) -> bool:
        """Restart the stream after it stopped delivering."""
        self.release()
        try:
            self._pipeline.start()
            self._started = True
        except RuntimeError:
            return False
        return True

    def read(self) -> tuple[bool, Optional[np.ndarray]]:
        """The next colour frame (BGR), waiting at most a second."""
        ok, frames = self._pipeline.try_wait_for_frames(1000)
        if not ok:
            return False, None
        color = frames.get_color_frame()
        if not color:
            return False, None
        return True, np.asanyarray(color.get_data()).copy()

    def device_intrinsics(self) -> tuple:
        """Factory intrinsics (fx, fy, cx, cy) of the colour stream at the capture resolution."""
        return self._intrinsics

    def release(self) -> None:
        """Stop streaming."""
        if self._started:
            self._pipeline.stop()
            self._started = False


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
    frame_id: str = param("", "frame_id of the images: the camera's optical frame, REP-103 (z forward, x right, y "
                          "down); empty: <name>_camera_optical_frame")
    parent_frame: str = param("", "frame the camera is fixed to (e.g. base, fr3_hand_tcp); with optical_pose, a "
                              "static transform parent_frame -> frame_id goes on /tf_static (empty: none)")
    optical_pose: list = param([], "[x, y, z, qx, qy, qz, qw] of the optical frame in parent_frame (m; from your "
                               "extrinsic calibration)")
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
            raise ConfigError(f"parameter 'name' must be a plain camera name like 'wrist', got {self.name!r}")
        self.image_topic = self.image_topic or f"/cameras/{self.name}/image_raw"
        self.info_topic = self.info_topic or f"/cameras/{self.name}/camera_info"
        self.frame_id = self.frame_id or f"{self.name}_camera_optical_frame"
        if bool(self.parent_frame) != bool(self.optical_pose) or (self.optical_pose and len(self.optical_pose) != 7):
            raise ConfigError(f"parameters 'parent_frame' and 'optical_pose' go together: a frame name and "
                              f"[x, y, z, qx, qy, qz, qw], got {self.parent_frame!r} and {self.optical_pose}")
        if self.intrinsics and len(self.intrinsics) != 4:
            raise ConfigError(f"parameter 'intrinsics' needs [fx, fy, cx, cy], got {self.intrinsics}")
        try:
            self.pipeline = CropResize(tuple(self.crop), self.output_width, self.output_height)
        except ValueError as exc:
            raise ConfigError(f"parameter 'crop'/'output_width'/'output_height': {exc}") from exc


class OpenCVSource:
    """A cv2.VideoCapture on a V4L2 device or a video file."""

    def __init__(self, config: CameraConfig):
        self.config = config
        spec = config.device.strip()
        if not spec:
            raise ConfigError("parameter 'device' is empty: give a V4L2 index, /dev/video*, "
                                 "/dev/v4l/by-id/... or a video file")
        self.target = int(spec) if spec.isdigit() else spec
        self.is_file = isinstance(self.target, str) and not self.target.startswith("/dev/")
        if self.is_file and not Path(self.target).is_file():
            raise ConfigError(f"parameter 'device': no camera device or video file at {self.target}")
        self.capture: Optional[cv2.VideoCapture] = None
        if not self.open():
            raise ConfigError(
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
        return RealSenseSource(config)
    return OpenCVSource(config)
