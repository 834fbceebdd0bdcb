"""`robometer` rewarder: a client of Robometer's HTTP eval server (robometer/robometer `evals/eval_server.py`).

The protocol is the one of Robometer's own client (`scripts/example_inference.py`): a multipart POST to
`/evaluate_batch_npy` with, per sample i, a form field `sample_i` holding the sample JSON
(`{"sample_type": "progress", "trajectory": {"frames": {"__numpy_file__": KEY}, "frames_shape": [T, H, W, 3],
"task": ..., "id": ..., "metadata": {"subsequence_length": T}, "video_embeddings": null}}`) and a file KEY =
`sample_i_trajectory_frames` holding the frames as .npy (uint8 T x H x W x 3), plus a field `use_frame_steps`.
The reply is JSON: `{"outputs_progress": {"progress_pred": [[p_0 .. p_T-1], ...]}, "outputs_success":
{"success_probs": [[...], ...]} | null, "outputs_preference": null}` with progress in [0, 1] per frame.

Each query becomes one sample of T = 3 frames -- its camera's first, previous and current frames -- and its
progress is 100 x the prediction at the last (current) frame; the whole reply for that sample is kept in
`raw_text`. Robometer checkpoints are not a transformers architecture (see RobometerRewarderConfig.mode), so
there is no local mode: the model runs behind its server.
"""
from __future__ import annotations

import io
import json
import math
import os
import time
import uuid
from typing import Optional

import numpy as np

from sole_r1_model.parsing import clamp_progress
from sole_r1_model.rewarder import ProgressQuery, ProgressResult
from sole_r1_model.rewarders.config import RobometerRewarderConfig
from sole_r1_model.rewarders.prompted import CountingRewarder
from sole_r1_model.rewarders.remote import RequestFailed, RetryPolicy, call_with_retries, http_post

ENDPOINT = "/evaluate_batch_npy"


def trajectory_frames(query: ProgressQuery, camera: str) -> np.ndarray:
    """The (first, previous, current) frames of one camera as a 3 x H x W x 3 uint8 array (ValueError if unusable)."""
    frames = query.external if camera == "external" else query.wrist
    if frames is None:
        raise ValueError("robometer rewarder is set to camera: wrist but the query has no wrist frames")
    if len({frame.shape for frame in frames}) != 1:
        raise ValueError(f"the {camera} frames differ in size ({[f.shape for f in frames]}); Robometer needs one size")
    return np.stack(frames)


def progress_sample(index: int, query: ProgressQuery, frames: np.ndarray) -> tuple[dict, str]:
    """(sample JSON, name of its frames file) in the shape of Robometer's `make_progress_sample`."""
    key = f"sample_{index}_trajectory_frames"
    sample = {"sample_type": "progress",
              "trajectory": {"frames": {"__numpy_file__": key}, "frames_shape": list(frames.shape),
                             "task": query.task, "id": str(index),
                             "metadata": {"subsequence_length": int(frames.shape[0])}, "video_embeddings": None}}
    return sample, key


def multipart_body(fields: dict[str, str], files: dict[str, bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body (text fields, then `.npy` files named after their field) and its content type."""
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for name, value in fields.items():
        chunks += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode(),
                   value.encode("utf-8"), b"\r\n"]
    for name, data in files.items():
        chunks += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.npy"\r\n'
                   "Content-Type: application/octet-stream\r\n\r\n".encode(), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def npy_bytes(array: np.ndarray) -> bytes:
    """An array in .npy format (what the server's `np.load` reads)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def sample_outputs(payload: bytes, count: int) -> list[dict]:
    """Per sample `{"progress_pred": [...], "success_probs": [...] | None}` of a reply; RequestFailed if malformed."""
    try:
        reply = json.loads(payload)
        progress = reply["outputs_progress"]["progress_pred"]
        success = (reply.get("outputs_success") or {}).get("success_probs")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise RequestFailed(f"reply is not a Robometer progress output: {payload[:200]!r}") from None
    if not isinstance(progress, list) or len(progress) != count:
        raise RequestFailed(f"reply has {len(progress) if isinstance(progress, list) else 'no'} progress traces "
                            f"for {count} samples")
    outputs = []
    for index, trace in enumerate(progress):
        if not (isinstance(trace, list) and trace and all(_is_finite_number(value) for value in trace)):
            raise RequestFailed(f"progress trace {index} is not a non-empty list of finite numbers: {trace!r:.200}")
        probs = success[index] if isinstance(success, list) and index < len(success) else None
        outputs.append({"progress_pred": trace, "success_probs": probs})
    return outputs


def _is_finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class RobometerRewarder(CountingRewarder):
    """Scores queries with a Robometer eval server: one multipart request per `max_batch_size` queries."""

    name = "robometer"

    def __init__(self, config: Optional[RobometerRewarderConfig] = None) -> None:
        super().__init__()
        self.config = config or RobometerRewarderConfig()
        self.url = self.config.url.rstrip("/") + ENDPOINT
        self._retry = RetryPolicy.of(self.config)
        key_env = self.config.api_key_env
        self._api_key = os.environ.get(key_env, "") if key_env else ""

    def _score(self, queries: list[ProgressQuery]) -> list[ProgressResult]:
        size = self.config.max_batch_size
        results = [result for start in range(0, len(queries), size)
                   for result in self._score_chunk(queries[start:start + size])]
        self._count(results)
        return results

    def _score_chunk(self, queries: list[ProgressQuery]) -> list[ProgressResult]:
        """One request for these queries; queries with unusable frames are answered invalid without asking."""
        start = time.monotonic()
        results: list[Optional[ProgressResult]] = [None] * len(queries)
        fields, files, asked = {}, {}, []
        for index, query in enumerate(queries):
            try:
                frames = trajectory_frames(query, self.config.camera)
            except ValueError as exc:
                results[index] = self.failed(query, str(exc))
                continue
            sample, key = progress_sample(len(asked), query, frames)
            fields[f"sample_{len(asked)}"], files[key] = json.dumps(sample), npy_bytes(frames)
            asked.append(index)
        if asked:
            fields["use_frame_steps"] = "true" if self.config.use_frame_steps else "false"
            body, content_type = multipart_body(fields, files)
            try:
                outputs = call_with_retries(lambda: sample_outputs(self._post(body, content_type), len(asked)),
                                            self._retry, "robometer rewarder")
            except RequestFailed as exc:
                for index in asked:
                    results[index] = self.failed(queries[index], str(exc), time.monotonic() - start)
            else:
                latency = time.monotonic() - start  # one request: its wall time is every query's latency
                for index, output in zip(asked, outputs):
                    results[index] = ProgressResult(progress=clamp_progress(100.0 * output["progress_pred"][-1]),
                                                    raw_text=json.dumps(output), latency=latency, rewarder=self.name)
        return results

    def _post(self, body: bytes, content_type: str) -> bytes:
        headers = {"Content-Type": content_type}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return http_post(self.url, body, headers, self.config.timeout_s)
