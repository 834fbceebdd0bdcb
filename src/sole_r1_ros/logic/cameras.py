"""Camera frames -> the images the policy and the reward model see: crop, resize, RGB; plus a latest-frame grabber.

Shared by the camera nodes (camera_opencv, camera_realsense); no rclpy here.

- `CropResize`: like SERL's Franka envs (`serl_robot_infra/franka_env/envs/*`: a per-camera crop of the raw frame,
  then `cv2.resize` to the observation size, BGR -> RGB), and it updates the pinhole intrinsics the same way so
  the published CameraInfo matches the published image.
- `LatestFrameGrabber`: a thread that keeps only the newest frame of a live device (as SERL's VideoCapture does),
  so a slow consumer never works on a frame that waited in the driver's queue.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable, Optional

import cv2
import numpy as np


class FrameError(ValueError):
    """A frame cannot be processed (wrong type, shape, or a crop outside it)."""


@dataclasses.dataclass
class CropResize:
    """Crop a source frame to `crop` = (x, y, width, height) pixels (empty: whole frame), then resize."""

    crop: tuple = ()              # (x, y, width, height) in source pixels, top-left origin; () keeps the frame
    out_width: int = 128          # 0 keeps the cropped width
    out_height: int = 128         # 0 keeps the cropped height

    def __post_init__(self) -> None:
        self.crop = tuple(int(v) for v in self.crop)
        if self.crop and (len(self.crop) != 4 or self.crop[0] < 0 or self.crop[1] < 0 or self.crop[2] <= 0
                          or self.crop[3] <= 0):
            raise ValueError(f"crop must be empty or [x, y, width, height] with x, y >= 0 and a positive size, "
                             f"got {list(self.crop)}")
        if self.out_width < 0 or self.out_height < 0 or (self.out_width == 0) != (self.out_height == 0):
            raise ValueError(f"output size must be two positive numbers (or both 0 to keep the cropped size), "
                             f"got {self.out_width}x{self.out_height}")

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The crop box (x, y, w, h) for a width x height frame; FrameError when it does not fit."""
        if not self.crop:
            return 0, 0, width, height
        x, y, w, h = self.crop
        if x + w > width or y + h > height:
            raise FrameError(f"crop [{x}, {y}, {w}, {h}] does not fit a {width}x{height} frame: check the "
                             "camera resolution ('width'/'height') or the 'crop' parameter")
        return x, y, w, h

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the published image for a width x height source frame."""
        _, _, w, h = self.crop_box(width, height)
        return (self.out_width, self.out_height) if self.out_width else (w, h)

    def apply(self, frame: np.ndarray, bgr: bool = True) -> np.ndarray:
        """Cropped, resized RGB uint8 image (H, W, 3) from a uint8 BGR (or RGB, bgr=False) frame."""
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 \
                or frame.shape[0] == 0 or frame.shape[1] == 0:
            shape = getattr(frame, "shape", None)
            raise FrameError(f"expected a HxWx3 uint8 frame, got {type(frame).__name__} {shape} "
                             f"{getattr(frame, 'dtype', '')}")
        x, y, w, h = self.crop_box(frame.shape[1], frame.shape[0])
        image = frame[y:y + h, x:x + w]
        size = self.output_size(frame.shape[1], frame.shape[0])
        if size != (w, h):
            # INTER_AREA when shrinking (no aliasing), linear when enlarging.
            shrinking = size[0] < w or size[1] < h
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        return np.ascontiguousarray(image[:, :, ::-1] if bgr else image)

    def intrinsics(self, fx: float, fy: float, cx: float, cy: float, width: int,
                   height: int) -> tuple[float, float, float, float]:
        """Pinhole intrinsics of the published image from those of the width x height source frame."""
        x, y, w, h = self.crop_box(width, height)
        out_w, out_h = self.output_size(width, height)
        sx, sy = out_w / w, out_h / h
        # Pixel centres: a source pixel u maps to (u - x + 0.5) * s - 0.5 in the output.
        return fx * sx, fy * sy, (cx - x + 0.5) * sx - 0.5, (cy - y + 0.5) * sy - 0.5


def fov_intrinsics(width: int, height: int, fovy_deg: float) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of an ideal pinhole camera with a vertical field of view (for uncalibrated cameras)."""
    focal = 0.5 * height / np.tan(np.deg2rad(fovy_deg) / 2.0)
    return focal, focal, (width - 1) / 2.0, (height - 1) / 2.0


class LatestFrameGrabber:
    """Reads frames in a background thread and keeps only the newest one (with its capture time and number)."""

    def __init__(self, read: Callable[[], tuple[bool, Optional[np.ndarray]]], name: str = "camera",
                 clock: Callable[[], float] = time.monotonic):
        self._read, self._clock = read, clock
        self._lock = threading.Lock()
        self._frame: Optional[np.ndarray] = None
        self._stamp = 0.0
        self.sequence = 0            # frames grabbed so far
        self.failures = 0            # read() calls that returned no frame
        self.last_success = clock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-grabber", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ok, frame = self._read()
            except Exception:  # noqa: BLE001 -- a driver error must not kill the thread: count and retry
                ok, frame = False, None
            if not ok or frame is None:
                self.failures += 1
                self._stop.wait(0.01)    # no busy loop on a dead device
                continue
            now = self._clock()
            with self._lock:
                self._frame, self._stamp = frame, now
                self.sequence += 1
                self.last_success = now

    def latest(self) -> tuple[int, float, Optional[np.ndarray]]:
        """(sequence number, capture time, frame) of the newest frame; frame None before the first one."""
        with self._lock:
            return self.sequence, self._stamp, self._frame

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread (the caller releases the device afterwards)."""
        self._stop.set()
        self._thread.join(timeout)
