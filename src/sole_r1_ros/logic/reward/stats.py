"""Counters of the reward node for /diagnostics and logs: latency, invalid answers, errors by kind, skips."""
from __future__ import annotations

import collections
import dataclasses
import math

import numpy as np

# Error kinds (keys of RewardStats.errors); each one is counted and shown in /diagnostics.
EXCEPTION = "exception"              # the rewarder raised
TIMEOUT = "timeout"                  # no answer within query_timeout (a late answer is discarded)
INVALID_ANSWER = "invalid_answer"    # the rewarder answered, but invalid (e.g. unparsable model text)
MALFORMED_IMAGE = "malformed_image"  # a camera image that could not be converted; dropped
NO_TASK = "no_task"                  # a query was due but no task is known yet (parameter or /episode/info)
ERROR_KINDS = (EXCEPTION, TIMEOUT, INVALID_ANSWER, MALFORMED_IMAGE, NO_TASK)


@dataclasses.dataclass
class RewardStats:
    """What happened so far: answers, their latency and validity, failures by kind, skipped queries."""

    answers: int = 0                 # estimates published after a model call (frame-0 estimates excluded)
    valid: int = 0
    skipped: int = 0                 # async query ticks that found a query still in flight
    late_discarded: int = 0          # answers that came after their timeout or after an episode reset
    episodes: int = 0
    errors: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    latencies: collections.deque = dataclasses.field(default_factory=lambda: collections.deque(maxlen=200))

    @property
    def invalid(self) -> int:
        """Published estimates that were not valid (exceptions, timeouts, invalid answers)."""
        return self.answers - self.valid

    def record_answer(self, latency: float, valid: bool, error_kind: str = "") -> None:
        """Count one published answer; an invalid one is also counted under its error kind."""
        self.answers += 1
        self.valid += bool(valid)
        if math.isfinite(latency) and latency >= 0:
            self.latencies.append(latency)
        if not valid:
            self.errors[error_kind or INVALID_ANSWER] += 1

    def count(self, kind: str) -> None:
        """Count a failure that produced no answer (e.g. a malformed image)."""
        self.errors[kind] += 1

    def latency_p50(self) -> float:
        """Median latency of the recent answers, seconds (NaN before any)."""
        return float(np.median(self.latencies)) if self.latencies else float("nan")

    def latency_last(self) -> float:
        """Latency of the latest answer, seconds (NaN before any)."""
        return float(self.latencies[-1]) if self.latencies else float("nan")


@dataclasses.dataclass(frozen=True)
class DiagnosticsSnapshot:
    """One consistent reading of the node's state, turned into a DiagnosticArray by `markers.diagnostics`."""

    rewarder: str
    privileged: bool
    mode: str
    episode_id: int
    task: str
    answers: int
    invalid: int
    errors: dict
    skipped: int
    late_discarded: int
    queue_depth: int
    frames_held: int
    frames_seen: int
    latency_p50: float
    latency_last: float
    last_valid: bool
