"""camera_realsense: an Intel RealSense colour stream -> Image + CameraInfo, through the same crop/resize/publish
path as camera_opencv (sole_r1_ros.logic.cameras, CameraNode).

pyrealsense2 is imported only when the node starts, so nothing else needs it; when it is missing the node stops
at once with a message saying how to install it or which backend to use instead. `device` is the camera's serial
number (empty: the only connected RealSense). The factory intrinsics of the colour stream go into CameraInfo.
"""
from __future__ import annotations

from typing import Optional


from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.nodes.camera_opencv import CameraNode

class RealSenseCameraNode(CameraNode):
    """CameraNode with the RealSense backend."""

    forced_backend = "realsense"


def main(args: Optional[list[str]] = None) -> int:
    """Run a RealSense camera node."""
    return conv.run_node(RealSenseCameraNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
