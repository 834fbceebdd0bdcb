"""The frames of one query as the short clip that the video-question backends (TOPReward, RoboReward) are shown.

Both methods were published with Qwen *video* input: a clip of the episode so far. A `ProgressQuery` carries the
episode's first, previous and current frames of each camera; we send one camera's three frames, in that order,
as still images. The Qwen video processor needs torchvision, which is not installable beside the CPU torch wheel
here (qwen_processor.py), and three ordered stills carry the same order a 3-frame clip does, without its
timestamps.
"""
from __future__ import annotations

import numpy as np

from sole_r1_model.rewarder import ProgressQuery

CAMERAS = ("external", "wrist")


def query_frames(query: ProgressQuery, camera: str) -> list[np.ndarray]:
    """The (first, previous, current) RGB frames of `camera`; ValueError when the query has none of it."""
    if camera not in CAMERAS:
        raise ValueError(f"camera must be one of {CAMERAS}, got {camera!r}")
    frames = query.external if camera == "external" else query.wrist
    if frames is None:
        raise ValueError(f"the query has no {camera} frames; set camera: external")
    return list(frames)


def image_turn(num_images: int, text: str) -> list[dict]:
    """One user chat turn: `num_images` image placeholders (the frames, in order), then `text`."""
    return [{"role": "user", "content": [{"type": "image"} for _ in range(num_images)] + [
        {"type": "text", "text": text}]}]
