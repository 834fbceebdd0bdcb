"""RewardSession: everything the reward node decides, without ROS -- when to ask the rewarder, and what to publish.

Frames go in (`add_frame`), episode starts and privileged simulator progress go in, and `Estimate`s come out
through the `publish` callback: one for each episode's first frame pair (0 %, valid, no model call) and one for
every answer, valid or not. Timing modes (docs/architecture.md, "Timing"):
- `async`: a timer calls `request_query()` at the query rate; with a query still in flight the tick is skipped
  (counted), so a slow rewarder never queues work or blocks the caller.
- `lockstep`: every `reward_every`-th pair of the episode is scored, in order, and its estimate carries that
  pair's stamp, so a simulator can wait for exactly that answer.
Failures -- an exception, no answer within `query_timeout` (`check_timeout()`), an invalid answer -- publish an
invalid estimate whose progress is the last valid one, counted by kind. Thread-safe: ROS callbacks and the worker
thread may call in concurrently.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import threading
import time
from typing import Callable, Optional, Sequence

import numpy as np

from sole_r1_model.rewarder import ProgressQuery, ProgressResult, Rewarder
from sole_r1_ros.logic.reward import stats as kinds
from sole_r1_ros.logic.reward.episode_frames import EpisodeFrames, EpisodeFramesConfig, FramePair
from sole_r1_ros.logic.reward.stats import DiagnosticsSnapshot, RewardStats
from sole_r1_ros.logic.reward.worker import RewarderWorker, ScoreJob

MODES = ("async", "realtime", "lockstep")  # "realtime" (the graphs' word, as sim_bridge/learner) = "async"


class RewarderCallError(RuntimeError):
    """A synchronous scoring call got no answer: the rewarder raised or timed out."""


@dataclasses.dataclass
class RewardSessionConfig:
    """Timing and memory of a reward session."""

    task: str = ""                 # task until an episode message brings one
    mode: str = "async"            # async | lockstep
    reward_every: int = 1          # lockstep: score every n-th frame pair of the episode
    query_timeout: float = 60.0    # seconds before a query counts as failed (its late answer is discarded)
    frames: EpisodeFramesConfig = dataclasses.field(default_factory=EpisodeFramesConfig)
    privileged_history: int = 256  # stamp -> privileged progress entries kept (oracle rewarder only)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == "realtime":
            self.mode = "async"
        if int(self.reward_every) != self.reward_every or self.reward_every < 1:
            raise ValueError(f"reward_every must be an integer >= 1, got {self.reward_every!r}")
        if not (math.isfinite(self.query_timeout) and self.query_timeout > 0):
            raise ValueError(f"query_timeout must be > 0 seconds, got {self.query_timeout!r}")
        if self.privileged_history < 1:
            raise ValueError(f"privileged_history must be >= 1, got {self.privileged_history!r}")


@dataclasses.dataclass(frozen=True)
class Estimate:
    """One progress estimate to publish (mirrors sole_r1/msg/ProgressEstimate, stamps in nanoseconds)."""

    stamp_ns: int
    episode_id: int
    task: str
    progress: float
    valid: bool
    query_index: int
    frames_used: int
    latency: float = 0.0
    reasoning: str = ""
    raw_text: str = ""
    rewarder: str = ""
    privileged: bool = False
    error_kind: str = ""       # one of stats.ERROR_KINDS when invalid
    error: str = ""


@dataclasses.dataclass
class _InFlight:
    job: ScoreJob
    episode_id: int
    pair: FramePair
    query: ProgressQuery
    frames_used: int


class RewardSession:
    """The reward node's logic: frame buffer, query scheduling, failure handling and counters."""

    def __init__(self, rewarder: Rewarder, config: RewardSessionConfig, publish: Callable[[Estimate], None]) -> None:
        self.rewarder = rewarder
        self.config = config
        self._publish = publish
        self._lock = threading.RLock()
        self.frames = EpisodeFrames(config.frames)
        self.worker = RewarderWorker(rewarder)
        self.stats = RewardStats()
        self.episode_id = 0
        self.task = config.task
        self._privileged: collections.OrderedDict[int, float] = collections.OrderedDict()
        self._in_flight: Optional[_InFlight] = None
        # Lockstep pairs waiting for the worker (and, for a privileged rewarder, for their simulator progress),
        # with the monotonic time they became due.
        self._due: collections.deque[tuple[FramePair, float]] = collections.deque()
        self._last_valid = True
        self._closed = False

    # ------------------------------------------------------------------------------------------------ inputs
    def add_frame(self, camera: str, stamp_ns: int, frame: np.ndarray) -> Optional[FramePair]:
        """Add a camera frame; a malformed one is counted and dropped (returns None), never raised."""
        with self._lock:
            try:
                pair = self.frames.add(camera, stamp_ns, frame)
            except ValueError:
                self.stats.count(kinds.MALFORMED_IMAGE)
                return None
            if pair is None:
                return None
            if pair.index == 0:
                self._emit(Estimate(stamp_ns=pair.stamp_ns, episode_id=self.episode_id, task=self.task,
                                    progress=0.0, valid=True, query_index=0, frames_used=1,
                                    rewarder=self.rewarder.name, privileged=self.rewarder.privileged))
            elif self.config.mode == "lockstep" and pair.index % self.config.reward_every == 0:
                self._due.append((pair, time.monotonic()))
                while len(self._due) > self.config.frames.max_frames:  # a stuck rewarder must not grow memory
                    self._due.popleft()
                    self.stats.skipped += 1
                self._dispatch_due()
            return pair

    def count_malformed_image(self) -> None:
        """Count an image the caller could not even convert to an array."""
        with self._lock:
            self.stats.count(kinds.MALFORMED_IMAGE)

    def start_episode(self, episode_id: int, task: str = "", stamp_ns: int = 0) -> bool:
        """Begin episode `episode_id` (task "" keeps the configured one); False when it is already current.

        Frames stamped at or after `stamp_ns` (the announcement's stamp; 0 = unknown) already belong to the new
        episode: topics are not ordered against each other, so its first frames may have come first.
        """
        with self._lock:
            if int(episode_id) == self.episode_id:
                return False
            carried = self.frames.frames_since(stamp_ns) if stamp_ns > 0 else []
            self.episode_id = int(episode_id)
            self.task = task or self.config.task
            self.frames.reset()
            self._due.clear()
            self._privileged = collections.OrderedDict(
                (stamp, value) for stamp, value in self._privileged.items() if stamp_ns > 0 and stamp >= stamp_ns)
            self._in_flight = None  # its answer, if it ever comes, belongs to the old episode: discarded
            self.stats.episodes += 1
            for camera, stamp, frame in carried:
                self.add_frame(camera, stamp, frame)
            return True

    def note_privileged(self, stamp_ns: int, progress: float) -> None:
        """Remember the simulator's progress at a frame stamp (used only when the rewarder is privileged)."""
        if not self.rewarder.privileged or not math.isfinite(progress):
            return  # never hold privileged data a perceptual rewarder could be handed by mistake
        with self._lock:
            self._privileged[int(stamp_ns)] = float(progress)
            while len(self._privileged) > self.config.privileged_history:
                self._privileged.popitem(last=False)
            self._dispatch_due()  # a lockstep pair may have been waiting for exactly this value

    # ---------------------------------------------------------------------------------------------- queries
    def request_query(self) -> bool:
        """Async tick: score the newest pair if it is new and nothing is in flight; True when a query started."""
        with self._lock:
            if not self.frames.has_unscored_pair():
                return False
            if not self.worker.idle:
                self.stats.skipped += 1
                return False
            return self._dispatch(self._newest_scorable())

    def _newest_scorable(self) -> FramePair:
        """The newest pair; for a privileged rewarder the newest unscored one whose simulator progress is known.

        A simulator publishes a step's privileged progress just after its frames, so the newest pair may not have
        it yet; falling back to the newest pair (the oracle then answers invalid) happens only if none has.
        """
        newest = self.frames.newest
        if not self.rewarder.privileged:
            return newest
        floor = self.frames.previous.index if self.frames.previous is not None else 0
        for pair in reversed(self.frames.pairs):
            if pair.index <= floor:
                break
            if self._privileged_at(pair.stamp_ns) is not None:
                return pair
        return newest

    def check_timeout(self, now: Optional[float] = None) -> bool:
        """Publish an invalid estimate for a query older than query_timeout; True when one timed out."""
        with self._lock:
            self._dispatch_due(now)  # gives up waiting for privileged progress that never came
            flight = self._in_flight
            if flight is None or flight.job.running_for(now) <= self.config.query_timeout:
                return False
            self._in_flight = None
            self._emit_failure(flight, kinds.TIMEOUT, f"no answer within query_timeout={self.config.query_timeout:g} s",
                               flight.job.running_for(now))
            return True

    def _dispatch_due(self, now: Optional[float] = None) -> None:
        """Lockstep: start the oldest due pair when the worker is free (and its privileged progress is known)."""
        now = time.monotonic() if now is None else now
        while self._due and self.worker.idle and self._in_flight is None:
            pair, due_since = self._due[0]
            waiting = self.rewarder.privileged and self._privileged_at(pair.stamp_ns) is None
            if waiting and now - due_since <= self.config.query_timeout:
                return  # the simulator's progress for this frame is still on its way
            self._due.popleft()
            self._dispatch(pair)

    def _dispatch(self, pair: FramePair) -> bool:
        privileged = self._privileged_at(pair.stamp_ns) if self.rewarder.privileged else None
        query = self.frames.next_query(self.task, pair, privileged_progress=privileged)
        flight = _InFlight(None, self.episode_id, pair, query, self.frames.frames_seen)  # type: ignore[arg-type]
        if not self.task:
            self._emit_failure(flight, kinds.NO_TASK, "no task: set the 'task' parameter or publish /episode/info")
            return False
        flight.job = self.worker.submit([query], self._on_done)
        self._in_flight = flight
        return True

    def _privileged_at(self, stamp_ns: int) -> Optional[float]:
        if stamp_ns in self._privileged:
            return self._privileged[stamp_ns]
        tolerance = self.config.frames.pair_tolerance * 1e9
        near = [s for s in self._privileged if abs(s - stamp_ns) <= tolerance]
        return self._privileged[min(near, key=lambda s: abs(s - stamp_ns))] if near else None

    def _on_done(self, job: ScoreJob) -> None:
        """Worker thread: publish the job's answer unless it timed out or its episode is over."""
        with self._lock:
            flight = self._in_flight
            if self._closed:
                return  # shutting down: the publishers may be gone
            if flight is None or flight.job is not job:
                self.stats.late_discarded += 1
            else:
                self._in_flight = None
                if job.error is not None:
                    self._emit_failure(flight, kinds.EXCEPTION, f"{type(job.error).__name__}: {job.error}", job.latency)
                else:
                    self._emit_result(flight, job.results[0], job.latency)
            self._dispatch_due()

    # -------------------------------------------------------------------------------------------- publishing
    def _emit_result(self, flight: _InFlight, result: ProgressResult, latency: float) -> None:
        valid = bool(result.valid) and math.isfinite(result.progress)
        progress = self.frames.record_answer(result.progress, valid)
        error = "" if valid else (result.error or "the rewarder's answer is invalid")
        self.stats.record_answer(latency, valid, "" if valid else kinds.INVALID_ANSWER)
        self._emit(Estimate(stamp_ns=flight.pair.stamp_ns, episode_id=flight.episode_id, task=flight.query.task,
                            progress=progress, valid=valid, query_index=flight.query.query_index,
                            frames_used=flight.frames_used, latency=latency, reasoning=result.reasoning,
                            raw_text=result.raw_text, rewarder=result.rewarder or self.rewarder.name,
                            privileged=bool(result.privileged or self.rewarder.privileged),
                            error_kind="" if valid else kinds.INVALID_ANSWER, error=error))

    def _emit_failure(self, flight: _InFlight, kind: str, error: str, latency: float = 0.0) -> None:
        progress = self.frames.record_answer(float("nan"), False)
        self.stats.record_answer(latency, False, kind)
        self._emit(Estimate(stamp_ns=flight.pair.stamp_ns, episode_id=flight.episode_id, task=flight.query.task,
                            progress=progress, valid=False, query_index=flight.query.query_index,
                            frames_used=flight.frames_used, latency=latency, rewarder=self.rewarder.name,
                            privileged=self.rewarder.privileged, error_kind=kind, error=error))

    def _emit(self, estimate: Estimate) -> None:
        if estimate.query_index > 0:
            self._last_valid = estimate.valid
        self._publish(estimate)

    # ------------------------------------------------------------------------------------- service and state
    def score_frames(self, task: str, external: Sequence[np.ndarray], wrist: Optional[Sequence[np.ndarray]],
                     previous_progress: float = 0.0) -> ProgressResult:
        """Score one frame sequence synchronously (first / second-to-last / last frame); ValueError on bad input.

        Runs on the same worker as the stream (one rewarder call at a time) and waits at most query_timeout
        for the call to start and as long again for its answer; RewarderCallError when it times out or raises
        (an unparsable answer is a result with valid=False, not an error).
        """
        if len(external) < 2:
            raise ValueError(f"need at least 2 external frames (first ... current), got {len(external)}")
        if wrist and len(wrist) != len(external):
            raise ValueError(f"wrist_frames must be empty or as many as external_frames ({len(external)}), "
                             f"got {len(wrist)}")
        if not math.isfinite(previous_progress):
            raise ValueError(f"previous_progress must be a finite percentage, got {previous_progress!r}")
        query = ProgressQuery(task=task, external=(external[0], external[-2], external[-1]),
                              wrist=(wrist[0], wrist[-2], wrist[-1]) if wrist else None,
                              previous_progress=float(previous_progress), query_index=len(external) - 1)
        job = self.worker.submit([query], lambda _job: self._after_service_job())
        timeout = self.config.query_timeout
        waited = 0.0
        while job.started is None and not job.done.is_set() and waited < timeout:  # behind a stream query
            job.done.wait(0.05)
            waited += 0.05
        if not job.done.wait(timeout if job.started is not None else 0.0):
            job.cancel()  # still queued: never run it
            raise RewarderCallError(f"{kinds.TIMEOUT}: no answer within query_timeout={timeout:g} s")
        if job.error is not None:
            raise RewarderCallError(f"{kinds.EXCEPTION}: the rewarder raised {type(job.error).__name__}: {job.error}")
        result = job.results[0]
        result.latency = job.latency
        return result

    def _after_service_job(self) -> None:
        with self._lock:
            self._dispatch_due()  # a lockstep pair may have waited behind the service call

    def snapshot(self) -> DiagnosticsSnapshot:
        """A consistent copy of the counters for /diagnostics."""
        with self._lock:
            stats = self.stats
            return DiagnosticsSnapshot(
                rewarder=self.rewarder.name, privileged=self.rewarder.privileged, mode=self.config.mode,
                episode_id=self.episode_id, task=self.task, answers=stats.answers, invalid=stats.invalid,
                errors=dict(stats.errors), skipped=stats.skipped, late_discarded=stats.late_discarded,
                queue_depth=self.worker.pending + len(self._due), frames_held=self.frames.frames_held,
                frames_seen=self.frames.frames_seen, latency_p50=stats.latency_p50(),
                latency_last=stats.latency_last(), last_valid=self._last_valid)

    def close(self) -> None:
        """Stop the worker and release the rewarder."""
        with self._lock:
            self._closed = True
        self.worker.close()
        self.rewarder.close()
