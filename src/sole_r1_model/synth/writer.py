"""Files a synthesis run writes: per-episode shards and markers, official-layout videos, the final dataset.

Layout under OUT:
    episodes/<suite>/<task>/episode_NNN.arrow   rows of one episode (Arrow stream, the dataset's schema)
    episodes/<suite>/<task>/episode_NNN.json    completion marker, written last (resume skips these episodes)
    test_videos/<suite>/<task>/<successful|unsuccessful>/<stem>.mp4 and <stem>/data.json   (official layout)
    heldout/test_videos/...                     the same for --holdout-tasks (no dataset rows)
    dataset/                                    `datasets` save_to_disk output + README.md (dataset card)
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import resource
from pathlib import Path

import numpy as np
import pyarrow as pa

from sole_r1_model.synth.rollouts import Episode, EpisodePlan

DATASET_DIR = "dataset"
VIDEO_DIR = "test_videos"
HELDOUT_DIR = "heldout"
EPISODE_DIR = "episodes"


def features():
    """The dataset's `datasets.Features` (columns of sole_r1_model.examples.COLUMNS)."""
    from datasets import Features, Image, Value

    message = [{"role": Value("string"), "content": [{"type": Value("string"), "text": Value("string")}]}]
    return Features({
        "images": [Image()], "prompt": message, "completion": message,
        "progress": Value("int32"), "previous_progress": Value("int32"), "task": Value("string"),
        "suite": Value("string"), "task_name": Value("string"), "episode": Value("string"),
        "frame_index": Value("int32"), "num_frames": Value("int32"), "success": Value("bool"),
        "policy": Value("string"), "variant": Value("string"),
    })


def episode_paths(out: Path, plan: EpisodePlan) -> tuple[Path, Path]:
    """(rows shard, completion marker) of one episode."""
    folder = out / EPISODE_DIR / plan.ref.suite / plan.ref.slug
    return folder / f"{plan.name}.arrow", folder / f"{plan.name}.json"


def read_marker(out: Path, plan: EpisodePlan) -> dict | None:
    """The completion marker of an episode, or None when it has not finished."""
    path = episode_paths(out, plan)[1]
    return json.loads(path.read_text()) if path.is_file() else None


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary name, so a killed run never leaves a half file under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_rows(path: Path, rows: list[dict]) -> str:
    """Write an episode's rows as an Arrow stream with the dataset schema; returns the file's sha256."""
    feats = features()
    table = pa.Table.from_pylist([feats.encode_example(row) for row in rows], schema=feats.arrow_schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    data = sink.getvalue().to_pybytes()
    _atomic_write(path, data)
    return hashlib.sha256(data).hexdigest()


def episode_stem(plan: EpisodePlan, success: bool, labels: list[int]) -> str:
    """Official-style name: `<suite>_<task>_episode_NNN_<successful|unsuccessful>_max_reward_M`."""
    outcome = "successful" if success else "unsuccessful"
    return f"{plan.ref.suite}_{plan.ref.slug}_{plan.name}_{outcome}_max_reward_{max(labels)}"


def write_official(out: Path, episode: Episode, labels: list[int], fps: float) -> Path:
    """Side-by-side video (external | wrist) + data.json in the official test_videos layout; returns the video."""
    plan = episode.plan
    root = out / HELDOUT_DIR / VIDEO_DIR if plan.heldout else out / VIDEO_DIR
    folder = root / plan.ref.suite / plan.ref.slug / ("successful" if episode.success else "unsuccessful")
    stem = episode_stem(plan, episode.success, labels)
    truth = {"task description": episode.instruction, "ground-truth rewards": [int(v) for v in labels],
             "success": episode.success}
    _atomic_write(folder / stem / "data.json", json.dumps(truth).encode())
    video = folder / f"{stem}.mp4"
    write_video(video, [_side_by_side(a, b) for a, b in zip(episode.shoulder, episode.wrist)], fps)
    return video


def _side_by_side(external: np.ndarray, wrist: np.ndarray) -> np.ndarray:
    if wrist.shape != external.shape:
        import cv2

        wrist = cv2.resize(wrist, (external.shape[1], external.shape[0]), interpolation=cv2.INTER_AREA)
    return np.hstack([external, wrist])


def write_video(path: Path, frames: list, fps: float) -> None:
    """H.264 MP4 (yuv420p, CRF 18) through imageio-ffmpeg; one encoder thread and bit-exact muxing, so the same
    frames give the same bytes whatever the machine's core count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + f".tmp{os.getpid()}.mp4")
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary imageio writes through)
    except ImportError:  # e.g. a GPU box without imageio-ffmpeg: OpenCV's MPEG-4 Part 2 encoder instead
        _write_video_opencv(tmp, frames, fps)
        os.replace(tmp, path)
        return
    params = ["-crf", "18", "-preset", "veryfast", "-threads", "1", "-fflags", "+bitexact",
              "-flags:v", "+bitexact", "-map_metadata", "-1"]
    with imageio.get_writer(tmp, fps=fps, codec="libx264", quality=None, pixelformat="yuv420p",
                            macro_block_size=2, ffmpeg_log_level="error", ffmpeg_params=params) as writer:
        for frame in frames:
            writer.append_data(frame)
    os.replace(tmp, path)


def _write_video_opencv(path: Path, frames: list, fps: float) -> None:
    import cv2

    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}: install imageio-ffmpeg")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def write_marker(out: Path, plan: EpisodePlan, record: dict) -> None:
    """Mark an episode finished (last file written for it)."""
    _atomic_write(episode_paths(out, plan)[1], (json.dumps(record, sort_keys=True, indent=1) + "\n").encode())


def build_dataset(out: Path, markers: list[dict], plans: list[EpisodePlan], card: str, shard_size_mb: int):
    """Concatenate the episodes' rows (in plan order) into OUT/dataset with save_to_disk; returns the Dataset."""
    from datasets import Dataset, DatasetInfo
    from datasets.table import MemoryMappedTable, concat_tables

    shards = [episode_paths(out, p)[0] for p, m in zip(plans, markers) if m["num_examples"] > 0]
    if not shards:
        raise RuntimeError("no dataset rows: every selected task is held out, or no episode finished")
    _raise_open_file_limit(len(shards) + 64)  # each memory-mapped shard holds a file descriptor
    table = concat_tables([MemoryMappedTable.from_file(str(path)) for path in shards])
    digest = hashlib.sha256("".join(m["rows_sha256"] for m in markers if m["num_examples"] > 0).encode())
    info = DatasetInfo(description="SOLE-R1 reward-model training data made by `sole-r1 synth`",
                       features=features())
    # A content fingerprint (save_to_disk writes it to state.json): the same episodes give the same bytes.
    dataset = Dataset(table, info=info, fingerprint=digest.hexdigest()[:16])
    total = sum(path.stat().st_size for path in shards)
    num_shards = max(1, min(len(dataset), math.ceil(total / (shard_size_mb * 2**20))))
    target = out / DATASET_DIR
    if target.exists():
        import shutil

        shutil.rmtree(target)  # rebuilt from the episode shards every run
    dataset.save_to_disk(str(target), num_shards=num_shards)
    (target / "README.md").write_text(card)
    return dataset


def _raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(needed, soft), hard), hard))
