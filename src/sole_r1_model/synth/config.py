"""Options of `sole-r1 synth`: one typed dataclass, validated at construction; the CLI flags are derived from it."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from sole_r1_config import param
from sole_r1_model.composite import VARIANTS
from sole_r1_model.frames import DEFAULT_NUM_KEY_FRAMES
from sole_r1_model.synth.reasoning import STYLES

# Every policy a task's episodes can be drawn from (sole_r1_model.synth.rollouts builds them).
POLICIES = ("expert", "noisy", "stall", "derail", "random", "do_nothing", "fidget")
LABELS = ("privileged", "time")
IMAGE_FORMATS = ("png", "jpeg")
ALL_SUITES = ("metaworld:all", "robosuite:all", "maniskill:all", "libero:all")

# Fields that decide what an episode contains; the others only decide where and how fast it is made.
_RUN_ONLY = ("out", "tasks", "holdout_tasks", "episodes_per_task", "workers", "shard_size_mb", "quiet")


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """Options of one synthesis run (see docs/training.md, "Data synthesis")."""

    out: str = param(description="output folder: dataset/, test_videos/, heldout/, episodes/ (resumable)")
    tasks: tuple[str, ...] = param(ALL_SUITES, "tasks as suite/task, globs (metaworld/pick-*) or suite:all; "
                                   "suites that cannot be imported here (e.g. LIBERO) are skipped with a note")
    holdout_tasks: tuple[str, ...] = param((), "tasks (same syntax) kept out of the dataset; their episodes go to "
                                           "heldout/test_videos for zero-shot evaluation")
    episodes_per_task: int = param(8, "episodes rolled out per task", low=1)
    policy_mix: str = param("expert=0.25,noisy=0.2,stall=0.25,derail=0.15,random=0.1,do_nothing=0.05",
                            f"weights of the policies {', '.join(POLICIES)} (name=weight,...); each task's "
                            "episodes follow them in a low-discrepancy sequence")
    noise_sigma: tuple[float, float] = param((0.05, 0.4), "range of the noisy expert's action noise std "
                                             "(normalised units)")
    stall_progress: tuple[float, float] = param((10.0, 85.0), "range of the privileged progress (%) at which "
                                                "stall/derail episodes stop following the expert")
    hold_steps: int = param(10, "steps an episode continues after the task first succeeds", low=0)
    max_steps: int = param(0, "cap on episode length in steps (0: the task's max_episode_steps)", low=0)
    key_frames: int = param(DEFAULT_NUM_KEY_FRAMES, "key frames per episode, linspace(0, N-1, K) as the official "
                            "offline scoring: K-1 examples per episode", low=2)
    extra_frames: int = param(0, "extra random frames per episode, each asked against the key frame before it",
                              low=0)
    label: str = param("privileged", "progress label: privileged = staged simulator progress (stalls and "
                       "regressions show); time = 100*t/t_success for successful episodes, privileged for the "
                       "others", choices=LABELS)
    reasoning: str = param("full", "reasoning style of the completions: full (1-4 sentences, varied wording) or "
                           "brief (main change, what is left, `Progress P% -> C%.`; ~half the tokens)",
                           choices=STYLES)
    previous_noise: float = param(0.0, "fraction of examples (after the first query) whose stated previous progress "
                                       "is a wrong estimate, >= 15 points off: teaches a model to correct an earlier "
                                       "mistake instead of copying it forward", low=0.0, high=1.0)
    variant: str = param("full", "composite/prompt layout", choices=tuple(sorted(VARIANTS)))
    image_size: int = param(384, "camera render size in pixels (square): 384 = the composite's tile, so views "
                            "are used unscaled (256 renders ~15-20 % faster, then upscaled)", low=16, high=2048)
    camera_preset: str = param("", "camera preset of config/tasks/<suite>.yaml (empty: each task's default)")
    image_format: str = param("png", "encoding of the composite in the dataset (png: lossless; jpeg: ~4x "
                              "smaller)", choices=IMAGE_FORMATS)
    jpeg_quality: int = param(95, "JPEG quality when --image-format jpeg", low=1, high=100)
    video_fps: float = param(10.0, "frame rate of the side-by-side episode videos")
    seed: int = param(0, "master seed; each episode's seed derives from (seed, suite, task, episode index)")
    workers: int = param(1, "worker processes (each owns its envs); results do not depend on it", low=1)
    shard_size_mb: int = param(500, "approximate size of one dataset shard (.arrow file)", low=1)
    quiet: bool = param(False, "no progress bar")

    def __post_init__(self) -> None:
        if not str(self.out).strip():
            raise ValueError("out must name an output folder")
        for name in ("tasks", "holdout_tasks", "noise_sigma", "stall_progress"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.tasks:
            raise ValueError("tasks must name at least one task, glob or suite:all")
        if self.episodes_per_task < 1:
            raise ValueError(f"episodes_per_task must be >= 1, got {self.episodes_per_task}")
        self.policy_weights()  # raises on a malformed mix
        _check_range("noise_sigma", self.noise_sigma, 0.0, 2.0)
        _check_range("stall_progress", self.stall_progress, 0.0, 100.0)
        if self.hold_steps < 0 or self.max_steps < 0 or self.extra_frames < 0:
            raise ValueError("hold_steps, max_steps and extra_frames must be >= 0")
        if self.key_frames < 2:
            raise ValueError(f"key_frames must be >= 2 (frame 0 is 0 % without a call), got {self.key_frames}")
        if self.label not in LABELS:
            raise ValueError(f"label must be one of {LABELS}, got {self.label!r}")
        if not 0.0 <= self.previous_noise <= 1.0:
            raise ValueError(f"previous_noise must be in [0, 1], got {self.previous_noise!r}")
        if self.reasoning not in STYLES:
            raise ValueError(f"reasoning must be one of {STYLES}, got {self.reasoning!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {self.variant!r}")
        if not 16 <= self.image_size <= 2048:
            raise ValueError(f"image_size must be within 16..2048 pixels, got {self.image_size}")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be within 1..100, got {self.jpeg_quality}")
        if self.video_fps <= 0 or self.workers < 1 or self.shard_size_mb < 1:
            raise ValueError("video_fps, workers and shard_size_mb must be positive")

    def policy_weights(self) -> dict[str, float]:
        """The policy mix as {policy: weight}, in POLICIES order, zero weights dropped."""
        weights: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in self.policy_mix.split(","))):
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or name not in POLICIES:
                raise ValueError(f"policy_mix item {item!r}: expected name=weight with name in {POLICIES}")
            try:
                weights[name] = float(value)
            except ValueError:
                raise ValueError(f"policy_mix item {item!r}: weight is not a number") from None
            if not weights[name] >= 0:
                raise ValueError(f"policy_mix item {item!r}: weight must be >= 0")
        ordered = {p: weights[p] for p in POLICIES if weights.get(p, 0.0) > 0}
        if not ordered:
            raise ValueError(f"policy_mix {self.policy_mix!r} gives no policy a positive weight")
        return ordered

    def content_settings(self) -> dict[str, Any]:
        """The options that decide an episode's bytes (recorded in each episode's completion marker)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _RUN_ONLY}

    def content_key(self) -> str:
        """Short hash of content_settings(): a finished episode is reused only under the same key."""
        text = json.dumps(self.content_settings(), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def command_line(self) -> str:
        """An equivalent `sole-r1 synth` command (content options only; --workers and --out left to the user)."""
        parts = ["sole-r1 synth --out OUT"]
        defaults = SynthConfig(out="x")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in ("out", "workers", "quiet") or value == getattr(defaults, field.name):
                continue
            flag = "--" + field.name.replace("_", "-")
            if isinstance(value, bool):
                parts.append(flag)
            elif isinstance(value, tuple):
                parts.append(" ".join([flag, *(str(v) for v in value)]))
            else:
                parts.append(f"{flag} {value}")
        return " ".join(parts)


def _check_range(name: str, value: tuple, low: float, high: float) -> None:
    """Raise unless `value` is (a, b) with low <= a <= b <= high."""
    if len(value) != 2 or not low <= float(value[0]) <= float(value[1]) <= high:
        raise ValueError(f"{name} must be (min, max) with {low} <= min <= max <= {high}, got {value}")
