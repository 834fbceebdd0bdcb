"""The Rewarder interface: every progress estimator (SOLE-R1, OpenAI-compatible APIs, oracle, your own) fits it.

A rewarder answers batches of `ProgressQuery` -- one model call each: "given the task, the episode's first,
previous and current frames and the previous progress, how far along is the task now?" -- with one
`ProgressResult` per query, in order. Batching is across episodes (e.g. several envs or videos at once).
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Optional, Sequence

import numpy as np

Frames = tuple  # (first, previous, current): three RGB uint8 HxWx3 arrays, top-left origin


@dataclasses.dataclass(frozen=True)
class ProgressQuery:
    """One progress question about one episode: first / previous / current frames of each camera."""

    task: str
    external: Frames                      # shoulder/external camera (first, previous, current)
    wrist: Optional[Frames] = None        # wrist camera (first, previous, current), None = external only
    previous_progress: float = 0.0        # the rewarder's own answer at the previous query, percent
    query_index: int = 1                  # 1 for the first model call of an episode (frame 0 needs no call)
    stamp: float = 0.0                    # time (s) of the current frame, passed through for the caller
    privileged_progress: Optional[float] = None  # simulator progress; only the oracle rewarder may read it

    def __post_init__(self) -> None:
        if len(self.external) != 3 or (self.wrist is not None and len(self.wrist) != 3):
            raise ValueError("ProgressQuery needs exactly three frames (first, previous, current) per camera")
        for frame in (*self.external, *(self.wrist or ())):
            check_rgb_frame(frame)


@dataclasses.dataclass
class ProgressResult:
    """A rewarder's answer to one ProgressQuery."""

    progress: float            # percent in [-100, 100]; when valid is False, the previous progress carried forward
    reasoning: str = ""        # chain of thought (inside <think>...</think>)
    raw_text: str = ""         # full completion text, unparsed
    valid: bool = True         # False: failure, timeout or unparsable answer
    latency: float = 0.0       # seconds for this query (a batch's wall time is shared by its queries)
    rewarder: str = ""         # backend name
    privileged: bool = False   # True when progress came from simulator state (oracle)
    error: str = ""            # why the answer is invalid, empty when valid


class Rewarder(abc.ABC):
    """Base class of all progress estimators; subclasses implement `_score`."""

    name: str = "rewarder"
    privileged: bool = False

    def score(self, queries: Sequence[ProgressQuery]) -> list[ProgressResult]:
        """Answer a batch of queries, one result per query, in order; never raises for a bad model answer."""
        if not queries:
            return []
        results = self._score(list(queries))
        if len(results) != len(queries):
            raise RuntimeError(f"{self.name}: {len(results)} results for {len(queries)} queries")
        for result in results:
            result.rewarder = result.rewarder or self.name
            result.privileged = result.privileged or self.privileged
        return results

    @abc.abstractmethod
    def _score(self, queries: list[ProgressQuery]) -> list[ProgressResult]:
        """Backend-specific batch scoring."""

    def close(self) -> None:
        """Release models, sessions or sockets (default: nothing to release)."""

    def __enter__(self) -> "Rewarder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_rgb_frame(frame: np.ndarray) -> None:
    """Raise ValueError unless `frame` is an RGB uint8 image of shape HxWx3 with H, W >= 1."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"frame must be uint8 HxWx3 RGB, got dtype={frame.dtype} shape={frame.shape}")
