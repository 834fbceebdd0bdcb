"""Recording episodes into bags without ever blocking the graph: a bounded queue, one writer thread, a bag per episode.

The recorder node's callbacks only enqueue (topic, receive time, CDR bytes as received); when the queue is full the
message is dropped and counted, so the graph never waits for the disk. The writer thread splits the stream on
EpisodeInfo: STARTED (or any event of a newer episode) opens a bag, ENDED closes it `tail_s` later so the episode's
last estimates still land in it. Topics travel separately, so a first frame may overtake its STARTED: while no
episode runs the last `preroll_s` of messages are kept, and those received after the STARTED stamp open the bag.
rclpy-free: the node deserialises EpisodeInfo into an `EpisodeEvent`.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from sole_r1_ros.logic.bag_files import BagTopic, EpisodeBagWriter

EVENT_STARTED, EVENT_STEP, EVENT_ENDED = 0, 1, 2  # EpisodeInfo.EVENT_*


@dataclasses.dataclass(frozen=True)
class EpisodeEvent:
    """What the recorder needs of one EpisodeInfo message."""

    kind: int                       # EVENT_STARTED, EVENT_STEP or EVENT_ENDED
    episode_id: int
    stamp_ns: int                   # header stamp
    task: str = ""
    task_name: str = ""
    step_count: int = 0
    end_reason: str = ""
    true_success: Optional[bool] = None   # PRIVILEGED, None when unknown


@dataclasses.dataclass
class Incoming:
    """One received message, as the node hands it to the writer thread."""

    topic: str
    received_ns: int
    data: bytes
    event: Optional[EpisodeEvent] = None  # set for /episode/info messages


class EpisodeSplitter:
    """Routes messages into one bag per episode (module doc); used by a single writer thread only."""

    def __init__(self, output_dir: str | Path, topics: Sequence[BagTopic], metadata: dict,
                 preroll_s: float = 2.0, tail_s: float = 0.5, chunk_bytes: int = 256 * 1024,
                 on_closed: Optional[Callable[[Path, dict], None]] = None) -> None:
        self.output_dir = Path(output_dir)
        self.topics = list(topics)
        self.metadata = dict(metadata)
        self.preroll_ns, self.tail_ns = int(preroll_s * 1e9), int(tail_s * 1e9)
        self.chunk_bytes = chunk_bytes
        self.on_closed = on_closed
        self.bag: Optional[EpisodeBagWriter] = None
        self.episode_id: Optional[int] = None
        self.closed: list[Path] = []
        self._preroll: collections.deque[Incoming] = collections.deque()
        # Latched state (e-stop): its last value opens every bag, however long ago it was published.
        self._latched = {t.name for t in self.topics if t.latched and t.role != "episode"}
        self._latest_latched: dict[str, Incoming] = {}
        self._ended: set[int] = set()
        self._newest_start = -1
        self._last_event: Optional[EpisodeEvent] = None
        self._closing_at: Optional[int] = None
        self.dropped_in_bag = 0

    def handle(self, item: Incoming) -> None:
        """Take one message: episode events first (they may open or schedule closing a bag), then the message."""
        if item.event is not None:
            self._on_event(item.event, item.received_ns)
        if item.topic in self._latched:
            self._latest_latched[item.topic] = item
        if self.bag is not None:
            self.bag.write(item.topic, item.received_ns, item.data)
            return
        self._preroll.append(item)
        while self._preroll and self._preroll[0].received_ns < item.received_ns - self.preroll_ns:
            self._preroll.popleft()

    def tick(self, now_ns: int, flush_s: float) -> None:
        """Close a bag whose tail has passed; flush the open bag every `flush_s` seconds."""
        if self.bag is not None and self._closing_at is not None and now_ns >= self._closing_at:
            self.close_bag()
        elif self.bag is not None and time.monotonic() - self.bag.last_flush >= flush_s:
            self.bag.flush()

    def _on_event(self, event: EpisodeEvent, received_ns: int) -> None:
        eid = event.episode_id
        if event.kind == EVENT_ENDED:
            self._ended.add(eid)
            if self.bag is not None and eid == self.episode_id and self._closing_at is None:
                self._last_event, self._closing_at = event, received_ns + self.tail_ns
            return
        if event.kind == EVENT_STARTED:
            # Transient-local history replays old STARTED events: only a newer one starts an episode (its id may
            # be lower than the last one when a bridge restarted).
            if event.stamp_ns <= self._newest_start:
                return
            self._newest_start = event.stamp_ns
            self._ended.discard(eid)
        elif eid in self._ended or (self.episode_id is not None and eid < self.episode_id):
            return  # a step of a finished episode (a simulator steps on until the reset)
        if self.bag is not None and eid == self.episode_id:
            self._last_event = event if self._closing_at is None else self._last_event
            return
        if self.bag is not None:
            self.close_bag("next_episode")
        self._open(event)  # STARTED, or a step of an episode whose STARTED was missed

    def _open(self, event: EpisodeEvent) -> None:
        started = datetime.datetime.now(datetime.timezone.utc)
        name = f"episode_{event.episode_id:05d}_{started:%Y%m%d-%H%M%S}"
        path = self.output_dir / name
        suffix = 1
        while path.exists():
            suffix += 1
            path = self.output_dir / f"{name}_{suffix}"
        metadata = {**self.metadata, "episode_id": event.episode_id, "task": event.task,
                    "task_name": event.task_name, "started_at": started.isoformat(timespec="seconds")}
        self.bag = EpisodeBagWriter(path, self.topics, metadata, self.chunk_bytes)
        self.episode_id, self._last_event, self._closing_at = event.episode_id, event, None
        for item in self._latest_latched.values():
            if item.received_ns < event.stamp_ns:
                self.bag.write(item.topic, item.received_ns, item.data)
        # Messages that overtook STARTED: received after its stamp; events of other episodes stay out.
        for item in self._preroll:
            if item.received_ns >= event.stamp_ns and (item.event is None or item.event.episode_id == event.episode_id):
                self.bag.write(item.topic, item.received_ns, item.data)
        self._preroll.clear()

    def close_bag(self, reason: str = "") -> Optional[Path]:
        """Finish the open bag with its end metadata; returns its path (None when no bag was open)."""
        if self.bag is None:
            return None
        bag, last = self.bag, self._last_event
        self.bag, self._closing_at = None, None
        ended = last is not None and last.kind == EVENT_ENDED
        truth = None if last is None else last.true_success
        extra = {"end_reason": (last.end_reason if ended else "") or reason or "unknown",
                 "step_count": last.step_count if last else 0,
                 "true_success": "unknown" if truth is None else str(bool(truth)).lower(),
                 "message_count": sum(bag.counts.values()), "dropped": self.dropped_in_bag, "complete": "true"}
        if not bag.metadata.get("task") and last is not None and last.task:
            extra["task"] = last.task
        self.dropped_in_bag = 0
        path = bag.close(extra)
        self.closed.append(path)
        if self.on_closed is not None:
            self.on_closed(path, {**bag.counts})
        return path


def git_revision(root: Optional[Path] = None) -> str:
    """`git describe --always --dirty` of the source checkout ("unknown" outside a git checkout)."""
    from sole_r1_config.paths import share_dir

    try:
        result = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=root or share_dir(),
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError, FileNotFoundError):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else "unknown"


class BagRecorder:
    """The writer thread behind a bounded queue: `put` never blocks, a full queue drops and counts."""

    def __init__(self, splitter: EpisodeSplitter, queue_size: int = 2000, flush_s: float = 1.0,
                 on_error: Optional[Callable[[str], None]] = None) -> None:
        self.splitter = splitter
        self.flush_s = flush_s
        self.on_error = on_error
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self.received = 0
        self.written = 0
        self.dropped: collections.Counter = collections.Counter()
        self.errors = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bag_writer", daemon=True)
        self._thread.start()

    def put(self, item: Incoming) -> bool:
        """Queue one message for the writer; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.dropped[item.topic] += 1
                self.splitter.dropped_in_bag += 1  # reported in the open (or next) bag's metadata
            return False
        with self._lock:
            self.received += 1
        return True

    def stats(self) -> dict:
        """Counters for /diagnostics."""
        with self._lock:
            bag = self.splitter.bag
            return {"received": self.received, "written": self.written, "dropped": sum(self.dropped.values()),
                    "dropped_by_topic": dict(self.dropped), "queued": self._queue.qsize(),
                    "bags_closed": len(self.splitter.closed), "errors": self.errors, "last_error": self.last_error,
                    "recording": "" if bag is None else str(bag.path)}

    def _run(self) -> None:
        while not self._stop.is_set() or not self._queue.empty():
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self.splitter.handle(item)
                    with self._lock:
                        self.written += 1
                self.splitter.tick(time.time_ns(), self.flush_s)
            except Exception as exc:  # noqa: BLE001 -- a disk error must not kill the thread (nor the graph)
                self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        """Count a write error and abandon the open bag (its flushed chunks stay readable)."""
        with self._lock:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
        self.splitter.bag = None
        if self.on_error is not None:
            self.on_error(self.last_error)

    def close(self, timeout: float = 10.0) -> Optional[Path]:
        """Write what is queued, finish the open bag (end reason 'shutdown'), stop the thread."""
        self._stop.set()
        self._thread.join(timeout)
        try:
            return self.splitter.close_bag("shutdown")
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return None
