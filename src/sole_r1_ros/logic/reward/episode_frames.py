"""EpisodeFrames: the camera frames of the current episode that a reward query needs, in bounded memory.

Wrist and shoulder images arrive on separate topics; a frame pair is formed when both cameras have a frame whose
stamps differ by at most `pair_tolerance`. The buffer always keeps the episode's first pair, the pair the previous
query used as "current" (it becomes the next query's "previous"), the newest pair, and as many recent pairs as
`max_frames` allows -- the oldest others are dropped first. It also remembers the last VALID answer, which is the
`previous_progress` of the next query (an invalid answer never becomes the model's reference point).
No rclpy here: stamps are integer nanoseconds, frames RGB uint8 arrays.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from sole_r1_model.rewarder import ProgressQuery, check_rgb_frame

EXTERNAL = "external"
WRIST = "wrist"
CAMERAS = (EXTERNAL, WRIST)


@dataclasses.dataclass
class EpisodeFramesConfig:
    """How frames are paired and how many are kept."""

    pair_tolerance: float = 0.02   # seconds: largest stamp difference of a wrist/shoulder pair
    max_frames: int = 64           # frame pairs held at most (first, previous and newest included)
    use_wrist: bool = True         # False: external camera only (each external frame is a "pair" on its own)
    max_unpaired: int = 8          # frames per camera waiting for their partner; older ones are dropped

    def __post_init__(self) -> None:
        if not self.pair_tolerance >= 0:
            raise ValueError(f"pair_tolerance must be >= 0 seconds, got {self.pair_tolerance!r}")
        if int(self.max_frames) != self.max_frames or self.max_frames < 3:
            raise ValueError(f"max_frames must be an integer >= 3 (first, previous, newest), got {self.max_frames!r}")
        if int(self.max_unpaired) != self.max_unpaired or self.max_unpaired < 1:
            raise ValueError(f"max_unpaired must be an integer >= 1, got {self.max_unpaired!r}")


@dataclasses.dataclass(frozen=True)
class FramePair:
    """One moment of the episode: the external (shoulder) frame and the wrist frame (None: external only)."""

    index: int                    # 0 for the episode's first pair, then 1, 2, ... in arrival order
    stamp_ns: int                 # stamp of the external frame, nanoseconds
    external: np.ndarray
    wrist: Optional[np.ndarray] = None


class EpisodeFrames:
    """Pairs camera frames, holds the current episode's frames in bounded memory and builds the next query."""

    def __init__(self, config: EpisodeFramesConfig = EpisodeFramesConfig()) -> None:
        self.config = config
        self._tolerance_ns = int(round(config.pair_tolerance * 1e9))
        self.dropped_unpaired = 0      # frames that never found a partner (over all episodes)
        self.dropped_out_of_order = 0  # frames stamped no later than the newest pair (over all episodes)
        self.reset()

    def reset(self) -> None:
        """Forget the episode: frames, unpaired frames, query count and progress (a new episode begins)."""
        self._pairs: list[FramePair] = []
        self._unpaired: dict[str, list[tuple[int, np.ndarray]]] = {EXTERNAL: [], WRIST: []}
        self._next_index = 0
        self.previous: Optional[FramePair] = None   # the pair the last query used as "current"
        self.queries = 0                            # queries built in this episode
        self.last_valid_progress = 0.0              # frame 0 is 0 % by definition

    # ------------------------------------------------------------------------------------------------ frames
    @property
    def first(self) -> Optional[FramePair]:
        """The episode's first pair (None before any pair)."""
        return self._pairs[0] if self._pairs else None

    @property
    def newest(self) -> Optional[FramePair]:
        """The most recent pair (None before any pair)."""
        return self._pairs[-1] if self._pairs else None

    @property
    def pairs(self) -> list[FramePair]:
        """The pairs held, oldest first (a copy)."""
        return list(self._pairs)

    @property
    def frames_held(self) -> int:
        """Camera images in memory: those of the held pairs plus the ones waiting for a partner."""
        paired = sum(1 + (p.wrist is not None) for p in self._pairs)
        return paired + sum(len(waiting) for waiting in self._unpaired.values())

    @property
    def frames_seen(self) -> int:
        """Pairs formed in this episode (including those dropped from memory)."""
        return self._next_index

    def frames_since(self, stamp_ns: int) -> list[tuple[str, int, np.ndarray]]:
        """(camera, stamp, frame) of every held frame stamped at or after `stamp_ns`, oldest first.

        Used at an episode start: a new episode's first frames may arrive before the message announcing it.
        """
        frames = [(camera, stamp, frame) for camera, waiting in self._unpaired.items()
                  for stamp, frame in waiting if stamp >= stamp_ns]
        for pair in self._pairs:
            if pair.stamp_ns >= stamp_ns:
                frames.append((EXTERNAL, pair.stamp_ns, pair.external))
                if pair.wrist is not None:
                    frames.append((WRIST, pair.stamp_ns, pair.wrist))
        return sorted(frames, key=lambda item: item[1])

    def add(self, camera: str, stamp_ns: int, frame: np.ndarray) -> Optional[FramePair]:
        """Add one camera frame; return the new pair when it completes one, else None (ValueError: bad frame)."""
        if camera not in CAMERAS:
            raise ValueError(f"camera must be one of {CAMERAS}, got {camera!r}")
        check_rgb_frame(frame)
        stamp_ns = int(stamp_ns)
        if self._pairs and stamp_ns <= self._pairs[-1].stamp_ns:
            self.dropped_out_of_order += 1  # a late or repeated frame cannot be "newer" than what we hold
            return None
        if not self.config.use_wrist:
            return self._append(stamp_ns, frame, None) if camera == EXTERNAL else None
        other = WRIST if camera == EXTERNAL else EXTERNAL
        partner = self._take_partner(other, stamp_ns)
        if partner is None:
            self._wait(camera, stamp_ns, frame)
            return None
        partner_stamp, partner_frame = partner
        external, wrist = (frame, partner_frame) if camera == EXTERNAL else (partner_frame, frame)
        return self._append(stamp_ns if camera == EXTERNAL else partner_stamp, external, wrist)

    def _take_partner(self, camera: str, stamp_ns: int) -> Optional[tuple[int, np.ndarray]]:
        """Remove and return `camera`'s waiting frame closest to `stamp_ns` within the tolerance, if any."""
        waiting = self._unpaired[camera]
        if not waiting:
            return None
        best = min(range(len(waiting)), key=lambda i: abs(waiting[i][0] - stamp_ns))
        if abs(waiting[best][0] - stamp_ns) > self._tolerance_ns:
            return None
        # Frames older than the partner can no longer pair with anything newer: drop them now.
        self.dropped_unpaired += best
        partner = waiting[best]
        del waiting[:best + 1]
        return partner

    def _wait(self, camera: str, stamp_ns: int, frame: np.ndarray) -> None:
        waiting = self._unpaired[camera]
        waiting.append((stamp_ns, frame))
        waiting.sort(key=lambda item: item[0])
        while len(waiting) > self.config.max_unpaired:
            waiting.pop(0)
            self.dropped_unpaired += 1

    def _append(self, stamp_ns: int, external: np.ndarray, wrist: Optional[np.ndarray]) -> FramePair:
        pair = FramePair(self._next_index, stamp_ns, external, wrist)
        self._next_index += 1
        self._pairs.append(pair)
        self._trim()
        return pair

    def _trim(self) -> None:
        """Drop the oldest pairs beyond max_frames, never the first, the previous-query or the newest pair."""
        keep = {id(self._pairs[0]), id(self._pairs[-1]), id(self.previous)}
        position = 1
        while len(self._pairs) > self.config.max_frames and position < len(self._pairs) - 1:
            if id(self._pairs[position]) in keep:
                position += 1
            else:
                del self._pairs[position]

    # ----------------------------------------------------------------------------------------------- queries
    def has_unscored_pair(self) -> bool:
        """True when a pair newer than the last query's current pair exists (and it is not frame 0)."""
        newest = self.newest
        if newest is None or newest.index == 0:
            return False
        return self.previous is None or newest.index > self.previous.index

    def next_query(self, task: str, current: Optional[FramePair] = None, stamp: Optional[float] = None,
                   privileged_progress: Optional[float] = None) -> ProgressQuery:
        """The query for `current` (default: newest pair): first / previous-query / current frames.

        The previous frame of the first query is the first frame (as in the official client); previous_progress
        is the last valid answer. Building the query makes `current` the next query's previous pair.
        """
        first, current = self.first, current or self.newest
        if first is None or current is None or current.index == 0:
            raise ValueError("a query needs the episode's first frame pair and a later one (frame 0 is 0 % "
                             "without a model call)")
        previous = self.previous if self.previous is not None and self.previous.index < current.index else first
        wrist = None
        if current.wrist is not None and first.wrist is not None and previous.wrist is not None:
            wrist = (first.wrist, previous.wrist, current.wrist)
        self.queries += 1
        query = ProgressQuery(task=task, external=(first.external, previous.external, current.external),
                              wrist=wrist, previous_progress=self.last_valid_progress, query_index=self.queries,
                              stamp=current.stamp_ns * 1e-9 if stamp is None else stamp,
                              privileged_progress=privileged_progress)
        self.previous = current
        return query

    def record_answer(self, progress: float, valid: bool) -> float:
        """Note an answer of this episode; return the progress to publish (the last valid one when invalid)."""
        if valid:
            self.last_valid_progress = float(progress)
        return self.last_valid_progress
