"""numpy <-> sensor_msgs/Image conversion with cv_bridge semantics, and CameraInfo helpers.

Behaves like cv_bridge's `imgmsg_to_cv2(msg, desired_encoding)` / `cv2_to_imgmsg(array, encoding)`: the array
keeps the message's channel order unless a conversion is asked for, `step` may carry row padding, and
`is_bigendian` data is byte-swapped to native order. cv_bridge is used when importable (a full ROS install);
otherwise (the pip-wheel ROS here, where cv_bridge does not exist) the pure-numpy path below does the same.
"""
from __future__ import annotations

import sys
from typing import Optional

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

try:  # a full ROS install has cv_bridge; the PyPI wheels do not
    from cv_bridge import CvBridge as _CvBridge  # type: ignore

    _BRIDGE = _CvBridge()
except Exception:  # noqa: BLE001 -- any import failure means "use the numpy path"
    _BRIDGE = None

# encoding -> (numpy dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "8UC3": (np.dtype(np.uint8), 3),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
_COLOUR = {"rgb8", "bgr8", "rgba8", "bgra8"}


class ImageConversionError(ValueError):
    """A sensor_msgs/Image could not be converted (unknown encoding, inconsistent sizes, short data)."""


def image_to_numpy(msg: Image, desired_encoding: str = "passthrough") -> np.ndarray:
    """Return the image as an HxW (1 channel) or HxWxC array, converted to `desired_encoding` if given."""
    encoding = msg.encoding
    if encoding not in ENCODINGS:
        raise ImageConversionError(f"unsupported image encoding {encoding!r}; supported: {sorted(ENCODINGS)}")
    dtype, channels = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
    if height == 0 or width == 0:
        raise ImageConversionError(f"empty image: {width}x{height}")
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than one row ({width} px x {channels} ch x {dtype.itemsize} B = {row_bytes} B)")
    data = msg.data
    buffer = data if isinstance(data, (bytes, bytearray, memoryview)) else bytes(data)
    if len(buffer) < step * height:
        raise ImageConversionError(f"image data has {len(buffer)} bytes, expected step*height = {step * height}")
    rows = np.frombuffer(buffer, dtype=np.uint8, count=step * height).reshape(height, step)[:, :row_bytes]
    byte_order = ">" if msg.is_bigendian else "<"
    array = np.ascontiguousarray(rows).view(dtype.newbyteorder(byte_order)).reshape(height, width, channels)
    if not array.dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    if channels == 1:
        array = array[:, :, 0]
    return convert_encoding(array, encoding, desired_encoding)


def numpy_to_image(array: np.ndarray, encoding: str = "rgb8", *, stamp=None, frame_id: str = "") -> Image:
    """Build a sensor_msgs/Image (no row padding, native byte order) from an array in `encoding`."""
    if encoding not in ENCODINGS:
        raise ImageConversionError(f"unsupported image encoding {encoding!r}; supported: {sorted(ENCODINGS)}")
    dtype, channels = ENCODINGS[encoding]
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] != channels:
        raise ImageConversionError(f"{encoding} needs {channels} channel(s), got array of shape {array.shape}")
    if array.dtype != dtype:
        raise ImageConversionError(f"{encoding} needs dtype {dtype}, got {array.dtype}")
    if _BRIDGE is not None:
        msg = _BRIDGE.cv2_to_imgmsg(np.ascontiguousarray(array.squeeze(-1) if channels == 1 else array), encoding)
    else:
        msg = Image()
        msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
        msg.encoding = encoding
        msg.is_bigendian = int(sys.byteorder == "big")
        msg.step = msg.width * channels * dtype.itemsize
        msg.data = np.ascontiguousarray(array).tobytes()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def convert_encoding(array: np.ndarray, source: str, target: str) -> np.ndarray:
    """Convert between colour encodings (channel order, alpha, grey) the way cv_bridge does."""
    if target in ("passthrough", source):
        return array
    if target not in ENCODINGS:
        raise ImageConversionError(f"unsupported desired encoding {target!r}")
    convertible = _COLOUR | {"mono8"}
    if source not in convertible or target not in convertible:
        raise ImageConversionError(f"cannot convert {source} to {target}: only 8-bit colour/grey conversions exist")
    rgb = _to_rgb(array, source)
    if target == "rgb8":
        return rgb
    if target == "bgr8":
        return np.ascontiguousarray(rgb[:, :, ::-1])
    if target == "rgba8":
        return np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    if target == "bgra8":
        return np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 255, np.uint8)])
    # mono8: ITU-R BT.601 luma, as OpenCV's RGB2GRAY
    grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def _to_rgb(array: np.ndarray, source: str) -> np.ndarray:
    if source == "rgb8":
        return array
    if source == "bgr8":
        return np.ascontiguousarray(array[:, :, ::-1])
    if source == "rgba8":
        return np.ascontiguousarray(array[:, :, :3])
    if source == "bgra8":
        return np.ascontiguousarray(array[:, :, 2::-1])
    return np.repeat(array[:, :, None], 3, axis=2)  # mono8


def camera_info_from_fov(width: int, height: int, fovy_deg: float, frame_id: str = "", stamp=None) -> CameraInfo:
    """Pinhole CameraInfo (no distortion) for an image size and vertical field of view, as simulators give it."""
    if width <= 0 or height <= 0 or not 0.0 < fovy_deg < 180.0:
        raise ValueError(f"invalid camera: {width}x{height}, fovy={fovy_deg} deg")
    focal = 0.5 * height / np.tan(np.deg2rad(fovy_deg) / 2.0)
    return camera_info_from_intrinsics(width, height, focal, focal, width / 2.0, height / 2.0, frame_id, stamp)


def camera_info_from_intrinsics(width: int, height: int, fx: float, fy: float, cx: float, cy: float,
                                frame_id: str = "", stamp=None, distortion: Optional[list] = None) -> CameraInfo:
    """CameraInfo for a calibrated pinhole camera (plumb_bob distortion, identity rectification)."""
    info = CameraInfo()
    info.width, info.height = int(width), int(height)
    info.distortion_model = "plumb_bob"
    info.d = [float(x) for x in (distortion or [0.0] * 5)]
    info.k = [float(fx), 0.0, float(cx), 0.0, float(fy), float(cy), 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [float(fx), 0.0, float(cx), 0.0, 0.0, float(fy), float(cy), 0.0, 0.0, 0.0, 1.0, 0.0]
    info.header.frame_id = frame_id
    if stamp is not None:
        info.header.stamp = stamp
    return info


def scale_camera_info(info: CameraInfo, width: int, height: int) -> CameraInfo:
    """CameraInfo for the same camera after resizing its images to width x height."""
    sx, sy = width / info.width, height / info.height
    k = info.k
    return camera_info_from_intrinsics(width, height, k[0] * sx, k[4] * sy, k[2] * sx, k[5] * sy,
                                       info.header.frame_id, info.header.stamp, list(info.d))
