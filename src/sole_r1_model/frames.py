"""Frames in and out of episodes: read videos / image folders, split side-by-side views, pick frames to score.

Offline scoring follows Philip-MIT/rewardgen `rewardgen/core.py` (`generate`, `load_video_frames`): 10 key
frames `numpy.linspace(0, N-1, min(10, N), dtype=int)`, one model call per key frame after the first, progress
linearly interpolated (`numpy.interp`) to every frame. Side-by-side videos hold the external view on the left
half and the wrist view on the right (`rewardgen/sole.py`: `frame[:, :W//2]` / `frame[:, W//2:]`).
Online, the official client samples the camera at ~1 Hz with a frame stride
`max(1, round(source_fps / target_fps))` (philipmit/sole-r1-model `reward_client/main.py`, `compute_stride`).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import re
from pathlib import Path
from typing import Iterable, Optional, Sequence

import cv2
import numpy as np

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
ARRAY_EXTENSIONS = {".npy"}
DEFAULT_NUM_KEY_FRAMES = 10
MIN_SCORED_FRAMES = 2  # frame 0 is 0 % by definition: scoring starts at the second frame

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FrameSource:
    """Frames read from one file or folder: RGB uint8 HxWx3 frames, their indices, and the source size."""

    frames: list              # RGB uint8 HxWx3 arrays, in index order
    indices: list             # index of each frame in the source (all frames unless a subset was asked for)
    num_frames: int           # frames in the whole source
    fps: Optional[float]      # frames per second when the source says so (videos), else None
    path: str = ""


def key_frame_indices(num_frames: int, num_key_frames: int = DEFAULT_NUM_KEY_FRAMES) -> list[int]:
    """Offline key frames: linspace(0, N-1, min(K, N), dtype=int), e.g. 0,2,5,8,10,13,16,18,21,24 for N=25."""
    if num_frames < 1:
        raise ValueError(f"an episode needs at least one frame, got {num_frames}")
    if num_key_frames < 1:
        raise ValueError(f"num_key_frames must be >= 1, got {num_key_frames}")
    if num_key_frames == 1:  # linspace(0, N-1, 1) is [0]: only the start, nothing to score
        return [0]
    return np.linspace(0, num_frames - 1, num=min(num_key_frames, num_frames), dtype=int).tolist()


def interpolate_progress(key_indices: Sequence[int], key_progress: Sequence[float], num_frames: int) -> np.ndarray:
    """Progress at every frame 0..N-1, linear between key frames (numpy.interp, flat beyond the ends)."""
    x = np.asarray(key_indices, dtype=float)
    y = np.asarray(key_progress, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"need as many key progress values as key indices, got {y.shape} and {x.shape}")
    if np.any(np.diff(x) <= 0):
        raise ValueError(f"key frame indices must increase strictly, got {list(key_indices)}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"key progress values must be finite, got {list(key_progress)}")
    return np.interp(np.arange(num_frames, dtype=float), x, y)


def compute_stride(source_fps: float, target_hz: float = 1.0) -> int:
    """Frame stride that samples a `source_fps` stream at about `target_hz` (official client rule)."""
    if not (math.isfinite(target_hz) and target_hz > 0):
        raise ValueError(f"target rate must be a positive number of Hz, got {target_hz!r}")
    if not (math.isfinite(source_fps) and source_fps > 0):
        raise ValueError(f"source rate must be a positive number of frames per second, got {source_fps!r}")
    return max(1, round(source_fps / target_hz))


def stride_indices(num_frames: int, stride: int, start: int = 0) -> list[int]:
    """Indices start, start+stride, ... below num_frames (the frames the official client sends)."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    return list(range(max(0, start), num_frames, stride))


class RateSampler:
    """Online frame selection at a target rate: take a frame when the next period is due (no drift)."""

    def __init__(self, target_hz: float = 1.0) -> None:
        """`target_hz`: model calls per second of camera time (the official client uses 1 Hz)."""
        if not (math.isfinite(target_hz) and target_hz > 0):
            raise ValueError(f"target rate must be a positive number of Hz, got {target_hz!r}")
        self.period = 1.0 / target_hz
        self._due: Optional[float] = None

    def reset(self) -> None:
        """Forget the schedule (call at the start of each episode)."""
        self._due = None

    def should_take(self, stamp: float) -> bool:
        """True when the frame stamped `stamp` (seconds) is the next one to score."""
        if not math.isfinite(stamp):
            return False
        if self._due is None:
            self._due = stamp + self.period
            return True
        if stamp + 1e-9 < self._due:
            return False
        # Advance on the fixed grid; skip whole periods when frames came late so we never burst.
        missed = math.floor((stamp - self._due) / self.period) + 1
        self._due += missed * self.period
        return True


def split_side_by_side(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a side-by-side frame into (external = left half, wrist = right half)."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[1] < 2:
        shape = getattr(frame, "shape", None)
        raise ValueError(f"side-by-side frame must be an HxWx3 array with W >= 2, got shape {shape}")
    half = frame.shape[1] // 2
    return np.ascontiguousarray(frame[:, :half]), np.ascontiguousarray(frame[:, half:])


def split_frames(frames: Iterable[np.ndarray]) -> tuple[list, list]:
    """Split every side-by-side frame: (external frames, wrist frames)."""
    pairs = [split_side_by_side(f) for f in frames]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def read_frames(path: str | Path, indices: Optional[Sequence[int]] = None) -> FrameSource:
    """Read RGB frames from a video file, a folder of images (sorted by the numbers in their names) or .npy.

    `indices` keeps only those frames (decoding stays sequential, so what is kept is exact); None keeps all.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no video, image folder or .npy at {p}")
    wanted = None if indices is None else sorted(set(int(i) for i in indices))
    if p.is_dir():
        return _read_image_folder(p, wanted)
    ext = p.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return _read_video(p, wanted)
    if ext in ARRAY_EXTENSIONS:
        return _read_array(p, wanted)
    raise ValueError(f"cannot read frames from {p}: use a video ({', '.join(sorted(VIDEO_EXTENSIONS))}), "
                     f"a folder of images, or a (T,H,W,3) uint8 .npy file")


def read_key_frames(path: str | Path, num_key_frames: int = DEFAULT_NUM_KEY_FRAMES) -> FrameSource:
    """Read only the offline key frames of a source, in one decoding pass when the video's metadata is right."""
    p = Path(path)
    guess = _frame_count_hint(p)
    total = 0
    if guess > 0:
        try:
            source = read_frames(p, key_frame_indices(guess, num_key_frames))
            if source.num_frames == guess:
                return source
            total = source.num_frames
        except ValueError:  # metadata promised frames the file does not have
            total = 0
    # Metadata frame counts are wrong for some containers: redo with the decoded count.
    total = total or count_frames(p)
    if guess > 0 and total != guess:
        log.warning("%s: the header says %d frames but %d decode (truncated or damaged file?); "
                    "using the %d that decode", p, guess, total, total)
    return read_frames(p, key_frame_indices(total, num_key_frames))


def _frame_count_hint(path: Path) -> int:
    """Frame count from metadata (videos) or listing (folders, .npy); 0 when unknown."""
    if not path.exists():
        raise FileNotFoundError(f"no video, image folder or .npy at {path}")
    if path.is_dir() or path.suffix.lower() in ARRAY_EXTENSIONS:
        return count_frames(path)
    cap = _open_video(path)
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()


def count_frames(path: str | Path) -> int:
    """Number of frames in a video (decoded, not trusted from metadata), image folder or .npy."""
    p = Path(path)
    if p.is_dir():
        return len(_image_files(p))
    if p.suffix.lower() in ARRAY_EXTENSIONS:
        return int(np.load(p, mmap_mode="r").shape[0])
    cap = _open_video(p)
    count = 0
    try:
        while cap.grab():
            count += 1
    finally:
        cap.release()
    return count


def _open_video(path: Path) -> "cv2.VideoCapture":
    """Open a video with OpenCV or raise a readable error."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path}: not a video file or codec unsupported by OpenCV")
    return cap


def _read_video(path: Path, wanted: Optional[list]) -> FrameSource:
    """Decode a video sequentially, keeping the wanted frames (BGR -> RGB)."""
    cap = _open_video(path)
    fps = cap.get(cv2.CAP_PROP_FPS)
    keep = None if wanted is None else set(wanted)
    last = None if wanted is None else (wanted[-1] if wanted else -1)
    frames, kept, index = [], [], 0
    try:
        while cap.grab():
            if keep is None or index in keep:
                ok, bgr = cap.retrieve()
                if not ok or bgr is None:
                    raise ValueError(f"{path}: frame {index} could not be decoded")
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                kept.append(index)
            index += 1
            if last is not None and index > last:
                # Nothing more to keep: grab the rest without converting, only to learn the video's length.
                index += _count_rest(cap)
                break
    finally:
        cap.release()
    _check_found(path, wanted, kept, index)
    return FrameSource(frames, kept, index, float(fps) if fps and fps > 0 else None, str(path))


def _count_rest(cap: "cv2.VideoCapture") -> int:
    """Grab (without converting) the remaining frames, to know the length of the video."""
    n = 0
    while cap.grab():
        n += 1
    return n


def _numeric_key(p: Path) -> tuple:
    """Sort image names by the numbers they contain (frame_2 before frame_10), then by name."""
    return tuple(int(n) for n in re.findall(r"\d+", p.stem)), p.name


def _image_files(folder: Path) -> list[Path]:
    """Image files of a folder in frame order."""
    return sorted((f for f in folder.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS), key=_numeric_key)


def _read_image_folder(folder: Path, wanted: Optional[list]) -> FrameSource:
    """Read the images of a folder in numeric name order."""
    files = _image_files(folder)
    if not files:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder {folder}")
    chosen = range(len(files)) if wanted is None else [i for i in wanted if 0 <= i < len(files)]
    frames = []
    for i in chosen:
        bgr = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot decode image {files[i]}; remove it or convert it to PNG/JPEG")
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    _check_found(folder, wanted, list(chosen), len(files))
    return FrameSource(frames, list(chosen), len(files), None, str(folder))


def _read_array(path: Path, wanted: Optional[list]) -> FrameSource:
    """Read a (T, H, W, 3) uint8 array of RGB frames."""
    arr = np.load(path, mmap_mode="r")
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"{path}: expected a (T, H, W, 3) uint8 array of RGB frames, got {arr.dtype} {arr.shape}")
    chosen = list(range(arr.shape[0])) if wanted is None else [i for i in wanted if 0 <= i < arr.shape[0]]
    _check_found(path, wanted, chosen, arr.shape[0])
    return FrameSource([np.array(arr[i]) for i in chosen], chosen, int(arr.shape[0]), None, str(path))


def _check_found(path: Path, wanted: Optional[list], kept: list, total: int) -> None:
    """Raise when nothing was read or some requested frames lie beyond the end of the source."""
    if total == 0:
        raise ValueError(f"{path} holds no frames")
    if wanted is not None and len(kept) != len(wanted):
        missing = sorted(set(wanted) - set(kept))
        raise ValueError(f"{path} has {total} frames; frames {missing} do not exist")


def check_scorable(path: str | Path, num_frames: int) -> None:
    """Raise ValueError naming the file when an episode has too few frames to be scored."""
    if num_frames < MIN_SCORED_FRAMES:
        raise ValueError(f"{path} has {num_frames} frame{'s' * (num_frames != 1)}; an episode needs at least "
                         f"{MIN_SCORED_FRAMES} to be scored (frame 0 is 0 % without a model call)")


@dataclasses.dataclass(frozen=True)
class EpisodeKeyFrames:
    """The key frames of one episode, per camera, with where they sit in the episode."""

    key_indices: list         # frame index of each key frame
    num_frames: int           # frames in the whole episode
    external: list            # RGB key frames of the external (shoulder) camera
    wrist: Optional[list]     # RGB key frames of the wrist camera, None when there is none
    fps: Optional[float]      # frame rate of the source, when known


def read_episode_key_frames(external: str | Path, wrist: str | Path | None = None, side_by_side: bool = False,
                            num_key_frames: int = DEFAULT_NUM_KEY_FRAMES) -> EpisodeKeyFrames:
    """Key frames of an episode given as one side-by-side video, or an external video and an optional wrist one."""
    if side_by_side and wrist is not None:
        raise ValueError("give either one side-by-side video or separate external/wrist videos, not both")
    source = read_key_frames(external, num_key_frames)
    check_scorable(external, source.num_frames)
    if side_by_side:
        ext, wst = split_frames(source.frames)
        return EpisodeKeyFrames(source.indices, source.num_frames, ext, wst, source.fps)
    wrist_frames = None
    if wrist is not None:
        other = read_frames(wrist, source.indices)
        if other.num_frames != source.num_frames:
            raise ValueError(f"{external} has {source.num_frames} frames but {wrist} has {other.num_frames}; "
                             "external and wrist videos must be frame-aligned")
        wrist_frames = other.frames
    return EpisodeKeyFrames(source.indices, source.num_frames, source.frames, wrist_frames, source.fps)
