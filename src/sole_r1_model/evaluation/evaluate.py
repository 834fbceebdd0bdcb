"""Evaluate progress records against ground truth: per-episode metrics, their summary, and the scoring loop.

Scoring goes through exactly the code `sole-r1 score` uses (`frames.read_episode_key_frames` then
`offline.score_key_frames`), so an evaluated rewarder is the rewarder the robot would get. Predictions are
compared after the official interpolation (key-frame answers linearly interpolated to every frame).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Optional, Sequence

import numpy as np
from tqdm import tqdm

from sole_r1_model.evaluation import metrics
from sole_r1_model.evaluation.episodes import Episode
from sole_r1_model.frames import DEFAULT_NUM_KEY_FRAMES, interpolate_progress, read_episode_key_frames
from sole_r1_model.offline import score_key_frames
from sole_r1_model.records import ScoreRecord
from sole_r1_model.rewarder import Rewarder

log = logging.getLogger(__name__)


@dataclasses.dataclass
class EpisodeEvaluation:
    """The metrics of one rewarder on one episode (the NaN of an undefined metric is reported as null)."""

    stem: str
    task: str
    success: Optional[bool]
    num_frames: int
    pearson: float = math.nan            # Pearson of interpolated prediction vs ground truth, all frames
    mae: float = math.nan                # mean |prediction - ground truth|, progress points, all frames
    voc: float = math.nan                # Spearman of scored key-frame answers (t >= 1) with their frame index
    final_progress: float = math.nan     # predicted progress at the last frame
    perceived_success: Optional[bool] = None  # final_progress >= threshold
    num_calls: int = 0                   # model calls (key frames after the first)
    num_invalid: int = 0                 # calls whose answer could not be parsed
    seconds: Optional[float] = None      # wall time of scoring (None for precomputed outputs)
    error: str = ""                      # why the episode could not be scored ("" when it was)
    key_frame_indices: list = dataclasses.field(default_factory=list)
    key_progress: list = dataclasses.field(default_factory=list)
    predicted: Optional[np.ndarray] = None   # per-frame predicted progress (plots, pooled metrics)
    truth: Optional[np.ndarray] = None       # per-frame ground truth
    record: Optional[ScoreRecord] = None     # the scored record (to save as official-shape JSON)

    def row(self) -> dict:
        """This episode as one row of the report's per-episode table (JSON-ready except for NaN)."""
        return {"stem": self.stem, "task": self.task, "success": self.success, "num_frames": self.num_frames,
                "pearson": self.pearson, "mae": self.mae, "voc": self.voc, "final_progress": self.final_progress,
                "perceived_success": self.perceived_success, "num_calls": self.num_calls,
                "num_invalid": self.num_invalid, "seconds": self.seconds, "error": self.error or None,
                "key_frame_indices": list(self.key_frame_indices), "key_progress": list(self.key_progress)}


def evaluate_record(episode: Episode, record: ScoreRecord, threshold: float = metrics.DEFAULT_SUCCESS_THRESHOLD,
                    seconds: Optional[float] = None) -> EpisodeEvaluation:
    """Metrics of one record against its episode's ground truth (ValueError when the lengths differ)."""
    truth = np.asarray(episode.ground_truth, dtype=float)
    if record.num_frames != truth.size:
        raise ValueError(f"{episode.stem}: {record.num_frames} predicted frames for {truth.size} ground-truth frames")
    # Re-interpolate from the key frames: the official rule, whatever the file stored between them.
    predicted = interpolate_progress(record.key_frame_indices, record.key_progress, record.num_frames)
    keys, answers = record.key_frame_indices[1:], record.key_progress[1:]  # frame 0 is 0 % by definition
    final = float(predicted[-1])
    return EpisodeEvaluation(
        stem=episode.stem, task=episode.task, success=episode.success, num_frames=truth.size,
        pearson=metrics.pearson(predicted, truth), mae=metrics.mean_absolute_error(predicted, truth),
        voc=metrics.value_order_correlation(answers, keys), final_progress=final,
        perceived_success=metrics.perceived_success(final, threshold), num_calls=record.num_calls,
        num_invalid=record.num_invalid, seconds=seconds, key_frame_indices=list(record.key_frame_indices),
        key_progress=[float(p) for p in record.key_progress], predicted=predicted, truth=truth, record=record)


def failed_episode(episode: Episode, error: str) -> EpisodeEvaluation:
    """The row of an episode that could not be scored (excluded from every metric, counted in the summary)."""
    return EpisodeEvaluation(stem=episode.stem, task=episode.task, success=episode.success,
                             num_frames=episode.num_frames, error=error)


def summarize(evaluations: Sequence[EpisodeEvaluation],
              threshold: float = metrics.DEFAULT_SUCCESS_THRESHOLD) -> dict:
    """Aggregate metrics over the scored episodes; undefined values are NaN with a count or a reason beside them."""
    ok = [e for e in evaluations if not e.error]
    out: dict = {"num_episodes": len(evaluations), "num_scored": len(ok), "num_failed": len(evaluations) - len(ok),
                 "threshold": float(threshold)}
    out["pearson_mean"], out["pearson_episodes"], out["pearson_undefined"] = metrics.mean_defined(
        [e.pearson for e in ok])
    out["pearson_undefined_stems"] = [e.stem for e in ok if not math.isfinite(e.pearson)]
    out["pearson_pooled"] = (metrics.pearson(np.concatenate([e.predicted for e in ok]),
                                             np.concatenate([e.truth for e in ok])) if ok else math.nan)
    out["mae_mean"], out["mae_episodes"], _ = metrics.mean_defined([e.mae for e in ok])
    successful = [e for e in ok if e.success is True]
    out["voc_successful_mean"], out["voc_successful_episodes"], out["voc_successful_undefined"] = \
        metrics.mean_defined([e.voc for e in successful])
    if not successful:
        out["voc_successful_reason"] = "no scored episode is labelled successful"
    labelled = [e for e in ok if e.success is not None]
    out["auroc_final"] = metrics.auroc([e.final_progress for e in labelled], [e.success for e in labelled])
    reason = metrics.auroc_undefined_reason([e.success for e in ok])
    if reason:
        out["auroc_reason"] = reason
    out["auroc_episodes"] = len(labelled)
    out["perceived_success_rate"] = metrics.rate([e.perceived_success for e in ok])
    out["perceived_success_rate_successful"] = metrics.rate([e.perceived_success for e in successful])
    out["perceived_success_rate_unsuccessful"] = metrics.rate(
        [e.perceived_success for e in ok if e.success is False])
    calls = sum(e.num_calls for e in ok)
    out["num_calls"], out["num_invalid"] = calls, sum(e.num_invalid for e in ok)
    out["invalid_rate"] = out["num_invalid"] / calls if calls else math.nan
    timed = [e for e in ok if e.seconds is not None]
    timed_calls = sum(e.num_calls for e in timed)
    out["seconds_per_query"] = sum(e.seconds for e in timed) / timed_calls if timed_calls else math.nan
    if not timed_calls:
        out["seconds_per_query_reason"] = ("precomputed outputs carry no timing" if not timed
                                           else "no model call was made")
    return out


def score_episode(rewarder: Rewarder, episode: Episode, num_key_frames: int = DEFAULT_NUM_KEY_FRAMES,
                  variant: Optional[str] = None) -> tuple[ScoreRecord, float]:
    """Score one episode as `sole-r1 score` does: (record, wall seconds of the model calls)."""
    if episode.video is None:
        raise ValueError(f"{episode.stem}: no video to score")
    keys = read_episode_key_frames(episode.video, episode.wrist, episode.views == "side-by-side", num_key_frames)
    if keys.num_frames != episode.num_frames:
        raise ValueError(f"{episode.video} has {keys.num_frames} frames but its ground truth "
                         f"{episode.truth_path} has {episode.num_frames} values")
    # Only a privileged rewarder (the oracle) may see ground truth; a reward model must never be handed it.
    privileged = list(episode.ground_truth) if getattr(rewarder, "privileged", False) else None
    start = time.perf_counter()
    record = score_key_frames(rewarder, keys.key_indices, keys.num_frames, keys.external, keys.wrist,
                              task=episode.task, variant=variant, progress=False, fps=keys.fps,
                              privileged_progress=privileged)
    return record, time.perf_counter() - start


def score_episodes(rewarder: Rewarder, episodes: Sequence[Episode], label: str = "",
                   num_key_frames: int = DEFAULT_NUM_KEY_FRAMES, variant: Optional[str] = None,
                   threshold: float = metrics.DEFAULT_SUCCESS_THRESHOLD,
                   progress: bool = True) -> list[EpisodeEvaluation]:
    """Score and evaluate every episode; an episode that fails is logged and kept as a failed row."""
    out = []
    bar = tqdm(episodes, desc=f"eval {label or rewarder.name}", unit="episode", disable=not progress)
    for episode in bar:
        try:
            record, seconds = score_episode(rewarder, episode, num_key_frames, variant)
            out.append(evaluate_record(episode, record, threshold, seconds))
        except (ValueError, FileNotFoundError) as exc:  # a broken video must not lose the other episodes
            log.error("%s: %s", episode.stem, exc)
            out.append(failed_episode(episode, str(exc)))
            continue
        done = [e for e in out if not e.error]
        bar.set_postfix(pearson=f"{metrics.mean_defined([e.pearson for e in done])[0]:.2f}",
                        invalid=sum(e.num_invalid for e in done))
    return out
