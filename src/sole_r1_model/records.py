"""Offline scoring records, read and written in the exact JSON shape of the official `model_outputs/*.json`.

Official shape (philipmit/sole-r1-model `model_outputs/`, written by Philip-MIT/rewardgen `video_plot`):
a JSON list of objects `{"model": str, "rewards": [N floats], "reasoning_traces": [N str],
"task_description": str}`. Key frame 0 holds "" and 0 %; every other key frame holds the model's whole
completion; frames between key frames hold " " and the linear interpolation of the key-frame answers
(`rewardgen/core.py`, `generate`: `trace_by_original_index.get(frame_idx, " ")`). Entries written by the
official plotting code for ground truth carry no traces; they load with every frame as a key frame.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Optional, Sequence

from sole_r1_model.frames import interpolate_progress
from sole_r1_model.parsing import parse_answer

OFFICIAL_KEYS = ("model", "rewards", "reasoning_traces", "task_description")
BETWEEN_KEY_FRAMES = " "   # trace of a frame that had no model call
FIRST_FRAME_TRACE = ""     # trace of frame 0 (0 % by definition, no call)


@dataclasses.dataclass
class ScoreRecord:
    """One scored episode: per-frame rewards and traces plus the key-frame calls they came from."""

    model: str
    task_description: str
    rewards: list                    # per frame, percent (interpolated between key frames)
    reasoning_traces: Optional[list]  # per frame: completion at key frames, " " elsewhere, "" at frame 0
    key_frame_indices: list          # frames the model was asked about (0 first, no call for it)
    key_progress: list               # progress at each key frame, percent
    key_valid: list = dataclasses.field(default_factory=list)    # per key frame: answer parsed (True at 0)
    key_latency: list = dataclasses.field(default_factory=list)  # per key frame: seconds (0 at frame 0)
    variant: str = "full"

    def __post_init__(self) -> None:
        n = len(self.rewards)
        if n < 1:
            raise ValueError("a record needs at least one frame")
        if self.reasoning_traces is not None and len(self.reasoning_traces) != n:
            raise ValueError(f"{len(self.reasoning_traces)} reasoning traces for {n} rewards")
        if len(self.key_frame_indices) != len(self.key_progress):
            raise ValueError(f"{len(self.key_progress)} key progress values for {len(self.key_frame_indices)} keys")
        if not self.key_frame_indices or self.key_frame_indices[0] != 0 or self.key_frame_indices[-1] >= n:
            raise ValueError(f"key frames must start at 0 and lie within {n} frames, got {self.key_frame_indices}")
        if any(not math.isfinite(float(r)) for r in self.rewards):
            raise ValueError("rewards must be finite numbers")
        self.key_valid = list(self.key_valid) or [True] * len(self.key_frame_indices)
        self.key_latency = list(self.key_latency) or [0.0] * len(self.key_frame_indices)

    @property
    def num_frames(self) -> int:
        """Frames in the episode."""
        return len(self.rewards)

    @property
    def num_calls(self) -> int:
        """Model calls made (one per key frame after the first)."""
        return len(self.key_frame_indices) - 1

    @property
    def num_invalid(self) -> int:
        """Calls whose answer could not be parsed (progress carried forward)."""
        return sum(1 for v in self.key_valid[1:] if not v)

    def key_traces(self) -> list:
        """The completion text at each key frame ("" for frame 0)."""
        traces = self.reasoning_traces or [""] * self.num_frames
        return [traces[i] for i in self.key_frame_indices]

    def to_official(self) -> dict:
        """This record as one object of an official model_outputs JSON list (same keys, same order)."""
        out = {"model": self.model, "rewards": [float(r) for r in self.rewards]}
        if self.reasoning_traces is not None:
            out["reasoning_traces"] = list(self.reasoning_traces)
        out["task_description"] = self.task_description
        return out


def spread_key_traces(key_indices: Sequence[int], key_texts: Sequence[str], num_frames: int) -> list:
    """Per-frame traces: each key frame's text, " " between key frames, "" at frame 0."""
    if len(key_indices) != len(key_texts):
        raise ValueError(f"{len(key_texts)} texts for {len(key_indices)} key frames")
    traces = [BETWEEN_KEY_FRAMES] * num_frames
    for index, text in zip(key_indices, key_texts):
        traces[index] = text
    traces[0] = FIRST_FRAME_TRACE
    return traces


def build_record(model: str, task: str, num_frames: int, key_indices: Sequence[int], key_progress: Sequence[float],
                 key_texts: Sequence[str], key_valid: Sequence[bool] = (), key_latency: Sequence[float] = (),
                 variant: str = "full") -> ScoreRecord:
    """Assemble a record from key-frame answers: interpolate rewards, spread the traces to every frame."""
    rewards = interpolate_progress(key_indices, key_progress, num_frames).tolist()
    return ScoreRecord(model=model, task_description=task, rewards=rewards,
                       reasoning_traces=spread_key_traces(key_indices, key_texts, num_frames),
                       key_frame_indices=[int(i) for i in key_indices], key_progress=[float(p) for p in key_progress],
                       key_valid=list(key_valid), key_latency=list(key_latency), variant=variant)


def write_records(records: Sequence[ScoreRecord] | ScoreRecord, path: str | Path) -> Path:
    """Write records as an official model_outputs JSON list (creating the folder)."""
    records = [records] if isinstance(records, ScoreRecord) else list(records)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([r.to_official() for r in records]))
    return path


def read_records(path: str | Path) -> list[ScoreRecord]:
    """Read an official (or our) model_outputs JSON list back into records, recovering the key frames."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no model_outputs JSON at {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ValueError(f"{path}: expected a list of objects with keys {OFFICIAL_KEYS}")
    return [_record_from_official(d, path) for d in data]


def _record_from_official(entry: dict, path: Path) -> ScoreRecord:
    """Rebuild a ScoreRecord from one official object; key frames are the frames holding a completion."""
    if "rewards" not in entry or not isinstance(entry["rewards"], list):
        raise ValueError(f"{path}: every entry needs a 'rewards' list (keys found: {sorted(entry)})")
    rewards = [float(r) for r in entry["rewards"]]
    traces = entry.get("reasoning_traces")
    if traces is None:  # e.g. a ground-truth curve: every frame is a measurement
        keys = list(range(len(rewards)))
        valid = [True] * len(keys)
    else:
        if len(traces) != len(rewards):
            raise ValueError(f"{path}: {len(traces)} reasoning traces for {len(rewards)} rewards")
        keys = [0] + [i for i in range(1, len(traces)) if str(traces[i]).strip()]
        valid = [True] + [parse_answer(traces[i], 0.0).valid for i in keys[1:]]
    return ScoreRecord(model=str(entry.get("model", "")), task_description=str(entry.get("task_description", "")),
                       rewards=rewards, reasoning_traces=None if traces is None else [str(t) for t in traces],
                       key_frame_indices=keys, key_progress=[rewards[i] for i in keys], key_valid=valid)


def read_ground_truth(path: str | Path) -> tuple[str, list]:
    """Read a `{"task description": str, "ground-truth rewards": [...]}` file: (task, per-frame rewards)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        return str(data["task description"]), [float(r) for r in data["ground-truth rewards"]]
    except FileNotFoundError:
        raise FileNotFoundError(f"no ground-truth JSON at {path}") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: expected {{'task description': str, 'ground-truth rewards': [numbers]}} "
                         f"({type(exc).__name__}: {exc})") from None
