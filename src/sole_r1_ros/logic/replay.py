"""Re-scoring recorded episodes: a bag's camera stream through other rewarders, compared with what was recorded.

Each bag is scored as `sole-r1 score` / `sole-r1 eval` score a video (10 key frames `linspace(0, N-1)`, one call per
key frame after the first, `sole_r1_model.offline.score_key_frames`), the shoulder camera as the external view and
the wrist frame nearest in time. The rewarder that ran live is read back from the bag's ProgressEstimates, each
placed at the frame it scored (its stamp). Ground truth is the recorded PRIVILEGED progress (simulator) when the
bag has it; the metrics and plots are those of `sole-r1 eval` (sole_r1_model.evaluation). rclpy-free.
"""
from __future__ import annotations

import csv
import logging
import math
import re
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from sole_r1_model.evaluation.episodes import Episode
from sole_r1_model.evaluation.evaluate import EpisodeEvaluation, evaluate_record, failed_episode
from sole_r1_model.evaluation.report import Section, build_report, write_curves, write_json, write_markdown
from sole_r1_model.frames import key_frame_indices
from sole_r1_model.offline import score_key_frames
from sole_r1_model.records import ScoreRecord, build_record, write_records
from sole_r1_model.rewarder import Rewarder
from sole_r1_ros.logic.bags import RecordedEpisode, stamp_ns

log = logging.getLogger("sole_r1.replay")


def ground_truth(episode: RecordedEpisode) -> Optional[np.ndarray]:
    """Per-frame ground-truth progress: the recorded privileged progress, None when the bag has none."""
    return episode.privileged_progress()


def evaluation_episode(episode: RecordedEpisode) -> Episode:
    """The bag as an evaluation Episode (ground truth NaN where none was recorded: those metrics are n/a)."""
    truth = ground_truth(episode)
    values = truth if truth is not None else np.full(episode.num_frames, np.nan)
    return Episode(stem=episode.name, task=episode.task, ground_truth=tuple(float(v) for v in values),
                   success=episode.true_success, truth_path=episode.path / "metadata.yaml")


def recorded_record(episode: RecordedEpisode) -> Optional[ScoreRecord]:
    """The live rewarder's answers during the episode, at the frames they scored; None without any answer."""
    stamps = episode.camera_stamps.get("shoulder")
    episode_id = episode.metadata.get("episode_id", "")
    estimates = [m for _, m in episode.messages.get("progress", [])
                 if m.query_index > 0 and (not episode_id.isdigit() or m.episode_id == int(episode_id))]
    if stamps is None or len(stamps) < 2 or not estimates:
        return None
    keys, progress, texts, valid, latency = [0], [0.0], [""], [True], [0.0]
    for estimate in sorted(estimates, key=lambda m: m.query_index):
        index = int(np.argmin(np.abs(stamps - stamp_ns(estimate))))  # its stamp = the newest frame it used
        if index <= keys[-1] or not math.isfinite(estimate.progress):
            continue
        keys.append(index)
        progress.append(float(estimate.progress))
        texts.append(estimate.raw_text or estimate.reasoning or f"<answer>{estimate.progress:.0f}%</answer>")
        valid.append(bool(estimate.valid))
        latency.append(float(estimate.latency))
    if len(keys) < 2:
        return None
    name = estimates[0].rewarder or episode.metadata.get("rewarder", "") or "recorded"
    return build_record(name, episode.task, len(stamps), keys, progress, texts, valid, latency)


def frame_rate(episode: RecordedEpisode) -> Optional[float]:
    """Camera frames per second, from the shoulder frame stamps (None for fewer than two frames)."""
    stamps = episode.camera_stamps.get("shoulder")
    if stamps is None or len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return None
    return (len(stamps) - 1) / ((stamps[-1] - stamps[0]) * 1e-9)


def score_episode(rewarder: Rewarder, episode: RecordedEpisode, num_key_frames: int = 10,
                  variant: Optional[str] = None) -> tuple[ScoreRecord, float]:
    """Score the recorded cameras as `sole-r1 score` does; returns (record, seconds spent in the calls)."""
    n = episode.num_frames
    if n < 2:
        raise ValueError(f"{episode.name}: {n} frame(s) recorded, nothing to score")
    keys = key_frame_indices(n, num_key_frames)
    external = episode.frames("shoulder", keys)
    wrist = None
    if episode.camera_stamps.get("wrist") is not None and len(episode.camera_stamps["wrist"]):
        wrist = episode.frames("wrist", episode.wrist_index()[keys])
    truth = ground_truth(episode)
    # Only a privileged rewarder (the oracle) may read ground truth; a reward model must never be handed it.
    privileged = list(truth) if getattr(rewarder, "privileged", False) and truth is not None else None
    start = time.perf_counter()
    record = score_key_frames(rewarder, keys, n, external, wrist, task=episode.task, variant=variant,
                              progress=False, fps=frame_rate(episode), privileged_progress=privileged)
    return record, time.perf_counter() - start


def recorded_section(episodes: Sequence[RecordedEpisode], threshold: float) -> Optional[Section]:
    """The live rewarder's curves as an eval section (bags without estimates are left out and listed)."""
    evaluations, missing, names = [], [], set()
    for episode in episodes:
        record = recorded_record(episode)
        if record is None:
            missing.append(episode.name)
            continue
        names.add(record.model)
        evaluations.append(evaluate_record(evaluation_episode(episode), record, threshold))
    if not evaluations:
        return None
    label = f"recorded ({', '.join(sorted(names))})"
    privileged = any(m.privileged for e in episodes for _, m in e.messages.get("progress", []))
    return Section(label, "predictions", "bag /reward/progress", evaluations, privileged=privileged,
                   notes={"missing": missing})


def rewarder_section(rewarder: Rewarder, label: str, spec: str, episodes: Sequence[RecordedEpisode],
                     num_key_frames: int, variant: Optional[str], threshold: float,
                     predictions_dir: Optional[Path] = None) -> Section:
    """Score every episode with one rewarder; an episode that fails is kept as a failed row."""
    evaluations: list[EpisodeEvaluation] = []
    for episode in episodes:
        target = evaluation_episode(episode)
        try:
            record, seconds = score_episode(rewarder, episode, num_key_frames, variant)
        except (ValueError, FileNotFoundError) as exc:  # one unreadable bag must not lose the others
            log.error("%s: %s", episode.name, exc)
            evaluations.append(failed_episode(target, str(exc)))
            continue
        evaluations.append(evaluate_record(target, record, threshold, seconds))
        if predictions_dir is not None:
            write_records(record, predictions_dir / f"{episode.name}.json")
    return Section(label, "rewarder", spec, evaluations, privileged=bool(getattr(rewarder, "privileged", False)),
                   notes={"rewarder_name": rewarder.name})


def write_comparison(out_dir: Path, sections: Sequence[Section], episodes: Sequence[RecordedEpisode],
                     threshold: float, settings: dict) -> dict:
    """report.json + report.md (eval's metrics), report_curves.png, and <episode>_progress.csv per episode."""
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = [evaluation_episode(e) for e in episodes]
    curves = write_curves(sections, targets, out_dir / "report_curves.png")
    report = build_report(sections, targets, ", ".join(str(e.path) for e in episodes), threshold, settings)
    report["bags"] = [{"name": e.name, "path": str(e.path), "recovered": e.recovered, "frames": e.num_frames,
                       "true_success": e.true_success, "metadata": e.metadata} for e in episodes]
    paths = {"json": write_json(report, out_dir / "report.json"), "png": curves}
    paths["md"] = write_markdown(report, out_dir / "report.md", curves)
    paths["csv"] = [_write_csv(out_dir / f"{e.name}_progress.csv", e, sections) for e in episodes]
    return paths


def _write_csv(path: Path, episode: RecordedEpisode, sections: Sequence[Section]) -> Path:
    """Per frame: stamp, ground truth, and each section's interpolated progress (blank where none)."""
    columns = {}
    for section in sections:
        found = next((x for x in section.evaluations if x.stem == episode.name and x.predicted is not None), None)
        if found is not None:
            columns[section.label] = found.predicted
    truth = ground_truth(episode)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frame", "stamp_ns", "ground_truth", *columns])
        for i, stamp in enumerate(episode.camera_stamps.get("shoulder", [])):
            gt = "" if truth is None else f"{truth[i]:.3f}"
            writer.writerow([i, int(stamp), gt, *(f"{c[i]:.3f}" for c in columns.values())])
    return path


def spec_label(spec: str) -> str:
    """A short name for a rewarder spec: a YAML file's stem, a class name, or the backend name."""
    if spec.lower().endswith((".yaml", ".yml")):
        return Path(spec).stem
    return spec.rpartition(":")[2] if ":" in spec else spec


def slug(label: str) -> str:
    """A folder name for a label."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "rewarder"
