"""Stream RGB frames from a video file or an image folder, one at a time (no whole-video buffering)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


class FrameReader:
    """Iterate over the RGB uint8 frames of a video file or an image folder (sorted by name)."""

    def __init__(self, path: str | Path, size: Optional[tuple[int, int]] = None):
        self.path = Path(path).expanduser()
        self.size = size  # (width, height) to resize to, or None to keep
        if not self.path.exists():
            raise FileNotFoundError(f"no video file or image folder at {self.path}")
        if self.path.is_dir():
            self._files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise ValueError(f"image folder {self.path} has no images ({sorted(IMAGE_SUFFIXES)})")
        else:
            self._files = None
            capture = cv2.VideoCapture(str(self.path))
            ok = capture.isOpened() and capture.read()[0]
            capture.release()
            if not ok:
                raise ValueError(f"{self.path} is not a readable video (OpenCV could not decode a frame)")

    def __len__(self) -> int:
        """Number of frames (for videos: as the container reports it)."""
        if self._files is not None:
            return len(self._files)
        capture = cv2.VideoCapture(str(self.path))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
        return count

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._files is not None:
            for file in self._files:
                bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise ValueError(f"cannot decode image {file}")
                yield self._finish(bgr)
            return
        capture = cv2.VideoCapture(str(self.path))
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                yield self._finish(bgr)
        finally:
            capture.release()

    def _finish(self, bgr: np.ndarray) -> np.ndarray:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if self.size is not None and (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        return rgb

