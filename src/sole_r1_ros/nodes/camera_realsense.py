"""camera_realsense: an Intel RealSense colour stream -> Image + CameraInfo, through the same crop/resize/publish
path as camera_opencv (sole_r1_ros.logic.cameras, CameraNode).

pyrealsense2 is imported only when the node starts, so nothing else needs it; when it is missing the node stops
at once with a message saying how to install it or which backend to use instead. `device` is the camera's serial
number (empty: the only connected RealSense). The factory intrinsics of the colour stream go into CameraInfo.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.conventions import ParameterError
from sole_r1_ros.nodes.camera_opencv import CameraConfig, CameraNode

INSTALL_HINT = ("pyrealsense2 is not installed: `pip install pyrealsense2` (Intel's wheels, x86_64/aarch64 Linux) "
                "or build librealsense with its Python bindings; or use camera_backend:=opencv with the camera's "
                "V4L2 colour node (/dev/v4l/by-id/...-video-index0)")


def import_pyrealsense2():
    """The pyrealsense2 module, or ParameterError with INSTALL_HINT (run_node exits 2 with the message)."""
    try:
        import pyrealsense2
    except ImportError as exc:
        raise ParameterError(f"{INSTALL_HINT} (import error: {exc})") from exc
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
            raise ParameterError(f"cannot start RealSense {config.device or '(any)'} at {config.width}x"
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


class RealSenseCameraNode(CameraNode):
    """CameraNode with the RealSense backend."""

    forced_backend = "realsense"


def main(args: Optional[list[str]] = None) -> int:
    """Run a RealSense camera node."""
    return conv.run_node(RealSenseCameraNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
