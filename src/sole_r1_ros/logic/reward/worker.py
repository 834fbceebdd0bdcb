"""RewarderWorker: runs `Rewarder.score` calls one at a time on a background thread, so callers never block.

A rewarder call can take seconds (an 8B model) or hang (a dead server). The worker runs jobs in order on one
daemon thread -- a hung call can therefore never stop the process from exiting -- and reports each job's results,
or the exception it raised, to a callback. Deciding that a job took too long is the caller's business (it knows
what to publish instead); a job's late answer still reaches its callback, which can discard it.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from typing import Callable, Optional, Sequence

from sole_r1_model.rewarder import ProgressQuery, ProgressResult, Rewarder

log = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False)
class ScoreJob:
    """One `score` call: its queries, and once finished its results or error and its latency."""

    queries: Sequence[ProgressQuery]
    on_done: Optional[Callable[["ScoreJob"], None]] = None
    submitted: float = dataclasses.field(default_factory=time.monotonic)
    started: Optional[float] = None       # monotonic time the worker began the call (None while queued)
    results: Optional[list[ProgressResult]] = None
    error: Optional[BaseException] = None
    latency: float = 0.0                  # seconds the call itself took
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    cancelled: bool = False               # set before it starts: the worker skips it

    def cancel(self) -> None:
        """Ask the worker to skip this job if it has not started (a started call cannot be interrupted)."""
        self.cancelled = True

    def running_for(self, now: Optional[float] = None) -> float:
        """Seconds since the call began (0 while still queued)."""
        return 0.0 if self.started is None else (time.monotonic() if now is None else now) - self.started


class RewarderWorker:
    """A single background thread that answers queued ScoreJobs in submission order."""

    def __init__(self, rewarder: Rewarder, name: str = "rewarder-worker") -> None:
        self.rewarder = rewarder
        self._jobs: collections.deque[ScoreJob] = collections.deque()
        self._cond = threading.Condition()
        self._current: Optional[ScoreJob] = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Jobs queued or running (the query queue depth)."""
        with self._cond:
            return len(self._jobs) + (self._current is not None)

    @property
    def idle(self) -> bool:
        """True when nothing is queued or running."""
        return self.pending == 0

    def submit(self, queries: Sequence[ProgressQuery], on_done: Optional[Callable[[ScoreJob], None]] = None
               ) -> ScoreJob:
        """Queue one `score(queries)` call; `on_done(job)` runs on the worker thread when it finishes."""
        job = ScoreJob(list(queries), on_done)
        with self._cond:
            if self._closed:
                raise RuntimeError("the rewarder worker is closed")
            self._jobs.append(job)
            self._cond.notify()
        return job

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._jobs.popleft()
                if job.cancelled:
                    continue
                self._current = job
                job.started = time.monotonic()
            try:
                job.results = self.rewarder.score(job.queries)
            except Exception as exc:  # noqa: BLE001 -- any rewarder failure becomes an invalid answer upstream
                job.error = exc
            job.latency = time.monotonic() - job.started
            with self._cond:
                self._current = None
            job.done.set()
            if job.on_done is not None:
                try:
                    job.on_done(job)
                except Exception:  # noqa: BLE001 -- a failing callback must not kill the worker thread
                    log.exception("rewarder worker: result callback failed")

    def close(self, timeout: float = 1.0) -> None:
        """Stop taking jobs, drop queued ones and wait briefly for the thread (a hung call is left behind)."""
        with self._cond:
            self._closed = True
            self._jobs.clear()
            self._cond.notify_all()
        self._thread.join(timeout)
