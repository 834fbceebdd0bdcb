"""ActorLoop: what the learner node decides, without ROS -- which observation to act on, when, and with what reward.

Camera frames (channel-first arrays) and the EE pose arrive per stamp (int nanoseconds) and complete an observation
once every camera and a pose are there: pose and images paired by exact stamp in lockstep, the newest pose in
realtime. The actor acts on the newest complete observation at every `tick()` (realtime) or on every completed
observation (lockstep), drives an `OnlineLearner` and returns the `ActorCommand` to publish. Progress estimates are
matched to the observations acted on by stamp; episode events start, join, end or abort episodes; the latched e-stop
silences the actor and drops the episode in progress. Time is injected (`clock`, seconds on any monotonic clock).
"""
from __future__ import annotations

import collections
import dataclasses
import enum
import time
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np

from sole_r1_config import param
from sole_r1_rl.obs import PROPRIO
from sole_r1_ros.logic.safety.command import CommandDelta

if TYPE_CHECKING:  # the loop only drives it; tests pass a fake
    from sole_r1_rl.online import OnlineLearner

MAX_PENDING = 8        # incomplete observations kept; older ones never completed and are dropped (counted)
PERIOD_HISTORY = 1000  # control periods kept for the p50 / p99 reports


class EpisodeEvent(enum.Enum):
    """Episode events (the values of EpisodeInfo.EVENT_*)."""

    STARTED = 0
    STEP = 1
    ENDED = 2


class EpisodeChange(enum.Enum):
    """What an episode event did: the node logs JOINED, tests check the rest."""

    NONE = "none"         # a STEP of the current episode, an event of an ended or another episode
    STARTED = "started"   # a new episode began
    JOINED = "joined"     # a STEP of an episode whose STARTED was missed: joined mid-way
    ENDED = "ended"       # the current episode ended (terminal when end_reason is "progress_threshold")
    ABORTED = "aborted"   # the current episode ended by the e-stop: dropped


@dataclasses.dataclass
class ActorLoopConfig:
    """Actor timing, action scale and checkpointing; learner_node declares each field as a ROS parameter."""

    mode: str = param("realtime", "realtime (timer) or lockstep (one action per observation)",
                      choices=("realtime", "lockstep"))
    control_rate: float = param(10.0, "actor rate in realtime mode, Hz", low=0.1, high=1000.0)
    translation_scale: float = param(-1.0, "metres per unit action; < 0: take it from the bridge (/robot/action_scale)")
    rotation_scale: float = param(-1.0, "radians per unit action (0: no rotation); < 0: from the bridge")
    checkpoint_every: int = param(1000, "env steps between checkpoints (taken at episode ends)", low=1)

    def __post_init__(self) -> None:
        if self.mode not in ("realtime", "lockstep"):
            raise ValueError(f"mode must be 'realtime' or 'lockstep', got {self.mode!r}")
        if not self.control_rate > 0:
            raise ValueError(f"control_rate must be > 0 Hz, got {self.control_rate!r}")


@dataclasses.dataclass(frozen=True)
class ActorCommand:
    """A command to publish: the action in physical units, stamped with the observation it answers."""

    command: CommandDelta
    stamp_ns: int


class ActorLoop:
    """Observation assembly, act timing, reward matching and episode bookkeeping around an OnlineLearner."""

    def __init__(self, learner: "OnlineLearner", config: Optional[ActorLoopConfig] = None,
                 cameras: Sequence[str] = ("shoulder", "wrist"), clock: Callable[[], float] = time.monotonic):
        self.config = config = config if config is not None else ActorLoopConfig()
        self.learner = learner
        self.cameras = tuple(cameras)
        self._clock = clock
        self.action_scale = (config.translation_scale, config.rotation_scale)
        self._pending: collections.OrderedDict = collections.OrderedDict()  # stamp ns -> {camera: chw, "pose": ..}
        self._gripper = 1.0
        self._newest_pose: Optional[tuple] = None
        self._latest: Optional[tuple] = None     # (stamp ns, frames) of the newest complete observation
        self._acted_stamp: Optional[int] = None
        self._due = False  # realtime: a control tick found no new observation; act as soon as one completes
        self._last_action: Optional[np.ndarray] = None
        self._last_act_time: Optional[float] = None
        self._frame_of_stamp: dict = {}          # stamp ns -> frame index in the current episode
        self.episode_id: Optional[int] = None
        self._ended: set = set()
        self.estopped = False
        self._last_checkpoint = learner.counters.env_steps
        self.periods: collections.deque = collections.deque(maxlen=PERIOD_HISTORY)  # seconds between actions
        self.counts: collections.Counter = collections.Counter()

    # ---- inputs --------------------------------------------------------------------------------------------
    @property
    def action_scale_known(self) -> bool:
        """False while a scale left to the bridge (< 0) has not arrived: the actor stays silent."""
        return min(self.action_scale) >= 0

    def on_action_scale(self, values: Sequence[float]) -> bool:
        """The bridge's (metres, radians) per unit action; configured scales (>= 0) win. False when unusable."""
        if len(values) != 2 or not all(np.isfinite(values)) or min(values) < 0:
            return False
        cfg = self.config
        self.action_scale = (cfg.translation_scale if cfg.translation_scale >= 0 else float(values[0]),
                             cfg.rotation_scale if cfg.rotation_scale >= 0 else float(values[1]))
        return True

    def on_gripper(self, opening: float) -> None:
        """The gripper's measured opening (the last proprio entry of the next observation)."""
        self._gripper = float(opening)

    def count_bad_image(self) -> None:
        """The node could not convert an image: count it."""
        self.counts["bad_images"] += 1

    def on_camera(self, camera: str, stamp_ns: int, frame: np.ndarray) -> Optional[ActorCommand]:
        """A (3, H, W) frame of `camera`; returns a command when it completes an observation that is acted on."""
        self._slot(stamp_ns)[camera] = frame
        return self._complete(stamp_ns)

    def on_pose(self, stamp_ns: int, position: np.ndarray, quaternion: np.ndarray) -> Optional[ActorCommand]:
        """An EE pose (position (3,), quaternion xyzw (4,)); in lockstep it may complete an observation."""
        self._newest_pose = (position, quaternion)
        if self.config.mode == "lockstep":  # the simulator stamps images and pose alike: pair them exactly
            self._slot(stamp_ns)["pose"] = (position, quaternion)
            return self._complete(stamp_ns)
        return None

    def _slot(self, stamp_ns: int) -> dict:
        slot = self._pending.setdefault(stamp_ns, {})
        while len(self._pending) > MAX_PENDING:  # observations that never completed: drop the oldest
            self._pending.popitem(last=False)
            self.counts["incomplete_observations"] += 1
        return slot

    def _complete(self, stamp_ns: int) -> Optional[ActorCommand]:
        slot = self._pending.get(stamp_ns)
        if slot is not None and "pose" not in slot and self.config.mode == "realtime" and self._newest_pose:
            # Real robots stream cameras and robot state independently: pair the image pair with the newest pose.
            slot["pose"] = self._newest_pose
        if slot is None or "pose" not in slot or any(c not in slot for c in self.cameras):
            return None
        del self._pending[stamp_ns]
        position, quaternion = slot["pose"]
        proprio = np.concatenate([position, quaternion, [self._gripper]]).astype(np.float32)
        if not np.all(np.isfinite(proprio)):
            self.counts["bad_proprio"] += 1
            return None
        frames = {c: slot[c] for c in self.cameras}
        frames[PROPRIO] = proprio
        self._latest = (stamp_ns, frames)
        if self.config.mode == "lockstep" or self._due:
            return self._act()
        return None

    # ---- acting --------------------------------------------------------------------------------------------
    def tick(self) -> Optional[ActorCommand]:
        """The realtime control timer fired: act on the newest observation if it was not acted on yet."""
        return self._act()

    def _act(self) -> Optional[ActorCommand]:
        if self._latest is None or self.episode_id is None or self.estopped or not self.action_scale_known:
            return None
        stamp_ns, frames = self._latest
        now = self._clock()
        if stamp_ns == self._acted_stamp:
            # No new observation: act when the next one completes, not at the next tick, or a bridge at the control
            # rate drifting against this timer turns a period into two. Not if a late action already answered it.
            recent = self._last_act_time is not None and now - self._last_act_time < 0.5 / self.config.control_rate
            self._due = self.config.mode == "realtime" and not recent
            return None
        self._due = False
        learner = self.learner
        if self._last_act_time is not None and learner.in_episode:  # resets are no control periods
            self.periods.append(now - self._last_act_time)
        self._last_act_time = now
        if not learner.in_episode:
            learner.begin_episode(frames)
            index = 0
        else:
            index = learner.observe(self._last_action, frames)
        self._frame_of_stamp[stamp_ns] = index
        self._acted_stamp = stamp_ns
        action = learner.act()
        self._last_action = action
        return ActorCommand(self._to_command(action), stamp_ns)

    def _to_command(self, action: np.ndarray) -> CommandDelta:
        translation_scale, rotation_scale = self.action_scale
        return CommandDelta(np.asarray(action[:3], np.float64) * translation_scale,
                            np.asarray(action[3:6], np.float64) * rotation_scale, float(action[6]),
                            int(self.episode_id or 0))

    # ---- rewards and episodes ------------------------------------------------------------------------------
    def on_progress(self, episode_id: int, stamp_ns: int, query_index: int, progress: float, valid: bool) -> None:
        """A progress estimate of the frame stamped `stamp_ns`: a reward for the observation acted on there."""
        if query_index == 0:
            return  # frame 0 is 0 % by definition: the reward shaper already anchors it
        index = self._frame_of_stamp.get(stamp_ns)
        if index is None or episode_id != self.episode_id:
            self.counts["unmatched_estimates"] += 1  # e.g. a frame the actor never acted on
            return
        self.learner.add_estimate(index, float(progress), bool(valid))
        self.counts["valid_estimates" if valid else "invalid_estimates"] += 1

    def on_episode(self, event: EpisodeEvent, episode_id: int, end_reason: str = "") -> EpisodeChange:
        """An episode event (only event, id and end_reason: privileged fields are not for the learner)."""
        episode = int(episode_id)
        if event == EpisodeEvent.ENDED:
            self._ended.add(episode)
            if episode != self.episode_id:
                return EpisodeChange.NONE
            if end_reason == "estop":
                self.learner.abort_episode()
            else:
                self.learner.end_episode(terminated=end_reason == "progress_threshold")
            self.episode_id = None
            self._maybe_checkpoint()
            return EpisodeChange.ABORTED if end_reason == "estop" else EpisodeChange.ENDED
        if episode == self.episode_id or episode in self._ended:
            return EpisodeChange.NONE
        # STARTED -- or a STEP of an episode whose STARTED this node missed (it started after the bridge): join
        # it rather than wait forever (in lockstep the bridge would wait for us).
        if self.learner.in_episode:
            self.learner.end_episode(terminated=False)
        self.episode_id = episode
        self._frame_of_stamp.clear()
        self._last_action = None
        return EpisodeChange.STARTED if event == EpisodeEvent.STARTED else EpisodeChange.JOINED

    def on_estop(self, latched: bool) -> bool:
        """The e-stop latch state; latching drops the episode in progress. True when the state changed."""
        latched = bool(latched)
        if latched and not self.estopped:
            self.learner.abort_episode()
        changed = latched != self.estopped
        self.estopped = latched
        return changed

    def _maybe_checkpoint(self) -> None:
        if self.learner.counters.env_steps - self._last_checkpoint >= self.config.checkpoint_every:
            self.learner.save()
            self._last_checkpoint = self.learner.counters.env_steps
