"""What the live view serves, without rclpy: image encoding, JSON payloads of progress, commands, e-stop, episodes.

The `foxglove_view` node turns ROS messages into these and logs them on foxglove-sdk channels; the functions read
messages by attribute only, so a deserialised bag message (rosbags) converts the same way.
"""
from __future__ import annotations

import json
import math
import time
from typing import Any

import cv2
import numpy as np

IMAGE_FORMATS = ("jpeg", "png", "raw")

# JSON schemas of the custom channels (the Foxglove app shows field names from them; Plot panels read the numbers).
_NUMBER, _STRING, _BOOL, _INT = {"type": "number"}, {"type": "string"}, {"type": "boolean"}, {"type": "integer"}
_VECTOR = {"type": "array", "items": _NUMBER, "minItems": 3, "maxItems": 3}
SCHEMAS = {
    "sole_r1.ProgressEstimate": {"episode_id": _INT, "task": _STRING, "progress": _NUMBER, "valid": _BOOL,
                                 "query_index": _INT, "frames_used": _INT, "latency": _NUMBER, "rewarder": _STRING,
                                 "privileged": _BOOL, "reasoning": _STRING, "stamp": _NUMBER},
    "sole_r1.EEDeltaCommand": {"episode_id": _INT, "translation": _VECTOR, "rotation": _VECTOR, "gripper": _NUMBER,
                               "hold": _BOOL, "stamp": _NUMBER},
    "sole_r1.EStop": {"estopped": _BOOL},
    "sole_r1.EpisodeInfo": {"episode_id": _INT, "event": _STRING, "task": _STRING, "step_count": _INT,
                            "perceived_progress": _NUMBER, "end_reason": _STRING, "true_success": _STRING,
                            "privileged_progress": _NUMBER, "stamp": _NUMBER},
}


def json_schema(name: str) -> bytes:
    """The JSON schema of custom channel `name` (a key of SCHEMAS), as bytes."""
    return json.dumps({"title": name, "type": "object", "properties": SCHEMAS[name]}).encode()


def stamp_seconds(msg: Any) -> float:
    """header.stamp in seconds."""
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _finite(value: float) -> float | None:
    """JSON has no NaN: None instead."""
    return float(value) if math.isfinite(value) else None


def progress_payload(msg: Any) -> dict:
    """A ProgressEstimate as JSON (progress %, validity, the chain of thought)."""
    return {"episode_id": int(msg.episode_id), "task": msg.task, "progress": _finite(msg.progress),
            "valid": bool(msg.valid), "query_index": int(msg.query_index), "frames_used": int(msg.frames_used),
            "latency": _finite(msg.latency), "rewarder": msg.rewarder, "privileged": bool(msg.privileged),
            "reasoning": msg.reasoning or msg.raw_text, "stamp": stamp_seconds(msg)}


def progress_text(msg: Any) -> str:
    """One line for a log panel: progress, validity, rewarder and the chain of thought."""
    state = "valid" if msg.valid else "INVALID (previous value carried)"
    tag = " PRIVILEGED" if msg.privileged else ""
    return (f"episode {msg.episode_id} query {msg.query_index}: {msg.progress:.0f}% [{state}, {msg.rewarder}{tag}, "
            f"{msg.latency:.2f} s] {(msg.reasoning or msg.raw_text).strip()}")


def command_payload(msg: Any) -> dict:
    """A gated EEDeltaCommand as JSON (metres, axis-angle radians, gripper [-1, 1])."""
    t, r = msg.translation, msg.rotation
    return {"episode_id": int(msg.episode_id), "translation": [t.x, t.y, t.z], "rotation": [r.x, r.y, r.z],
            "gripper": float(msg.gripper), "hold": bool(msg.hold), "stamp": stamp_seconds(msg)}


def episode_payload(msg: Any) -> dict:
    """An EpisodeInfo as JSON (true success marked PRIVILEGED in the app by its name)."""
    event = {0: "started", 1: "step", 2: "ended"}.get(int(msg.event), str(msg.event))
    truth = str(bool(msg.true_success)).lower() if msg.true_success_known else "unknown"
    return {"episode_id": int(msg.episode_id), "event": event, "task": msg.task, "step_count": int(msg.step_count),
            "perceived_progress": _finite(msg.perceived_progress), "end_reason": msg.end_reason,
            "true_success": truth, "privileged_progress": _finite(msg.privileged_progress),
            "stamp": stamp_seconds(msg)}


def encode_image(rgb: np.ndarray, image_format: str, jpeg_quality: int = 85) -> bytes:
    """An RGB frame as JPEG or PNG bytes (what a foxglove CompressedImage carries)."""
    if image_format not in ("jpeg", "png"):
        raise ValueError(f"image_format must be jpeg or png to compress, got {image_format!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if image_format == "jpeg" else []
    ok, data = cv2.imencode(".jpg" if image_format == "jpeg" else ".png", np.ascontiguousarray(rgb[:, :, ::-1]),
                            params)
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} frame as {image_format}")
    return data.tobytes()


class RateLimiter:
    """True at most `rate` times per second (0 = always): the view must not cost the graph a full-rate encode."""

    def __init__(self, rate: float) -> None:
        self.period = 1.0 / rate if rate > 0 else 0.0
        self._last = -math.inf

    def ready(self) -> bool:
        """True when the period has passed since the last True."""
        now = time.monotonic()
        if now - self._last < self.period:
            return False
        self._last = now
        return True
