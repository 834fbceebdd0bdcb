"""Episode sets for evaluation: find each episode's video(s), ground truth, success label and task.

Three layouts are read (the first that matches wins):
- nested, the official `test_videos/<suite>/<task>/<successful|unsuccessful>/<stem>.mp4` with
  `<stem>/data.json` beside it (philipmit/sole-r1-model, and what `sole-r1 synth` writes); any `**/data.json`;
- flat, `ground_truth/<stem>.json` with `videos/<stem>.mp4` (shared/data/sole_r1_official_lift);
- plain, a folder of `<stem>.json` ground-truth files, videos (if any) beside them.
A ground-truth file is `{"task description": str, "ground-truth rewards": [one number per frame]}`, optionally
with `"success": bool`; without it the label comes from `successful` / `unsuccessful` in the path.
Videos are side-by-side (external | wrist), or two cameras as `<stem>.mp4` + `<stem>_wrist.mp4`.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Optional, Sequence

from sole_r1_model.frames import VIDEO_EXTENSIONS
from sole_r1_model.records import ScoreRecord, read_ground_truth, read_records

GROUND_TRUTH_FILE = "data.json"
WRIST_SUFFIX = "_wrist"
VIEWS = ("auto", "side-by-side", "two-camera", "single")
_FAILURE_WORDS = {"unsuccessful", "failure", "failed", "fail"}
_SUCCESS_WORDS = {"successful", "success", "succeeded"}


class EpisodeSetError(ValueError):
    """An episode set, a predictions folder or one of their files cannot be used (the message says which)."""


@dataclasses.dataclass(frozen=True)
class Episode:
    """One evaluation episode: ground truth per frame, success label, task, and the video(s) to score."""

    stem: str                       # episode name; predictions are matched to it by file stem
    task: str                       # task description, as the robot was instructed
    ground_truth: tuple             # ground-truth progress per frame, percent
    success: Optional[bool]         # true outcome; None when neither the data nor the path says
    truth_path: Path
    video: Optional[Path] = None    # side-by-side (external | wrist) video, or the external camera's
    wrist: Optional[Path] = None    # wrist camera video when the cameras are separate files
    views: str = "side-by-side"     # how `video` is laid out: side-by-side, two-camera (with `wrist`) or single

    @property
    def num_frames(self) -> int:
        """Frames in the episode (one ground-truth value each)."""
        return len(self.ground_truth)


def discover_episodes(root: str | Path, views: str = "auto") -> list[Episode]:
    """All episodes under `root` (nested, flat or plain layout; see module doc), sorted by stem."""
    if views not in VIEWS:
        raise EpisodeSetError(f"views must be one of {VIEWS}, got {views!r}")
    root = Path(root)
    if not root.is_dir():
        raise EpisodeSetError(f"episode set {root} is not a folder")
    nested = sorted(root.rglob(GROUND_TRUTH_FILE))
    if nested:
        found = [(p, p.parent.name, p.parent.parent) for p in nested]
    elif (root / "ground_truth").is_dir():
        found = [(p, p.stem, root / "videos") for p in sorted((root / "ground_truth").glob("*.json"))]
    else:
        found = [(p, p.stem, root) for p in sorted(root.glob("*.json"))]
    if not found:
        raise EpisodeSetError(f"no episodes under {root}: expected <stem>/{GROUND_TRUTH_FILE} (official layout), "
                              "ground_truth/<stem>.json, or <stem>.json ground-truth files")
    episodes = [_episode(path, stem, video_dir, views, root) for path, stem, video_dir in found]
    _check_unique([e.stem for e in episodes], [e.truth_path for e in episodes], "episode")
    return sorted(episodes, key=lambda e: e.stem)


def _episode(truth_path: Path, stem: str, video_dir: Path, views: str, root: Path) -> Episode:
    """Read one ground-truth file (EpisodeSetError naming it when malformed) and locate its videos."""
    try:
        task, rewards = read_ground_truth(truth_path)
    except (ValueError, FileNotFoundError) as exc:
        raise EpisodeSetError(str(exc)) from None
    if not rewards:
        raise EpisodeSetError(f"{truth_path}: 'ground-truth rewards' is empty")
    video = _find_video(video_dir, stem)
    wrist = _find_video(video_dir, stem + WRIST_SUFFIX)
    if views == "auto":
        views = "two-camera" if wrist is not None else "side-by-side"
    return Episode(stem=stem, task=task, ground_truth=tuple(rewards), success=_success_label(truth_path, stem, root),
                   truth_path=truth_path, video=video, wrist=wrist if views == "two-camera" else None, views=views)


def _find_video(folder: Path, stem: str) -> Optional[Path]:
    """The video named `<stem>.<video extension>` in `folder`, or None."""
    for ext in sorted(VIDEO_EXTENSIONS):
        for candidate in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _success_label(truth_path: Path, stem: str, root: Path) -> Optional[bool]:
    """The true outcome: the file's optional "success" key, else the words of the path (nearest first)."""
    data = json.loads(truth_path.read_text())  # already parsed once by read_ground_truth, so this cannot fail
    if "success" in data:
        if not isinstance(data["success"], bool):
            raise EpisodeSetError(f"{truth_path}: 'success' must be true or false, got {data['success']!r}")
        return data["success"]
    # Nearest first: the stem's own words, then the folders above it (`.../successful/<stem>/data.json`) up to
    # the episode set's root, never above it (a user's `successful_runs/` folder must not label anything).
    inside = [p.name for p in truth_path.parents if p == root or root in p.parents]
    for name in [stem, *inside]:
        words = set(re.split(r"[^a-z]+", name.lower()))
        if words & _FAILURE_WORDS:  # checked first: "unsuccessful" must never read as "successful"
            return False
        if words & _SUCCESS_WORDS:
            return True
    return None


def _check_unique(stems: Sequence[str], paths: Sequence[Path], what: str) -> None:
    """EpisodeSetError when two files share a stem (matching by stem would be ambiguous)."""
    seen: dict[str, Path] = {}
    for stem, path in zip(stems, paths):
        if stem in seen:
            raise EpisodeSetError(f"two {what} files share the stem {stem!r}: {seen[stem]} and {path}")
        seen[stem] = path


def check_videos(episodes: Sequence[Episode]) -> None:
    """EpisodeSetError for the first episode whose video(s) are missing or cannot be opened."""
    import cv2

    for episode in episodes:
        if episode.video is None:
            raise EpisodeSetError(f"episode {episode.stem} ({episode.truth_path}) has no video "
                                  f"{episode.stem}.mp4 beside its ground truth; --rewarder needs videos")
        if episode.views == "two-camera" and episode.wrist is None:
            raise EpisodeSetError(f"episode {episode.stem}: --views two-camera needs {episode.stem}{WRIST_SUFFIX}.mp4 "
                                  f"beside {episode.video}")
        for path in (episode.video, episode.wrist):
            if path is None:
                continue
            capture = cv2.VideoCapture(str(path))
            opened = capture.isOpened()
            capture.release()
            if not opened:
                raise EpisodeSetError(f"cannot open video {path}: not a video file or a codec OpenCV lacks")


@dataclasses.dataclass
class PredictionSet:
    """Precomputed outputs of one rewarder matched to an episode set."""

    folder: Path
    label: str                      # the records' model name when they agree, else the folder name
    records: dict                   # stem -> ScoreRecord, only for episodes of the set
    missing: list                   # stems of episodes without a prediction file
    unmatched: list                 # prediction stems with no episode


def load_predictions(folder: str | Path, episodes: Sequence[Episode]) -> PredictionSet:
    """Read `model_outputs`-shaped JSON files under `folder` (recursively) and match them to episodes by stem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EpisodeSetError(f"predictions folder {folder} is not a folder")
    files = sorted(folder.rglob("*.json"))
    if not files:
        raise EpisodeSetError(f"no prediction files (*.json, official model_outputs shape) under {folder}")
    _check_unique([f.stem for f in files], files, "prediction")
    by_stem = {f.stem: f for f in files}
    wanted = {e.stem: e for e in episodes}
    matched = sorted(set(by_stem) & set(wanted))
    if not matched:
        raise EpisodeSetError(f"no prediction file under {folder} matches an episode stem "
                              f"(e.g. {next(iter(wanted), '?')}.json)")
    records = {stem: _prediction(by_stem[stem], wanted[stem]) for stem in matched}
    models = {r.model for r in records.values()}
    label = models.pop() if len(models) == 1 and next(iter(models), "") else folder.name
    return PredictionSet(folder, label or folder.name, records, sorted(set(wanted) - set(by_stem)),
                         sorted(set(by_stem) - set(wanted)))


def _prediction(path: Path, episode: Episode) -> ScoreRecord:
    """The model's record in one prediction file, checked against the episode's length."""
    try:
        records = read_records(path)
    except (ValueError, FileNotFoundError) as exc:
        raise EpisodeSetError(str(exc)) from None
    if not records:
        raise EpisodeSetError(f"{path}: the list holds no record")
    # Official plot files may also hold a ground-truth entry (no traces): prefer the one with model answers.
    record = next((r for r in records if r.reasoning_traces is not None), records[0])
    if record.num_frames != episode.num_frames:
        raise EpisodeSetError(f"{path}: {record.num_frames} predicted frames but the ground truth "
                              f"{episode.truth_path} has {episode.num_frames}")
    return record
