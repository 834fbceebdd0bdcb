"""Reward-model training examples: the one row schema `sole-r1 synth` writes and `sole-r1 train` reads.

Each row is one model call exactly as a rewarder makes it at run time (docs/training.md):
- `images`: one composite image (the project's `CompositeFrameBuilder` output, already smart-resized);
- `prompt`: the official chat messages (system instruction + user [image, question with previous progress]);
- `completion`: the assistant target `<think>reasoning</think><answer>N%</answer>`;
- the label and where it came from (`progress`, `previous_progress`, `task`, `suite`, `task_name`, `episode`,
  `frame_index`, `num_frames`, `success`, `policy`, `variant`).
This is TRL's conversational prompt-completion format, so `SFTTrainer` (loss on the completion only) and
`GRPOTrainer` (extra columns reach the reward functions) both read it without conversion.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from sole_r1_model.parsing import clamp_progress
from sole_r1_model.prompt import build_chat, build_user_text

# Column order of every dataset the project writes; readers may rely on these names.
COLUMNS = ("images", "prompt", "completion", "progress", "previous_progress", "task", "suite", "task_name",
           "episode", "frame_index", "num_frames", "success", "policy", "variant")


def format_target(reasoning: str, progress: float) -> str:
    """The assistant text the model is trained to write: `<think>…</think><answer>N%</answer>`."""
    if not isinstance(reasoning, str) or not reasoning.strip():
        raise ValueError("reasoning must be non-empty text")
    if "<answer>" in reasoning or "</think>" in reasoning:
        raise ValueError("reasoning must not contain answer or think tags")
    if not math.isfinite(float(progress)):
        raise ValueError(f"progress must be finite, got {progress!r}")
    return f"<think>{reasoning.strip()}</think><answer>{int(round(clamp_progress(progress)))}%</answer>"


def prompt_messages(task: str, previous_progress: float, variant: str = "full") -> list[dict]:
    """The official system + user messages in TRL's conversational form (every content a list of parts)."""
    messages = build_chat(build_user_text(task, previous_progress, variant))
    system = messages[0]
    # The official shape keeps the system content a plain string; Qwen-VL chat templates render a string and a
    # one-text-part list identically, and TRL's collators need parts, so the dataset stores parts.
    return [{"role": "system", "content": [{"type": "text", "text": system["content"]}]}, messages[1]]


def make_example(image: np.ndarray, *, task: str, progress: float, previous_progress: float, reasoning: str,
                 suite: str, task_name: str, episode: str, frame_index: int, num_frames: int, success: bool,
                 policy: str, variant: str = "full") -> dict[str, Any]:
    """One dataset row (see the module docstring); `image` is the RGB uint8 composite."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("image must be an RGB uint8 HxWx3 composite")
    label = int(round(clamp_progress(progress)))
    previous = int(round(clamp_progress(previous_progress)))
    return {
        "images": [image],
        "prompt": prompt_messages(task, previous, variant),
        "completion": [{"role": "assistant", "content": [{"type": "text", "text": format_target(reasoning, label)}]}],
        "progress": label,
        "previous_progress": previous,
        "task": task,
        "suite": suite,
        "task_name": task_name,
        "episode": episode,
        "frame_index": int(frame_index),
        "num_frames": int(num_frames),
        "success": bool(success),
        "policy": policy,
        "variant": variant,
    }


def completion_text(example: dict) -> str:
    """The assistant target text of a dataset row."""
    return example["completion"][0]["content"][0]["text"]
