"""The LeRobot dataset formats v3.0 and v2.x on disk: paths, the episode index, per-feature stats, a v3.0 reader.

Layout v3.0 (as huggingface/lerobot `datasets/utils.py` defines it):
    meta/info.json                                   codebase_version "v3.0", fps, features, paths, totals
    meta/stats.json                                  per feature: min, max, mean, std, count (+ quantiles q01..)
    meta/tasks.parquet                               index = task string, column task_index
    meta/episodes/chunk-000/file-000.parquet         one row per episode: length, tasks, data/video file and range,
                                                     per-episode stats as `stats/<feature>/<stat>` columns
    data/chunk-000/file-000.parquet                  one row per frame: features + timestamp, indices
    videos/<camera key>/chunk-000/file-000.mp4       every episode of one camera, one after another
An episode's frames are rows dataset_from_index..dataset_to_index-1 of its data file and the frames between
from_timestamp and to_timestamp of each camera's video file (frame = round(t * fps)).

Layout v2.0 / v2.1 (lerobot before 0.4; `scripts/convert_dataset_v21_to_v30.py` lists both):
    meta/info.json, meta/episodes.jsonl ({episode_index, tasks, length}), meta/tasks.jsonl ({task_index, task}),
    meta/episodes_stats.jsonl ({episode_index, stats}, v2.1) or meta/stats.json (v2.0),
    data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet                one file per episode
    videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4      one video per episode
with episode_chunk = episode_index // chunks_size; paths come from info.json's data_path / video_path.
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

CODEBASE_VERSION = "v3.0"
LEGACY_VERSIONS = ("v2.0", "v2.1")
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
TASKS_PATH = "meta/tasks.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
LEGACY_EPISODES_PATH = "meta/episodes.jsonl"
LEGACY_EPISODES_STATS_PATH = "meta/episodes_stats.jsonl"
LEGACY_TASKS_PATH = "meta/tasks.jsonl"
CAMERA_DTYPES = ("video", "image")
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
    info = read_info(root)
    if info["codebase_version"] != CODEBASE_VERSION:
        raise ValueError(f"{root}: codebase_version {info['codebase_version']!r}, this reader knows v3.0")
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


def read_info(root: str | Path) -> dict:
    """meta/info.json of a v2.x or v3.0 dataset (ValueError when the folder is not one this module knows)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: no such folder (give the dataset's root, the folder holding meta/ and data/)")
    if not (root / INFO_PATH).is_file():
        raise ValueError(f"{root}: no {INFO_PATH}, not a LeRobot dataset")
    try:
        info = json.loads((root / INFO_PATH).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{root / INFO_PATH} is not valid JSON: {exc}") from None
    version = info.get("codebase_version")
    if version not in (CODEBASE_VERSION, *LEGACY_VERSIONS):
        raise ValueError(f"{root}: codebase_version {version!r}; LeRobot datasets v2.0, v2.1 and v3.0 are supported")
    if not isinstance(info.get("features"), dict) or "data_path" not in info:
        raise ValueError(f"{root / INFO_PATH}: no 'features' / 'data_path', not a LeRobot info.json")
    return info


def is_legacy(info: dict) -> bool:
    """True for the v2.x layout (one data file and one video per episode, JSON-lines metadata)."""
    return info["codebase_version"] in LEGACY_VERSIONS


@dataclasses.dataclass(frozen=True)
class EpisodeLocation:
    """Where one episode lives: its data file, and per camera video its file and start time in that file."""

    index: int
    length: int
    tasks: tuple
    data_file: str                 # relative to the dataset root
    videos: dict                   # video key -> (file relative to the root, from_timestamp in seconds)


def list_episodes(root: str | Path, info: dict) -> list[EpisodeLocation]:
    """Every episode of the dataset, in episode order (ValueError when the metadata is missing)."""
    root = Path(root)
    video_keys = [k for k, f in info["features"].items() if f.get("dtype") == "video"]
    episodes = []
    if is_legacy(info):
        chunks = int(info.get("chunks_size", CHUNKS_SIZE))
        for row in read_jsonl(root / LEGACY_EPISODES_PATH):
            index = int(row["episode_index"])
            chunk = index // chunks
            videos = {key: (info["video_path"].format(episode_chunk=chunk, video_key=key, episode_index=index), 0.0)
                      for key in video_keys}
            episodes.append(EpisodeLocation(index, int(row["length"]), tuple(row.get("tasks") or ()),
                                            info["data_path"].format(episode_chunk=chunk, episode_index=index),
                                            videos))
    else:
        for row in episode_rows(root):
            videos = {key: (info["video_path"].format(video_key=key,
                                                      chunk_index=int(row[f"videos/{key}/chunk_index"]),
                                                      file_index=int(row[f"videos/{key}/file_index"])),
                            float(row[f"videos/{key}/from_timestamp"])) for key in video_keys}
            data_file = info["data_path"].format(chunk_index=int(row["data/chunk_index"]),
                                                 file_index=int(row["data/file_index"]))
            tasks = row.get("tasks")
            episodes.append(EpisodeLocation(int(row["episode_index"]), int(row["length"]),
                                            tuple(tasks) if tasks is not None else (), data_file, videos))
    if not episodes:
        raise ValueError(f"{root}: the dataset lists no episodes")
    return sorted(episodes, key=lambda e: e.index)


def episode_rows(root: Path) -> list[dict]:
    """The v3.0 episodes table (meta/episodes/*/*.parquet) as dicts, without the per-episode stats columns."""
    import pyarrow.parquet as pq

    files = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not files:
        raise ValueError(f"{root}: no meta/episodes/*/*.parquet, the v3.0 episode index is missing")
    rows = []
    for path in files:
        names = [n for n in pq.read_schema(path).names if not n.startswith("stats/")]
        rows += pq.read_table(path, columns=names).to_pylist()
    return rows


def read_jsonl(path: Path) -> list[dict]:
    """A JSON-lines file as a list of objects (ValueError naming the file when it is missing or broken)."""
    if not path.is_file():
        raise ValueError(f"{path}: missing (a v2.x dataset keeps its episode index there)")
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON lines ({exc})") from None


def task_names(root: str | Path, info: dict) -> dict:
    """task_index -> task string, from meta/tasks.parquet (v3.0) or meta/tasks.jsonl (v2.x); {} without one."""
    root = Path(root)
    if is_legacy(info):
        path = root / LEGACY_TASKS_PATH
        return {int(r["task_index"]): str(r["task"]) for r in read_jsonl(path)} if path.is_file() else {}
    import pandas as pd

    if not (root / TASKS_PATH).is_file():  # episodes usually name their tasks themselves
        return {}
    table = pd.read_parquet(root / TASKS_PATH)
    names = table["task"] if "task" in table.columns else table.index
    return {int(i): str(t) for t, i in zip(names, table["task_index"])}


def quantile_keys(stats: dict) -> list[str]:
    """The quantile stats (q01, q10, ...) a dataset's stats carry, so new features get the same set."""
    for entry in stats.values():
        if isinstance(entry, dict):
            keys = [k for k in entry if k.startswith("q") and k[1:].isdigit()]
            if keys:
                return keys
    return []


def feature_stats(values: np.ndarray, quantiles: Sequence[str] = ()) -> dict:
    """min / max / mean / std / count (+ the named quantiles) of a feature over frames (NaN ignored), JSON lists."""
    data = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (no ground truth): stats are null
        out = {"min": np.nanmin(data, 0), "max": np.nanmax(data, 0), "mean": np.nanmean(data, 0),
               "std": np.nanstd(data, 0)}
        for key in quantiles:
            out[key] = np.nanquantile(data, int(key[1:]) / 100.0, axis=0)
    result = {k: [None if not np.isfinite(x) else float(x) for x in v] for k, v in out.items()}
    result["count"] = [int(len(values))]
    return result
