"""Rewards from perceived progress: turn a stream of (possibly invalid, sparse, late) progress estimates into one
reward per transition, without ever reading true success or simulator progress.

Frames are numbered per episode: o_0 is the reset observation, step i is the transition o_i -> o_{i+1}. An
estimate scores one frame (the ProgressQuery's current frame). p(f) is the perceived progress at frame f:
  hold_last    p(f) = the latest valid estimate of a frame <= f
  interpolate  p(f) = linear interpolation between the valid estimates around f (numpy.interp)
and step i earns
  progress     r_i = scale * p(i+1)                 (the progress the action led to)
  delta        r_i = scale * (p(i+1) - p(i))        (telescopes to the change of progress over the episode)

Default: interpolate + progress (scale 0.01, so reward = progress/100). Why:
  * the SOLE-R1 paper uses the model's "dense estimates of task progress ... directly as rewards" (abstract,
    arXiv 2603.28730), i.e. reward = progress, not its change;
  * the official per-frame rewards (philipmit/sole-r1-model `model_outputs/`, produced by the rewardgen pipeline)
    query key frames only and give every frame `numpy.interp` of the key-frame answers -- the interpolate rule
    here, so a learner at 10 Hz with ~1 Hz queries sees the same per-frame signal as the official scoring.
  * frame 0 is 0 % without a model call in the official pipeline; `first_frame_progress=0.0` keeps that anchor.

Invalid estimates (unparsable answers, timeouts) are never rewards: they are counted and ignored, and the
frames they scored get their value from the valid estimates around them. A step is released (`ready()`) only when
its reward is fixed -- once an estimate of a later frame has arrived (hold_last) or a valid estimate at or after
its next frame exists (interpolate) -- and only after the rewarder has produced at least one valid estimate in the
episode; so a transition waits about one query period plus latency (off-policy learning does not mind). Steps
before the first valid estimate, when there is no frame-0 anchor, are dropped and counted (nothing measured
them). At the episode end, frames after the last valid estimate hold its value; an episode in which the rewarder
never produced a valid estimate yields no transitions at all (a rewarder outage must not look like 0 % progress).
"""
from __future__ import annotations

import bisect
import collections
import dataclasses
import logging
import math
from typing import Any, Optional

from sole_r1_config import param

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class RewardConfig:
    """How progress estimates become rewards (see module docstring for the default's justification)."""

    mode: str = param("interpolate", "progress between estimates: interpolate or hold_last",
                      choices=("interpolate", "hold_last"))
    kind: str = param("progress", "reward = scale * progress, or scale * its change since the last step",
                      choices=("progress", "delta"))
    scale: float = param(0.01, "reward per percent of progress (0.01: progress/100)", low=1e-9)
    first_frame_progress: Optional[float] = param(0.0, "progress of the first frame (official: 0 %, no model "
                                                  "call); unset: unknown", low=-100.0, high=100.0)

    def __post_init__(self) -> None:
        if self.mode not in ("interpolate", "hold_last"):
            raise ValueError(f"RewardConfig.mode must be 'interpolate' or 'hold_last', got {self.mode!r}")
        if self.kind not in ("progress", "delta"):
            raise ValueError(f"RewardConfig.kind must be 'progress' or 'delta', got {self.kind!r}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"RewardConfig.scale must be a positive number, got {self.scale}")
        if self.first_frame_progress is not None and not -100.0 <= self.first_frame_progress <= 100.0:
            raise ValueError("RewardConfig.first_frame_progress must be in [-100, 100] or null")


class ProgressRewardShaper:
    """Per-episode shaper: `add_step(payload)`, `add_estimate(frame, progress, valid)`, then collect
    `(payload, reward)` pairs from `ready()` (and `end_episode()` at the end), always in step order."""

    def __init__(self, config: Optional[RewardConfig] = None) -> None:
        self.config = config or RewardConfig()
        self.stats = collections.Counter()
        self.start_episode()

    def start_episode(self) -> None:
        """Forget the previous episode (call at every reset; unreleased steps of the old episode are dropped)."""
        if getattr(self, "_pending", None):
            self.stats["dropped_steps"] += len(self._pending)
        self._pending: collections.deque = collections.deque()   # (step index, payload)
        self._next_step = 0
        self._frames: list[int] = []                               # valid estimates, increasing frames
        self._values: list[float] = []
        self._known_until = -1                                     # newest frame any estimate arrived for
        self._measured = False                                     # a valid rewarder estimate arrived
        if self.config.first_frame_progress is not None:
            self._frames.append(0)
            self._values.append(float(self.config.first_frame_progress))
            self._known_until = 0
        self.last_valid_progress: Optional[float] = self.config.first_frame_progress

    def add_step(self, payload: Any) -> int:
        """Queue the next transition of the episode; returns its step index i (o_i -> o_{i+1})."""
        index = self._next_step
        self._pending.append((index, payload))
        self._next_step += 1
        return index

    def add_estimate(self, frame: int, progress: float, valid: bool) -> None:
        """Record the estimate of frame `frame` (percent). Invalid or non-finite ones are counted, never used."""
        self.stats["estimates"] += 1
        if frame <= self._known_until:
            self.stats["out_of_order_estimates"] += 1
            LOG.warning("progress estimate for frame %d arrived after frame %d; ignored", frame, self._known_until)
            return
        self._known_until = frame
        if not valid or progress is None or not math.isfinite(progress):
            self.stats["invalid_estimates"] += 1
            return
        value = min(100.0, max(-100.0, float(progress)))
        self._frames.append(frame)
        self._values.append(value)
        self._measured = True
        self.last_valid_progress = value

    def ready(self) -> list:
        """Release every queued step whose reward is now fixed, as (payload, reward) pairs in step order."""
        return self._release(final=False)

    def end_episode(self) -> list:
        """Release all remaining steps (frames after the last valid estimate hold its value) and reset."""
        released = self._release(final=True)
        self.start_episode()
        return released

    # -- internals
    def _release(self, final: bool) -> list:
        out = []
        delta = self.config.kind == "delta"
        while self._pending:
            index, payload = self._pending[0]
            needed = [index, index + 1] if delta else [index + 1]
            if not self._measured:
                if not final:
                    break   # no valid estimate from the rewarder yet: wait (dropped if none ever comes)
                self._drop_head()
                continue
            if needed[0] < self._frames[0]:
                self._drop_head()   # before the first valid estimate, and no frame-0 anchor: nothing measured it
                continue
            if not final and not self._determined(needed[-1]):
                break
            values = [self._progress(f) for f in needed]
            progress_reward = values[-1] - values[0] if delta else values[-1]
            self._pending.popleft()
            self.stats["rewarded_steps"] += 1
            out.append((payload, self.config.scale * progress_reward))
        return out

    def _drop_head(self) -> None:
        self._pending.popleft()
        self.stats["dropped_steps"] += 1

    def _determined(self, frame: int) -> bool:
        if self.config.mode == "hold_last":
            return self._known_until >= frame
        return self._frames[-1] >= frame

    def _progress(self, frame: int) -> float:
        """p(frame) from the valid estimates (frame >= the first valid one); past the last one it holds."""
        position = bisect.bisect_right(self._frames, frame) - 1
        if self.config.mode == "hold_last" or position == len(self._frames) - 1 or self._frames[position] == frame:
            return self._values[position]
        f0, f1 = self._frames[position], self._frames[position + 1]
        v0, v1 = self._values[position], self._values[position + 1]
        return v0 + (v1 - v0) * (frame - f0) / (f1 - f0)
