"""Offline scoring of a finished video with any Rewarder, and its outputs: JSON, annotated MP4, PNG plot.

The procedure is the official one (Philip-MIT/rewardgen `rewardgen/core.py` `generate` + `rewardgen/sole.py`):
key frames `linspace(0, N-1, 10, int)`; frame 0 is 0 % with no call; one call per later key frame, in order,
showing (first, previous key frame, current key frame) and feeding back the previous parsed answer; progress
interpolated to every frame. The annotated video mirrors the official `video_plot`: one frame per key frame,
camera views | wrapped completion text | progress curve so far, task on top.
"""
from __future__ import annotations

import inspect
import logging
import math
import textwrap
import time
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from sole_r1_model.composite import VARIANTS, variant_for_cameras
from sole_r1_model.frames import DEFAULT_NUM_KEY_FRAMES, key_frame_indices
from sole_r1_model.parsing import clamp_progress
from sole_r1_model.records import ScoreRecord, build_record, write_records
from sole_r1_model.rewarder import ProgressQuery, ProgressResult, Rewarder

log = logging.getLogger(__name__)


def score_video(rewarder: Rewarder, external_frames: Sequence[np.ndarray], wrist_frames: Optional[Sequence] = None,
                task: str = "", num_key_frames: int = DEFAULT_NUM_KEY_FRAMES, variant: Optional[str] = None,
                progress: bool = True, fps: Optional[float] = None,
                privileged_progress: Optional[Sequence[float]] = None) -> ScoreRecord:
    """Score every frame of an episode from `num_key_frames` sequential rewarder calls (see module doc).

    `privileged_progress` (per frame, e.g. ground truth) is passed in the queries; only the oracle reads it.
    """
    n = len(external_frames)
    if wrist_frames is not None and len(wrist_frames) != n:
        raise ValueError(f"external video has {n} frames but wrist video has {len(wrist_frames)}; they must match")
    keys = key_frame_indices(n, num_key_frames)
    return score_key_frames(rewarder, keys, n, [external_frames[i] for i in keys],
                            None if wrist_frames is None else [wrist_frames[i] for i in keys],
                            task=task, variant=variant, progress=progress, fps=fps,
                            privileged_progress=privileged_progress)


def score_key_frames(rewarder: Rewarder, key_indices: Sequence[int], num_frames: int,
                     external_keys: Sequence[np.ndarray], wrist_keys: Optional[Sequence] = None, task: str = "",
                     variant: Optional[str] = None, progress: bool = True, fps: Optional[float] = None,
                     privileged_progress: Optional[Sequence[float]] = None) -> ScoreRecord:
    """Like score_video, given only the key frames (so long videos need not sit in memory).

    `variant` (a key of composite.VARIANTS) is the layout asked for: it is passed to each call when the
    rewarder's `score` takes a `variant` (the prompted backends do), and external-only layouts drop the wrist
    frames from the queries. None keeps the rewarder's configured layout. Without wrist frames the
    external-only form is used, as the official client does.
    """
    resolved, per_call = _plan_variant(rewarder, variant, wrist_keys is not None)
    if "wrist" not in VARIANTS[resolved].rows:
        wrist_keys = None
    if len(external_keys) != len(key_indices) or (wrist_keys is not None and len(wrist_keys) != len(key_indices)):
        raise ValueError(f"need one frame per key frame ({len(key_indices)}) for every camera")
    if not isinstance(task, str) or not task.strip():
        raise ValueError("task must be a non-empty task description, e.g. 'Pick up the cube from the table.'")
    if privileged_progress is not None and len(privileged_progress) != num_frames:
        raise ValueError(f"privileged progress has {len(privileged_progress)} values for {num_frames} frames")
    values, texts, valid, latency = [0.0], [""], [True], [0.0]
    bar = tqdm(total=len(key_indices) - 1, disable=not progress, desc=f"{rewarder.name}: scoring", unit="call")
    with bar:
        for k in range(1, len(key_indices)):
            query = ProgressQuery(
                task=task, external=(external_keys[0], external_keys[k - 1], external_keys[k]),
                wrist=None if wrist_keys is None else (wrist_keys[0], wrist_keys[k - 1], wrist_keys[k]),
                previous_progress=values[-1], query_index=k,
                stamp=key_indices[k] / fps if fps else float(key_indices[k]),
                privileged_progress=None if privileged_progress is None else privileged_progress[key_indices[k]])
            result = _ask(rewarder, query, per_call)
            ok = result.valid and _finite(result.progress)
            values.append(clamp_progress(result.progress) if ok else values[-1])
            texts.append(_trace_text(result, values[-1]))
            valid.append(ok)
            latency.append(float(result.latency))
            bar.set_postfix(progress=f"{values[-1]:.0f}%", invalid=valid.count(False))
            bar.update()
    record = build_record(rewarder.name, task, num_frames, key_indices, values, texts, valid, latency, resolved)
    if record.num_invalid:
        log.warning("%s: %d of %d answers invalid (previous progress carried forward)",
                    rewarder.name, record.num_invalid, record.num_calls)
    return record


def _plan_variant(rewarder: Rewarder, variant: Optional[str], have_wrist: bool) -> tuple[str, dict]:
    """The layout used (for the record) and the per-call arguments that ask the rewarder for it."""
    layout = variant or getattr(rewarder, "variant", None) or "full"
    if layout not in VARIANTS:
        raise ValueError(f"unknown variant {layout!r}; choose one of {sorted(VARIANTS)}")
    resolved = variant_for_cameras(layout, have_wrist)
    if resolved != layout:
        log.info("no wrist frames: using variant %r instead of %r", resolved, layout)
    if variant is None:
        return resolved, {}
    if "variant" in inspect.signature(rewarder.score).parameters:
        return resolved, {"variant": resolved}
    log.info("%s builds its own prompt; variant %r only selects the cameras sent", rewarder.name, variant)
    return resolved, {}


def _ask(rewarder: Rewarder, query: ProgressQuery, per_call: dict) -> ProgressResult:
    """One rewarder call; an exception becomes an invalid result so one bad call does not end the episode."""
    start = time.perf_counter()
    try:
        return rewarder.score([query], **per_call)[0]
    except Exception as exc:  # noqa: BLE001 -- any backend failure is logged, counted, carried forward
        log.warning("%s: call %d failed: %s: %s", rewarder.name, query.query_index, type(exc).__name__, exc)
        return ProgressResult(progress=query.previous_progress, valid=False, error=f"{type(exc).__name__}: {exc}",
                              latency=time.perf_counter() - start, raw_text=f"[rewarder error: {exc}]")


def _trace_text(result: ProgressResult, value: float) -> str:
    """The trace stored for a key frame: the raw completion; never blank, so the key frame survives a re-read."""
    if result.raw_text.strip():
        return result.raw_text
    think = f"<think>{result.reasoning}</think>" if result.reasoning.strip() else ""
    if not result.valid:
        return f"{think}[invalid: {result.error or 'no answer'}]"
    return f"{think}<answer>{round(value)}%</answer>"


def _finite(value: float) -> bool:
    """True for a finite real number."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


# ----------------------------------------------------------------------------------------------- outputs


def write_outputs(record: ScoreRecord, external_frames: Sequence[np.ndarray], wrist_frames: Optional[Sequence],
                  out_dir: str | Path, stem: str, ground_truth: Optional[Sequence[float]] = None,
                  fps: float = 2.0, height: int = 384, video: bool = True) -> dict:
    """Write `<stem>.json` (official shape), `<stem>.mp4` (annotated key frames) and `<stem>.png` (curve).

    Frames may be the whole episode or only the key frames (one per `record.key_frame_indices`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if ground_truth is not None and len(ground_truth) != record.num_frames:
        raise ValueError(f"ground truth has {len(ground_truth)} values for {record.num_frames} frames")
    ground_truth = None if ground_truth is None else [float(v) for v in ground_truth]
    paths = {"json": write_records(record, out_dir / f"{stem}.json")}
    paths["png"] = write_plot(record, out_dir / f"{stem}.png", ground_truth)
    if video:
        ext = _key_frames_of(record, external_frames, "external")
        wrist = None if wrist_frames is None else _key_frames_of(record, wrist_frames, "wrist")
        paths["mp4"] = write_annotated_video(record, ext, wrist, out_dir / f"{stem}.mp4", ground_truth, fps, height)
    return paths


def _key_frames_of(record: ScoreRecord, frames: Sequence[np.ndarray], name: str) -> list:
    """The key frames out of either all frames or the key frames alone."""
    if len(frames) == record.num_frames:
        return [frames[i] for i in record.key_frame_indices]
    if len(frames) == len(record.key_frame_indices):
        return list(frames)
    raise ValueError(f"{name}: {len(frames)} frames match neither the episode ({record.num_frames}) "
                     f"nor its key frames ({len(record.key_frame_indices)})")


def write_plot(record: ScoreRecord, path: Path, ground_truth: Optional[Sequence[float]] = None) -> Path:
    """PNG of the per-frame progress curve with the key-frame answers marked (hollow = invalid answer)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    frames = np.arange(record.num_frames)
    ax.plot(frames, record.rewards, color="darkblue", linewidth=2, label=record.model or "rewarder")
    keys = np.asarray(record.key_frame_indices)
    ok = np.asarray(record.key_valid, dtype=bool)
    ax.plot(keys[ok], np.asarray(record.key_progress)[ok], "o", color="darkblue", label="key-frame answers")
    if (~ok).any():
        ax.plot(keys[~ok], np.asarray(record.key_progress)[~ok], "o", mfc="none", color="red", label="invalid")
    if ground_truth is not None:
        ax.plot(frames, ground_truth, color="darkred", linewidth=2, label="ground truth")
    ax.set(xlabel="Frame", ylabel="Task progress (%)", xlim=(0, max(1, record.num_frames - 1)),
           ylim=(min(0.0, *record.rewards, *(ground_truth or [0.0])) - 2, 102))
    ax.set_title(textwrap.shorten(record.task_description, 80), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def write_annotated_video(record: ScoreRecord, external_keys: Sequence[np.ndarray], wrist_keys: Optional[Sequence],
                          path: Path, ground_truth: Optional[Sequence[float]] = None, fps: float = 2.0,
                          height: int = 384) -> Path:
    """MP4 with one frame per key frame: views | completion text | progress so far (official video_plot style)."""
    import imageio.v2 as imageio

    curve = _CurvePanel(record, ground_truth, height)
    title_h = max(24, height // 12)
    with imageio.get_writer(str(path), format="FFMPEG", fps=fps, codec="libx264", macro_block_size=2,
                            ffmpeg_log_level="error") as writer:
        for k in range(len(record.key_frame_indices)):
            views = [_fit_height(external_keys[k], height)]
            if wrist_keys is not None:
                views.append(_fit_height(wrist_keys[k], height))
            text = record.key_traces()[k] or "Frame 0: progress 0% by definition (no model call)."
            body = np.hstack(views + [_text_panel(text, height, height), curve.render(k)])
            title = _text_panel(f'Task: "{record.task_description}"  |  frame {record.key_frame_indices[k]}'
                                f"  |  progress {record.key_progress[k]:.0f}%", title_h, body.shape[1], one_line=True)
            writer.append_data(_even(np.vstack([title, body])))
    return Path(path)


class _CurvePanel:
    """Square plot of the key-frame progress up to the current step (reused figure: fast to redraw)."""

    def __init__(self, record: ScoreRecord, ground_truth: Optional[Sequence[float]], size: int) -> None:
        """Set up axes covering all key steps."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.size = size
        self.values = list(record.key_progress)
        self.truth = None if ground_truth is None else [ground_truth[i] for i in record.key_frame_indices]
        self.fig = Figure(figsize=(4, 4), dpi=100)
        self.canvas = FigureCanvasAgg(self.fig)
        ax = self.fig.add_subplot()
        low = min(0.0, *self.values, *(self.truth or [0.0]))
        ax.set(xlim=(0, max(1, len(self.values) - 1)), ylim=(low, 100), xlabel="Step number",
               ylabel="Predicted task progress (%)")
        (self.line,) = ax.plot([], [], color="darkblue", linewidth=4, label=record.model or "rewarder")
        self.truth_line = None
        if self.truth is not None:
            (self.truth_line,) = ax.plot([], [], color="darkred", linewidth=4, label="ground truth")
        ax.legend(fontsize="small", loc="upper left")
        self.fig.tight_layout(pad=0.4)

    def render(self, k: int) -> np.ndarray:
        """RGB image (size x size) of the curve through key step k."""
        steps = list(range(k + 1))
        self.line.set_data(steps, self.values[: k + 1])
        if self.truth_line is not None:
            self.truth_line.set_data(steps, self.truth[: k + 1])
        self.canvas.draw()
        rgba = np.asarray(self.canvas.buffer_rgba())
        return cv2.resize(np.ascontiguousarray(rgba[..., :3]), (self.size, self.size), interpolation=cv2.INTER_AREA)


def _fit_height(frame: np.ndarray, height: int) -> np.ndarray:
    """Resize a frame to `height` rows, aspect kept."""
    h, w = frame.shape[:2]
    width = max(1, round(w * height / h))
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)


def _text_panel(text: str, height: int, width: int, one_line: bool = False) -> np.ndarray:
    """White panel with `text` wrapped to fit, shrinking the font until every line fits the height."""
    panel = np.full((height, width, 3), 255, dtype=np.uint8)
    text = text.replace("</think><answer>", "</think>\n<answer>")
    font, margin = cv2.FONT_HERSHEY_SIMPLEX, 8
    scale = height / 40 if one_line else max(0.3, width / 768)
    while True:
        (char_w, char_h), _ = cv2.getTextSize("abcdefghijklmnopqrstuvwxyz", font, scale, 1)
        per_line = max(8, int((width - 2 * margin) / (char_w / 26)))
        lines = [text.replace("\n", " ")] if one_line else [
            wrapped for para in text.split("\n") for wrapped in (textwrap.wrap(para, per_line) or [""])]
        line_h = int(char_h * 1.7) + 1
        if len(lines) * line_h + margin <= height or scale <= 0.25:
            break
        scale *= 0.9
    for i, line in enumerate(lines):
        cv2.putText(panel, line, (margin, margin + char_h + i * line_h), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def _even(image: np.ndarray) -> np.ndarray:
    """Pad to even height and width (H.264 with yuv420p needs them)."""
    h, w = image.shape[:2]
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=255)
