"""The LeRobot dataset format v3.0 on disk, and a reader for it (pyarrow/pandas + video decoding, no `lerobot`).

Layout (as huggingface/lerobot `datasets/utils.py` defines it):
    meta/info.json                                   codebase_version "v3.0", fps, features, paths, totals
    meta/stats.json                                  per feature: min, max, mean, std, count
    meta/tasks.parquet                               index = task string, column task_index
    meta/episodes/chunk-000/file-000.parquet         one row per episode: length, tasks, data/video file and range
    data/chunk-000/file-000.parquet                  one row per frame: features + timestamp, indices
    videos/<camera key>/chunk-000/file-000.mp4       every episode of one camera, one after another
An episode's frames are rows dataset_from_index..dataset_to_index-1 of its data file and the frames between
from_timestamp and to_timestamp of each camera's video file (frame = round(t * fps)).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
TASKS_PATH = "meta/tasks.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


@dataclasses.dataclass
class LeRobotDatasetFiles:
    """A LeRobot v3 dataset read from disk: metadata tables and the frame table, videos decoded on demand."""

    root: Path
    info: dict
    stats: dict
    tasks: list                     # task strings, by task_index
    episodes: "object"              # pandas DataFrame, one row per episode
    frames: "object"                # pandas DataFrame, one row per frame (all data files)

    @property
    def video_keys(self) -> list:
        """Features stored as videos."""
        return [k for k, f in self.info["features"].items() if f["dtype"] == "video"]

    def episode(self, episode_index: int) -> "object":
        """The frame rows of one episode."""
        row = self.episodes.set_index("episode_index").loc[episode_index]
        return self.frames.iloc[int(row["dataset_from_index"]): int(row["dataset_to_index"])]

    def video_frames(self, episode_index: int, key: str) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB frames of camera `key` in one episode, cut from its video file by timestamps."""
        row = self.episodes.set_index("episode_index").loc[episode_index]
        path = self.root / self.info["video_path"].format(video_key=key,
                                                          chunk_index=int(row[f"videos/{key}/chunk_index"]),
                                                          file_index=int(row[f"videos/{key}/file_index"]))
        fps = float(self.info["fps"])
        first = int(round(float(row[f"videos/{key}/from_timestamp"]) * fps))
        last = int(round(float(row[f"videos/{key}/to_timestamp"]) * fps))
        return decode_video(path)[first:last]


def decode_video(path: Path) -> np.ndarray:
    """Every frame of a video file as (T, H, W, 3) uint8 RGB."""
    import imageio.v2 as imageio

    with imageio.get_reader(str(path), format="FFMPEG") as reader:
        return np.stack([np.asarray(frame)[:, :, :3] for frame in reader])


def read_dataset(root: str | Path) -> LeRobotDatasetFiles:
    """Read a LeRobot v3.0 dataset folder (ValueError naming what is missing or inconsistent)."""
    import pandas as pd

    root = Path(root)
    if not (root / INFO_PATH).is_file():
        raise ValueError(f"{root}: no {INFO_PATH}, not a LeRobot dataset")
    info = json.loads((root / INFO_PATH).read_text())
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise ValueError(f"{root}: codebase_version {info.get('codebase_version')!r}, this reader knows v3.0")
    tasks_table = pd.read_parquet(root / TASKS_PATH)
    tasks = [task for task, _ in sorted(zip(tasks_table.index, tasks_table["task_index"]), key=lambda t: t[1])]
    episodes = pd.concat([pd.read_parquet(p) for p in sorted((root / "meta" / "episodes").glob("*/*.parquet"))],
                         ignore_index=True).sort_values("episode_index", ignore_index=True)
    frames = pd.concat([pd.read_parquet(p) for p in sorted((root / "data").glob("*/*.parquet"))],
                       ignore_index=True).sort_values("index", ignore_index=True)
    stats = json.loads((root / STATS_PATH).read_text()) if (root / STATS_PATH).is_file() else {}
    if len(frames) != info["total_frames"] or len(episodes) != info["total_episodes"]:
        raise ValueError(f"{root}: info.json says {info['total_frames']} frames / {info['total_episodes']} episodes, "
                         f"the files hold {len(frames)} / {len(episodes)}")
    return LeRobotDatasetFiles(root, info, stats, tasks, episodes, frames)
