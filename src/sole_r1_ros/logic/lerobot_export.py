"""Recorded episode bags -> a LeRobot v3.0 dataset (format: sole_r1_model.lerobot_dataset.format), no `lerobot`.

One dataset frame per shoulder-camera frame of a bag (the episode's time base):
- observation.images.shoulder / .wrist: the frame and the wrist frame nearest in time (H.264 videos);
- observation.state: end-effector position + quaternion (base frame) and gripper opening, the latest at the frame;
- observation.joints: arm + gripper joint positions (when every episode has the same joints);
- action: the gated command answering the frame (stamp in [frame, next frame)): translation (m), rotation
  (axis-angle rad), gripper [-1, 1]; `action.missing` marks frames no command answered (zeros then);
- progress.perceived: the live rewarder's latest valid answer (%) at the frame -- the learner's signal;
- progress.privileged: the simulator's progress (%), NaN on the real robot (PRIVILEGED, logging only);
- next.done on each episode's last frame. Timestamps are frame_index / fps, as LeRobot records them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from sole_r1_model.lerobot_dataset import format as fmt
from sole_r1_ros.logic.bags import RecordedEpisode, stamp_ns

STATE_NAMES = ["x", "y", "z", "qx", "qy", "qz", "qw", "gripper"]
ACTION_NAMES = ["dx", "dy", "dz", "rx", "ry", "rz", "gripper"]
CAMERA_KEYS = {"shoulder": "observation.images.shoulder", "wrist": "observation.images.wrist"}


def _latest(stamps: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of the latest stamp at or before each query (the first one for queries before every stamp)."""
    return np.clip(np.searchsorted(stamps, queries, side="right") - 1, 0, None)


def _series(messages: list, value) -> tuple[np.ndarray, np.ndarray]:
    """(header stamps, values) of messages sorted by stamp."""
    rows = sorted(((stamp_ns(m), value(m)) for _, m in messages), key=lambda r: r[0])
    return np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.float64)


def episode_columns(episode: RecordedEpisode) -> dict:
    """Per-frame numeric columns of one episode, aligned on its shoulder frames (module doc)."""
    frames = episode.camera_stamps["shoulder"]
    n = len(frames)
    columns: dict = {}
    state = np.zeros((n, 8))
    poses = episode.messages.get("ee_pose", [])
    if poses:
        stamps, values = _series(poses, lambda m: [m.pose.position.x, m.pose.position.y, m.pose.position.z,
                                                   m.pose.orientation.x, m.pose.orientation.y,
                                                   m.pose.orientation.z, m.pose.orientation.w])
        state[:, :7] = values[_latest(stamps, frames)]
    grippers = [(t, m) for t, m in episode.messages.get("gripper", []) if len(m.position)]
    if grippers:
        stamps, values = _series(grippers, lambda m: float(m.position[0]))
        state[:, 7] = values[_latest(stamps, frames)]
    columns["observation.state"] = state
    joints = [(t, m) for t, m in episode.messages.get("joint_states", []) if len(m.position)]
    if joints and len({len(m.position) for _, m in joints}) == 1:
        stamps, values = _series(joints, lambda m: list(m.position))
        columns["observation.joints"] = values[_latest(stamps, frames)]
    action, missing = np.zeros((n, 7)), np.ones(n, bool)
    commands = sorted((stamp_ns(m), m) for _, m in episode.messages.get("command", []))
    bounds = np.append(frames, np.iinfo(np.int64).max)
    for stamp, m in commands:  # a command answers the frame whose stamp it carries (or the last one before it)
        i = int(np.searchsorted(frames, stamp, side="right") - 1)
        if 0 <= i < n and stamp < bounds[i + 1]:
            action[i] = [m.translation.x, m.translation.y, m.translation.z, m.rotation.x, m.rotation.y,
                         m.rotation.z, m.gripper]
            missing[i] = False
    columns["action"], columns["action.missing"] = action, missing
    perceived = np.zeros(n)
    valid = [(t, m) for t, m in episode.messages.get("progress", []) if m.valid and m.query_index > 0]
    if valid:
        stamps, values = _series(valid, lambda m: float(m.progress))
        known = np.searchsorted(stamps, frames, side="right") > 0
        perceived = np.where(known, values[_latest(stamps, frames)], 0.0)
    columns["progress.perceived"] = perceived
    privileged = episode.privileged_progress()
    columns["progress.privileged"] = privileged if privileged is not None else np.full(n, np.nan)
    return columns


class LeRobotWriter:
    """Writes episodes one by one (videos streamed), then the tables and metadata on `finish()`."""

    def __init__(self, root: str | Path, fps: int, crf: int = 18, robot_type: str = "franka") -> None:
        self.root = Path(root)
        if (self.root / fmt.INFO_PATH).exists():
            raise FileExistsError(f"{self.root} already holds a dataset: choose a new --out folder")
        self.fps, self.crf, self.robot_type = int(fps), int(crf), robot_type
        self.rows: dict = {}
        self.episodes: list = []
        self.tasks: dict = {}
        self.shapes: dict = {}
        self.sources: list = []
        self._videos: dict = {}
        self._video_frames: dict = {}
        self._image_sums: dict = {}

    def add(self, episode: RecordedEpisode) -> int:
        """Append one episode (frames, videos, per-episode row); returns its frame count."""
        n = episode.num_frames
        index, start = len(self.episodes), sum(e["length"] for e in self.episodes)
        columns = episode_columns(episode)
        if "observation.joints" in self.shapes and "observation.joints" in columns \
                and columns["observation.joints"].shape[1] != self.shapes["observation.joints"]:
            raise ValueError(f"{episode.name}: {columns['observation.joints'].shape[1]} joints, earlier episodes "
                             f"had {self.shapes['observation.joints']}: export them separately")
        task_index = self.tasks.setdefault(episode.task, len(self.tasks))
        row = {"episode_index": index, "tasks": [episode.task], "length": n, "data/chunk_index": 0,
               "data/file_index": 0, "dataset_from_index": start, "dataset_to_index": start + n,
               "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        wrist = episode.wrist_index() if len(episode.camera_stamps.get("wrist", ())) else None
        for role, key in CAMERA_KEYS.items():
            if role == "wrist" and wrist is None:
                raise ValueError(f"{episode.name}: no wrist camera frames")
            offset = self._video_frames.get(key, 0)
            indices = None if role == "shoulder" else wrist
            written = self._write_video(key, episode, role, indices)
            row.update({f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                        f"videos/{key}/from_timestamp": offset / self.fps,
                        f"videos/{key}/to_timestamp": (offset + written) / self.fps})
        for name, values in columns.items():
            self.rows.setdefault(name, []).append(values)
            if values.ndim == 2:
                self.shapes.setdefault(name, values.shape[1])
        frame = np.arange(n)
        for name, values in (("timestamp", frame / self.fps), ("frame_index", frame), ("episode_index",
                             np.full(n, index)), ("index", start + frame), ("task_index", np.full(n, task_index)),
                             ("next.done", frame == n - 1)):
            self.rows.setdefault(name, []).append(values)
        self.episodes.append(row)
        self.sources.append({"episode_index": index, "bag": str(episode.path), "name": episode.name,
                             "recovered": episode.recovered, "true_success": episode.true_success,
                             "metadata": episode.metadata})
        return n

    def _write_video(self, key: str, episode: RecordedEpisode, role: str, indices) -> int:
        """Append the episode's frames of one camera to that camera's video; returns the frames written."""
        import imageio.v2 as imageio

        if indices is None:
            frames = (frame for _, frame in episode.iter_frames(role))
        else:  # the wrist frame nearest each shoulder frame (repeats allowed)
            frames = iter(episode.frames(role, indices))
        count = 0
        for frame in frames:
            if key not in self._videos:
                h, w = frame.shape[:2]
                if h % 2 or w % 2:
                    raise ValueError(f"{episode.name}: {role} frames are {w}x{h}; H.264 (yuv420p) needs even sizes")
                path = self.root / fmt.VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._videos[key] = imageio.get_writer(
                    str(path), format="FFMPEG", fps=self.fps, codec="libx264", macro_block_size=1,
                    ffmpeg_log_level="error", pixelformat="yuv420p",
                    output_params=["-crf", str(self.crf), "-g", "2"])  # short GOP: cheap seeking to any episode
                self.shapes[key] = (h, w)
                self._image_sums[key] = [np.zeros(3), np.zeros(3), np.ones(3), np.zeros(3), 0]
            if frame.shape[:2] != self.shapes[key]:
                raise ValueError(f"{episode.name}: {role} frame size {frame.shape[:2]} differs from {self.shapes[key]}")
            self._videos[key].append_data(frame)
            sums = self._image_sums[key]
            pixels = frame.reshape(-1, 3).astype(np.float64) / 255.0
            sums[0] += pixels.sum(0)
            sums[1] += (pixels ** 2).sum(0)
            sums[2] = np.minimum(sums[2], pixels.min(0))
            sums[3] = np.maximum(sums[3], pixels.max(0))
            sums[4] += len(pixels)
            count += 1
        self._video_frames[key] = self._video_frames.get(key, 0) + count
        return count

    def finish(self) -> Path:
        """Close the videos and write data, episodes, tasks, stats and info; returns the dataset folder."""
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.episodes:
            raise ValueError("no episode to export")
        for writer in self._videos.values():
            writer.close()
        table = {name: np.concatenate(parts) for name, parts in self.rows.items()}
        arrays, features = {}, {}
        for name, values in table.items():
            dtype = "bool" if values.dtype == bool else ("int64" if values.dtype.kind == "i" else "float32")
            if values.ndim == 2:
                arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.astype(np.float32).ravel()),
                                                                 values.shape[1])
                names = {"observation.state": STATE_NAMES, "action": ACTION_NAMES}.get(name)
                features[name] = {"dtype": "float32", "shape": [values.shape[1]], "names": names}
            else:
                arrays[name] = pa.array(values.astype(dtype))
                features[name] = {"dtype": dtype, "shape": [1], "names": None}
        data_path = self.root / fmt.DATA_PATH.format(chunk_index=0, file_index=0)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(arrays), data_path)
        stats = {name: fmt.feature_stats(values) for name, values in table.items()}
        for key, (h, w) in ((k, self.shapes[k]) for k in CAMERA_KEYS.values()):
            features[key] = {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                             "info": {"video.height": h, "video.width": w, "video.codec": "h264",
                                      "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                                      "video.fps": self.fps, "video.channels": 3, "has_audio": False}}
            stats[key] = _image_stats(self._image_sums[key])
        features = {**{k: features[k] for k in features if k not in fmt.DEFAULT_FEATURES}, **fmt.DEFAULT_FEATURES}
        episodes = pd.DataFrame(self.episodes)
        for name, parts in self.rows.items():  # per-episode stats, as LeRobot keeps them beside each row
            for stat in ("min", "max", "mean", "std", "count"):
                episodes[f"stats/{name}/{stat}"] = [fmt.feature_stats(p)[stat] for p in parts]
        episodes_path = self.root / fmt.EPISODES_PATH.format(chunk_index=0, file_index=0)
        episodes_path.parent.mkdir(parents=True, exist_ok=True)
        episodes.to_parquet(episodes_path, index=False)
        pd.DataFrame({"task_index": list(self.tasks.values())},
                     index=pd.Index(list(self.tasks), name="task")).to_parquet(self.root / fmt.TASKS_PATH)
        total = int(len(table["index"]))
        info = {"codebase_version": fmt.CODEBASE_VERSION, "robot_type": self.robot_type,
                "total_episodes": len(self.episodes), "total_frames": total, "total_tasks": len(self.tasks),
                "chunks_size": fmt.CHUNKS_SIZE, "data_files_size_in_mb": 100, "video_files_size_in_mb": 500,
                "fps": self.fps, "splits": {"train": f"0:{len(self.episodes)}"}, "data_path": fmt.DATA_PATH,
                "video_path": fmt.VIDEO_PATH, "features": features}
        (self.root / fmt.INFO_PATH).write_text(json.dumps(info, indent=4) + "\n")
        (self.root / fmt.STATS_PATH).write_text(json.dumps(stats, indent=4) + "\n")
        (self.root / "meta" / "sole_r1_sources.json").write_text(json.dumps(self.sources, indent=2, default=str))
        return self.root


def _image_stats(sums: list) -> dict:
    """Per-channel stats of a camera in [0, 1], shaped (3, 1, 1) as LeRobot stores image stats."""
    total, squares, low, high, count = sums
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    shape = lambda v: [[[float(x)]] for x in v]  # noqa: E731
    return {"min": shape(low), "max": shape(high), "mean": shape(mean), "std": shape(std),
            "count": [int(count)]}


def export_lerobot(episodes: Sequence[RecordedEpisode], out: str | Path, fps: Optional[int] = None,
                   crf: int = 18, robot_type: str = "franka") -> Path:
    """Write `episodes` as one LeRobot v3.0 dataset in `out` (fps: from the first episode's stamps if None)."""
    if fps is None:
        stamps = episodes[0].camera_stamps["shoulder"]
        fps = max(1, round((len(stamps) - 1) / ((stamps[-1] - stamps[0]) * 1e-9))) if len(stamps) > 1 else 10
    writer = LeRobotWriter(out, fps, crf, robot_type)
    for episode in episodes:
        writer.add(episode)
    return writer.finish()
