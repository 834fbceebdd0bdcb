"""Rewarder progress for every frame of a LeRobot dataset, written into the dataset (`sole-r1 annotate`).

For each rewarder and episode, the episode is scored as `sole-r1 score` scores a video (offline.score_key_frames:
key frames linspace(0, N-1, K), one call per key frame after the first with the previous answer fed back,
progress interpolated to every frame), and written as columns (columns.py: in place, in the dataset's layout):
- `rewards_<label>`: float32, percent, one value per frame;
- `reasoning_<label>`: string, the official model_outputs traces (the completion at each key frame, " " between
  key frames, "" at frame 0), only when the rewarder wrote text beyond a bare answer.
Answers are cached per episode in <dataset>/.sole_r1_annotate/<label>.jsonl as they come, so an interrupted run
resumes where it stopped (the settings are stored with them: changed settings start over); the cache is deleted
once the columns are written.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path
from typing import Callable, Optional, Sequence

from tqdm import tqdm

from sole_r1_model.frames import DEFAULT_NUM_KEY_FRAMES, key_frame_indices
from sole_r1_model.lerobot_dataset import format as fmt
from sole_r1_model.lerobot_dataset.cameras import EpisodeFrames, choose_cameras
from sole_r1_model.lerobot_dataset.columns import FrameColumn, add_frame_columns, check_new_columns
from sole_r1_model.offline import score_key_frames
from sole_r1_model.records import ScoreRecord, build_record
from sole_r1_model.rewarder import Rewarder

log = logging.getLogger(__name__)

CACHE_DIR = ".sole_r1_annotate"
REWARDS_PREFIX, REASONING_PREFIX = "rewards_", "reasoning_"
# What offline scoring writes for a key frame when the rewarder gave no text of its own (offline._trace_text).
_NO_TEXT = re.compile(r"\s*(<answer>-?\d+%</answer>|\[(invalid|rewarder error): .*\])\s*", re.DOTALL)
_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclasses.dataclass(frozen=True)
class RewarderSpec:
    """One rewarder to run: the label that names its columns and the spec `make_rewarder` takes."""

    label: str
    spec: str

    @classmethod
    def parse(cls, text: str) -> "RewarderSpec":
        """`LABEL=SPEC` or `SPEC` (label: a backend or YAML name itself, a YAML file's stem, a class's name)."""
        label, sep, spec = text.partition("=")
        if not sep:
            spec, label = text, default_label(text)
        label = label.strip()
        if not label or _LABEL.search(label):
            raise ValueError(f"rewarder label {label!r} must be letters, digits, '_', '.' or '-' (in {text!r})")
        if not spec.strip():
            raise ValueError(f"no rewarder spec after the label in {text!r}")
        return cls(label, spec.strip())


def default_label(spec: str) -> str:
    """The column label of a spec: `tiny` -> tiny, `config/rewarders/openai.yaml` -> openai, `pkg.mod:Cls` -> Cls."""
    text = spec.rsplit(":", 1)[-1] if ":" in spec and not Path(spec).exists() else Path(spec).stem or spec
    return _LABEL.sub("_", text).strip("_") or "rewarder"


@dataclasses.dataclass
class AnnotateOptions:
    """How episodes are scored and written (the `sole-r1 annotate` flags)."""

    external: Optional[str] = None          # camera key (or its last part) of the external view; None: default
    wrist: Optional[str] = None             # wrist camera; None: default, "none": external-only prompt
    num_key_frames: int = DEFAULT_NUM_KEY_FRAMES
    variant: Optional[str] = None           # prompt layout asked of the rewarder; None: its own
    task: Optional[str] = None              # task for every episode; None: each episode's own
    privileged_column: Optional[str] = None  # per-frame column passed as privileged progress (the oracle reads it)
    reasoning: bool = True                  # write reasoning_<label> columns where there is text
    overwrite: bool = False                 # replace existing columns of the same names
    progress: bool = True                   # progress bars

    def __post_init__(self) -> None:
        if self.num_key_frames < 2:
            raise ValueError("num_key_frames must be >= 2 (frame 0 is 0 % without a call)")


@dataclasses.dataclass
class AnnotationSummary:
    """What one rewarder did over the dataset."""

    label: str
    episodes: int
    resumed: int                 # episodes whose answers came from the cache of an interrupted run
    calls: int
    invalid: int
    columns: list


class AnswerCache:
    """One rewarder's key-frame answers, a JSON line per episode appended as it is scored (for resuming)."""

    def __init__(self, root: Path, label: str, settings: dict) -> None:
        self.path = root / CACHE_DIR / f"{label}.jsonl"
        self.settings = settings
        self.entries: dict = {}
        if self.path.is_file():
            self._load()

    def _load(self) -> None:
        lines = self.path.read_text().splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            header = {}
        if header.get("settings") != self.settings:
            log.info("%s: cached answers were made with other settings; scoring again", self.path)
            self.path.unlink()
            return
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # the line being written when the run stopped
                break
            self.entries[int(entry["episode_index"])] = entry
        log.info("%s: resuming, %d episode(s) already scored", self.path, len(self.entries))

    def add(self, episode_index: int, record: ScoreRecord) -> None:
        """Store an episode's key-frame answers (flushed, so a crash loses at most this episode)."""
        entry = {"episode_index": episode_index, "num_frames": record.num_frames, "task": record.task_description,
                 "key_frames": record.key_frame_indices, "key_progress": record.key_progress,
                 "key_texts": record.key_traces(), "key_valid": record.key_valid,
                 "key_latency": record.key_latency, "variant": record.variant}
        if not self.path.is_file():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"settings": self.settings}) + "\n")
        with open(self.path, "a") as stream:
            stream.write(json.dumps(entry) + "\n")
        self.entries[episode_index] = entry

    def record(self, episode_index: int, label: str) -> ScoreRecord:
        """The ScoreRecord of a cached episode (rewards interpolated, traces spread to every frame)."""
        e = self.entries[episode_index]
        return build_record(label, e["task"], e["num_frames"], e["key_frames"], e["key_progress"], e["key_texts"],
                            e["key_valid"], e["key_latency"], e["variant"])


def has_text(record: ScoreRecord) -> bool:
    """True when some key-frame answer carries text of the rewarder's own, not only a number or an error."""
    return any(not _NO_TEXT.fullmatch(text) for text in record.key_traces()[1:])


@dataclasses.dataclass
class AnnotationPlan:
    """A checked annotation job: the dataset's metadata, episodes and cameras, and the rewarders to run."""

    root: Path
    info: dict
    episodes: list
    cameras: tuple               # (external key, wrist key or None)
    tasks: dict                  # task_index -> task
    rewarders: list
    options: AnnotateOptions


def plan_annotation(root: str | Path, rewarders: Sequence[RewarderSpec],
                    options: Optional[AnnotateOptions] = None) -> AnnotationPlan:
    """Open the dataset and check cameras, labels and column names, before any model loads (ValueError)."""
    options = options or AnnotateOptions()
    root = Path(root)
    info = fmt.read_info(root)
    episodes = fmt.list_episodes(root, info)
    cameras = choose_cameras(info, options.external, options.wrist)
    labels = [r.label for r in rewarders]
    if not rewarders or len(set(labels)) != len(labels):
        raise ValueError(f"give each rewarder a distinct label (LABEL=SPEC); got {labels}")
    if options.privileged_column and options.privileged_column not in info["features"]:
        raise ValueError(f"no column {options.privileged_column!r} in the dataset for the privileged progress")
    check_new_columns(info, [p + label for label in labels for p in (REWARDS_PREFIX, REASONING_PREFIX)],
                      options.overwrite)
    return AnnotationPlan(root, info, episodes, cameras, fmt.task_names(root, info), list(rewarders), options)


def annotate_dataset(root: str | Path, rewarders: Sequence[RewarderSpec], options: Optional[AnnotateOptions] = None,
                     make: Optional[Callable[[str], Rewarder]] = None) -> list[AnnotationSummary]:
    """Score every episode with every rewarder and write the columns (module docstring); ValueError on bad input."""
    return run_annotation(plan_annotation(root, rewarders, options), make)


def run_annotation(plan: AnnotationPlan, make: Optional[Callable[[str], Rewarder]] = None) -> list[AnnotationSummary]:
    """Run a plan: score (resuming from the cache), then write every column at once."""
    if make is None:
        from sole_r1_model.rewarders import make_rewarder as make
    reader = EpisodeFrames(plan.root, plan.info)
    summaries, columns, caches = [], [], []
    try:
        for rewarder_spec in plan.rewarders:
            cache = AnswerCache(plan.root, rewarder_spec.label, _settings(rewarder_spec, plan.cameras, plan.options))
            resumed = sum(e.index in cache.entries for e in plan.episodes)
            todo = [e for e in plan.episodes if e.index not in cache.entries and e.length > 0]
            if todo:
                _score_episodes(make(rewarder_spec.spec), rewarder_spec.label, todo, cache, reader, plan)
            summaries.append(_columns(rewarder_spec.label, plan, cache, columns, resumed))
            caches.append(cache)
    finally:
        reader.close()
    add_frame_columns(plan.root, columns, plan.options.overwrite)
    for cache in caches:  # written: the answers are in the dataset now
        cache.path.unlink(missing_ok=True)
    if (plan.root / CACHE_DIR).is_dir() and not any((plan.root / CACHE_DIR).iterdir()):
        (plan.root / CACHE_DIR).rmdir()
    return summaries


def _settings(rewarder_spec: RewarderSpec, cameras: tuple, options: AnnotateOptions) -> dict:
    """What the cached answers depend on: a change makes them stale."""
    return {"spec": rewarder_spec.spec, "external": cameras[0], "wrist": cameras[1],
            "num_key_frames": options.num_key_frames, "variant": options.variant, "task": options.task,
            "privileged_column": options.privileged_column}


def _score_episodes(rewarder: Rewarder, label: str, episodes: list, cache: AnswerCache, reader: EpisodeFrames,
                    plan: AnnotationPlan) -> None:
    """Score `episodes` with one rewarder, caching each episode's answers as it finishes."""
    (external, wrist), options = plan.cameras, plan.options
    bar = tqdm(episodes, desc=f"{label}: episodes", unit="episode", disable=not options.progress)
    with rewarder, bar:
        for episode in bar:
            keys = key_frame_indices(episode.length, options.num_key_frames)
            extra = [options.privileged_column] if options.privileged_column else []
            rows = reader.rows(episode, extra + ["task_index"])
            record = score_key_frames(
                rewarder, keys, episode.length, reader.frames(episode, external, keys),
                None if wrist is None else reader.frames(episode, wrist, keys),
                task=_task(episode, rows, plan.tasks, options), variant=options.variant, progress=False,
                fps=float(plan.info["fps"]),
                privileged_progress=rows[options.privileged_column].tolist() if extra else None)
            cache.add(episode.index, record)
            bar.set_postfix(final=f"{record.rewards[-1]:.0f}%", invalid=record.num_invalid)


def _task(episode: fmt.EpisodeLocation, rows: dict, tasks: dict, options: AnnotateOptions) -> str:
    """The task an episode is scored for: --task, else the episode's own (episode index, else its first row)."""
    task = options.task or (episode.tasks[0] if episode.tasks else tasks.get(int(rows["task_index"][0])))
    if not task or not str(task).strip():
        raise ValueError(f"episode {episode.index} has no task description; give one with --task")
    return str(task)


def _columns(label: str, plan: AnnotationPlan, cache: AnswerCache, columns: list, resumed: int) -> AnnotationSummary:
    """Append the rewarder's columns (rewards, reasoning where there is text) and summarise its answers."""
    episodes = plan.episodes
    records = {e.index: cache.record(e.index, label) for e in episodes if e.length > 0}
    rewards = {e.index: records[e.index].rewards if e.index in records else [] for e in episodes}
    names = [REWARDS_PREFIX + label]
    columns.append(FrameColumn(names[0], "float32", rewards))
    # An overwritten reasoning column is rewritten even without text, so it never describes older rewards.
    stale = REASONING_PREFIX + label in plan.info["features"]
    if plan.options.reasoning and (stale or any(has_text(r) for r in records.values())):
        names.append(REASONING_PREFIX + label)
        columns.append(FrameColumn(names[1], "string", {e.index: records[e.index].reasoning_traces
                                                        if e.index in records else [] for e in episodes}))
    calls = sum(r.num_calls for r in records.values())
    invalid = sum(r.num_invalid for r in records.values())
    return AnnotationSummary(label, len(episodes), resumed, calls, invalid, names)
