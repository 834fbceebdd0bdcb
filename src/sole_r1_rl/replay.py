"""Replay buffer: every camera frame stored once (uint8), per-episode bookkeeping, n-step sampling that respects
episode ends, optional persistence of completed episodes (see episode_store.py).

Memory layout: a ring of `capacity` frame slots written in order. An episode of T transitions occupies T+1 slots
(its observations o_0..o_T); each slot also holds the action and reward of the transition from it and links to the
episode's previous and next frame slots. So a transition costs one frame per camera -- next observations and frame
stacks follow the links, nothing is copied. With one writer an episode's slots are consecutive; several envs write
their episodes interleaved through `stream`s (one open episode per stream, each sampled while it is written).
When the ring wraps, the episode owning the next slot is evicted whole.

n-step targets (DrQ-v2 replay_buffer.py:150-160, with episode ends handled): for a transition at step t of an
episode with L transitions so far, k = min(nstep, L - t) and
    reward   = sum_{i<k} discount^i r_{t+i}
    discount = discount^k, or 0 when o_{t+k} is the final observation of an episode that ended in a true
               terminal state (a time-limit truncation still bootstraps from o_{t+k})
    next_obs = o_{t+k}
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Optional

import numpy as np

from sole_r1_rl.config import AgentConfig
from sole_r1_rl.episode_store import EpisodeStore
from sole_r1_rl.obs import PROPRIO

LOG = logging.getLogger(__name__)
_LOADING = "loading"   # the stream episodes read back from disk are written through


@dataclasses.dataclass
class Batch:
    """A batch of n-step transitions as numpy arrays; images are uint8 (B, 3*frame_stack, H, W) per camera."""

    obs: dict
    proprio: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    discount: np.ndarray
    next_obs: dict
    next_proprio: np.ndarray

    def arrays(self) -> dict:
        """Flat name -> array view (for copying into preallocated, e.g. pinned, buffers)."""
        flat = {f"obs/{k}": v for k, v in self.obs.items()}
        flat.update({f"next_obs/{k}": v for k, v in self.next_obs.items()})
        flat.update(proprio=self.proprio, action=self.action, reward=self.reward, discount=self.discount,
                    next_proprio=self.next_proprio)
        return flat


class ReplayBuffer:
    """Episode-aware ring replay (module docstring); `directory` makes completed episodes persistent.

    `episode_limit` (resume): stored episodes with ids at or above it -- except `kept_episodes` -- were closed
    after the checkpoint that recorded both (`closed_episode_limit`, `closed_above_limit`); they are removed from
    the directory instead of loaded."""

    def __init__(self, config: AgentConfig, directory: Optional[str] = None, seed: Optional[int] = None,
                 compress: bool = False, episode_limit: Optional[int] = None, kept_episodes=()) -> None:
        self.config = config
        self.cameras = tuple(config.cameras)
        self.capacity = config.replay_capacity
        self.nstep, self.discount, self.frame_stack = config.nstep, config.discount, config.frame_stack
        size, cap = config.image_size, config.replay_capacity
        # np.zeros maps untouched pages lazily: a large capacity costs memory only as it fills
        self.frames = {name: np.zeros((cap, 3, size, size), np.uint8) for name in self.cameras}
        self.proprio = np.zeros((cap, config.proprio_dim), np.float32)
        self.action = np.zeros((cap, config.action_dim), np.float32)
        self.reward = np.zeros(cap, np.float32)
        self.slot_episode = np.full(cap, -1, np.int64)
        self.slot_t = np.zeros(cap, np.int64)
        self.slot_next = np.zeros(cap, np.int64)      # slot of the episode's next frame (-1: none yet)
        self.slot_prev = np.zeros(cap, np.int64)      # slot of its previous frame (the first frame: itself)
        self.has_next = np.zeros(cap, bool)          # slot starts a sampleable transition
        self._ep_start = np.zeros(16, np.int64)        # per episode id: first slot
        self._ep_last = np.zeros(16, np.int64)         # last slot written
        self._ep_length = np.zeros(16, np.int64)       # transitions so far
        self._ep_terminal = np.zeros(16, bool)         # closed with a true terminal state
        self._ep_alive = np.zeros(16, bool)            # episode still in the ring
        self._ep_closed = np.zeros(16, bool)           # closed (persisted when there is a directory)
        self._open: dict = {}                          # stream -> episode being written
        self._next_id = 0
        self._cursor = 0                               # next slot to write
        self._written = 0                              # slots ever written (capped use: min(written, cap))
        self.num_transitions = 0
        self.num_episodes = 0                          # completed episodes in memory
        self.rng = np.random.default_rng(seed)
        self.lock = threading.Lock()                   # a prefetch thread may sample while the loop adds
        self.store = EpisodeStore(directory, compress) if directory else None
        self.loaded_episodes = 0
        if self.store is not None:
            self._load(episode_limit, {int(e) for e in kept_episodes})

    def __len__(self) -> int:
        return self.num_transitions

    @property
    def closed_episode_limit(self) -> int:
        """Every episode with a lower id is closed, the oldest one being written is not: what a checkpoint records
        (with `closed_above_limit`)."""
        with self.lock:
            return min(self._open.values()) if self._open else self._next_id

    @property
    def closed_above_limit(self) -> list:
        """Ids of episodes closed while an older one was still being written (several streams): closed although
        at or above `closed_episode_limit`. Empty with one stream."""
        with self.lock:
            limit = min(self._open.values()) if self._open else self._next_id
            return [int(e) for e in np.flatnonzero(self._ep_closed[limit:self._next_id]) + limit]

    @property
    def open_streams(self) -> list:
        """Streams with an episode being written."""
        with self.lock:
            return sorted(self._open)

    # -- writing
    def add(self, obs: dict, action: np.ndarray, reward: float, next_obs: dict,
            terminated: bool = False, truncated: bool = False, stream: int = 0) -> None:
        """Append one transition (single frames, not stacks: {camera: (3,H,W) uint8, 'proprio': (P,)}) to the
        episode open on `stream` (one per env). The first add of an episode stores `obs` too; a
        terminated/truncated transition closes the episode."""
        action = np.asarray(action, np.float32).reshape(-1)
        if action.shape != (self.config.action_dim,) or not np.all(np.isfinite(action)):
            raise ValueError(f"replay: action must be {self.config.action_dim} finite values, got {action}")
        if not np.isfinite(reward):
            raise ValueError(f"replay: reward must be finite, got {reward}")
        with self.lock:
            episode = self._open.get(stream)
            if episode is None:
                episode = self._begin_episode(obs, self._next_id, stream)
            elif not np.array_equal(self.proprio[self._ep_last[episode]], np.asarray(obs[PROPRIO], np.float32)):
                raise ValueError("replay: transition does not continue the open episode (its obs is not the "
                                 "previous next_obs); close the episode first")
            self._append(episode, action, reward, next_obs)
        if terminated or truncated:
            self.close_episode(terminated=terminated, truncated=truncated, stream=stream)

    def close_episode(self, terminated: bool = False, truncated: bool = True, stream: int = 0) -> None:
        """End the episode open on `stream` (terminal: no bootstrap at its end) and persist it; no-op when none
        is open."""
        with self.lock:
            episode = self._open.get(stream)
            if episode is None:
                return
            length = int(self._ep_length[episode])
            self._finish(episode, terminated, stream)
            arrays = self._episode_arrays(episode) if self.store is not None and length > 0 else None
        if arrays is not None:
            self.store.write(episode, arrays, {"length": length, "terminal": bool(terminated),
                                               "truncated": bool(truncated)})

    def drop_episode(self, stream: int = 0) -> int:
        """Forget the episode open on `stream` without persisting it (its env failed); returns its transitions."""
        with self.lock:
            episode = self._open.pop(stream, None)
            if episode is None:
                return 0
            length = int(self._ep_length[episode])
            self._forget(episode)
            return length

    def _begin_episode(self, obs: dict, episode: int, stream) -> int:
        self._next_id = max(self._next_id, episode + 1)
        self._grow(episode)
        self._ep_length[episode] = 0
        self._ep_terminal[episode] = False
        self._ep_closed[episode] = False
        self._ep_alive[episode] = True
        self._open[stream] = episode
        slot = self._write_frame(obs, episode, 0)
        self._ep_start[episode] = self._ep_last[episode] = slot
        self.slot_prev[slot] = slot
        return episode

    def _append(self, episode: int, action: np.ndarray, reward: float, next_obs: dict) -> None:
        previous = int(self._ep_last[episode])
        self.action[previous] = action
        self.reward[previous] = reward
        slot = self._write_frame(next_obs, episode, int(self._ep_length[episode]) + 1)
        self.slot_prev[slot] = previous
        self.slot_next[previous] = slot
        self._ep_last[episode] = slot
        self._ep_length[episode] += 1
        self.has_next[previous] = True             # set last: a concurrent sampler sees complete data
        self.num_transitions += 1

    def _finish(self, episode: int, terminated: bool, stream) -> None:
        del self._open[stream]
        self._ep_terminal[episode] = bool(terminated)
        if self._ep_length[episode] > 0:
            self._ep_closed[episode] = True
            self.num_episodes += 1
            return
        # a lone first frame holds no transition: give its slot back (reused when it was the last one written)
        self._ep_alive[episode] = False
        slot = int(self._ep_start[episode])
        self.slot_episode[slot] = -1
        if slot == (self._cursor - 1) % self.capacity:
            self._cursor = slot
            self._written -= 1

    def _write_frame(self, frame: dict, episode: int, t: int) -> int:
        slot = self._cursor
        owner = self.slot_episode[slot]
        if owner >= 0 and self._ep_alive[owner]:
            if owner == episode:
                raise ValueError(f"replay: an episode longer than replay_capacity={self.capacity} frames; "
                                 "raise AgentConfig.replay_capacity")
            if owner in self._open.values():
                raise ValueError(f"replay: replay_capacity={self.capacity} frames cannot hold the "
                                 f"{len(self._open)} episodes being written at once; raise "
                                 "AgentConfig.replay_capacity")
            self._evict(int(owner))
        for name in self.cameras:
            self.frames[name][slot] = frame[name]
        self.proprio[slot] = frame[PROPRIO]
        self.slot_episode[slot] = episode
        self.slot_t[slot] = t
        self.slot_next[slot] = -1
        self.has_next[slot] = False
        self._cursor = (slot + 1) % self.capacity
        self._written += 1
        return slot

    def _evict(self, episode: int) -> None:
        """Forget a closed episode (the ring is about to overwrite one of its frames)."""
        self._forget(episode)
        self.num_episodes -= 1

    def _forget(self, episode: int) -> None:
        self.has_next[self._episode_slots(episode)] = False
        self.num_transitions -= int(self._ep_length[episode])
        self._ep_alive[episode] = False

    def _episode_slots(self, episode: int) -> np.ndarray:
        """The slots of o_0..o_L of an episode in the ring, following its links."""
        slots = np.empty(int(self._ep_length[episode]) + 1, np.int64)
        slot = int(self._ep_start[episode])
        for t in range(len(slots)):
            slots[t] = slot
            slot = int(self.slot_next[slot])
        return slots

    def _grow(self, episode: int) -> None:
        if episode < len(self._ep_start):
            return
        size = max(2 * len(self._ep_start), episode + 1)
        for name in ("_ep_start", "_ep_last", "_ep_length", "_ep_terminal", "_ep_alive", "_ep_closed"):
            old = getattr(self, name)
            new = np.zeros(size, old.dtype)
            new[:len(old)] = old
            setattr(self, name, new)

    # -- sampling
    def sample(self, batch_size: int, out: Optional[Batch] = None) -> Batch:
        """Uniformly sample `batch_size` n-step transitions (into `out`'s arrays when given, e.g. pinned memory)."""
        with self.lock:
            targets = self._targets(self._draw(batch_size))
            return self._fill(targets, out if out is not None else self._empty_batch(batch_size))

    def sample_indices(self, batch_size: int) -> dict:
        """Like `sample` but without pixels: proprio/action/reward/discount arrays plus `obs_index` and
        `next_index` (B, frame_stack) ring slots of the stacked frames, for gathering from a device copy."""
        with self.lock:
            return self._targets(self._draw(batch_size))

    def batch_at(self, episode_ids, steps) -> Batch:
        """The n-step transitions at (episode id, step) pairs -- deterministic access for tests and tools."""
        episode_ids, steps = np.asarray(episode_ids, np.int64), np.asarray(steps, np.int64)
        with self.lock:
            for episode, t in zip(episode_ids, steps):
                if not (0 <= episode < len(self._ep_alive) and self._ep_alive[episode]
                        and 0 <= t < self._ep_length[episode]):
                    raise ValueError(f"replay holds no transition at episode {episode}, step {t}")
            slots = self._ep_start[episode_ids]
            for t in range(int(steps.max(initial=0))):
                slots = np.where(t < steps, self.slot_next[slots], slots)
            return self._fill(self._targets(slots), self._empty_batch(len(slots)))

    @property
    def frames_written(self) -> int:
        """Frames ever written to the ring (slot of frame number i is i % capacity); for device mirrors."""
        return self._written

    def _draw(self, batch_size: int) -> np.ndarray:
        if self.num_transitions == 0:
            raise ValueError("replay is empty: add transitions (or wait for num_seed_steps) before sampling")
        filled = min(self._written, self.capacity)
        chosen = np.empty(0, np.int64)
        while chosen.size < batch_size:   # rejection: slots without a next frame (episode ends, evicted)
            candidates = self.rng.integers(0, filled, size=2 * batch_size + 16)
            chosen = np.concatenate([chosen, candidates[self.has_next[candidates]]])
        return chosen[:batch_size]

    def _targets(self, slots: np.ndarray) -> dict:
        """n-step reward/discount, next slots and frame-stack slot indices for transitions starting at `slots`."""
        n = self.nstep
        episode = self.slot_episode[slots]
        t = self.slot_t[slots]
        length = self._ep_length[episode]
        k = np.minimum(n, length - t)                                       # >= 1 for sampleable slots
        offsets = np.arange(n)
        valid = offsets[None, :] < k[:, None]
        chain = np.empty((len(slots), n + 1), np.int64)                    # slots of o_t .. o_{t+k}, then held
        chain[:, 0] = slots
        for i in range(n):
            chain[:, i + 1] = np.where(i < k, self.slot_next[chain[:, i]], chain[:, i])
        rewards = self.reward[chain[:, :n]] * valid
        reward = (rewards * (self.discount ** offsets)).sum(axis=1, dtype=np.float64)
        ends_terminal = self._ep_terminal[episode] & (t + k == length)
        discount = np.where(ends_terminal, 0.0, self.discount ** k)
        next_slots = chain[:, n]
        return {"proprio": self.proprio[slots], "next_proprio": self.proprio[next_slots],
                "action": self.action[slots], "reward": reward.astype(np.float32)[:, None],
                "discount": discount.astype(np.float32)[:, None],
                "obs_index": self._stack_index(slots), "next_index": self._stack_index(next_slots)}

    def _stack_index(self, slots: np.ndarray) -> np.ndarray:
        """(B, S) slots of frames o_{t-S+1..t}, oldest first, repeating o_0 before the episode start (the first
        frame links to itself)."""
        index = np.empty((len(slots), self.frame_stack), np.int64)
        index[:, -1] = slots
        for j in range(self.frame_stack - 2, -1, -1):
            index[:, j] = self.slot_prev[index[:, j + 1]]
        return index

    def _fill(self, targets: dict, batch: Batch) -> Batch:
        size = self.config.image_size
        for name in self.cameras:
            for index, out in ((targets["obs_index"], batch.obs[name]), (targets["next_index"], batch.next_obs[name])):
                # mode="clip": indices are valid, and numpy buffers `out` for the default mode="raise"
                np.take(self.frames[name], index.reshape(-1), axis=0, out=out.reshape(-1, 3, size, size),
                        mode="clip")
        for key in ("proprio", "next_proprio", "action", "reward", "discount"):
            getattr(batch, key)[...] = targets[key]
        return batch

    def _empty_batch(self, batch_size: int) -> Batch:
        shape = (batch_size, 3 * self.frame_stack, self.config.image_size, self.config.image_size)
        images = lambda: {name: np.empty(shape, np.uint8) for name in self.cameras}  # noqa: E731
        return Batch(obs=images(), next_obs=images(),
                     proprio=np.empty((batch_size, self.config.proprio_dim), np.float32),
                     next_proprio=np.empty((batch_size, self.config.proprio_dim), np.float32),
                     action=np.empty((batch_size, self.config.action_dim), np.float32),
                     reward=np.empty((batch_size, 1), np.float32), discount=np.empty((batch_size, 1), np.float32))

    # -- persistence
    def _episode_arrays(self, episode: int) -> dict:
        slots = self._episode_slots(episode)
        arrays = {f"frames_{name}": self.frames[name][slots] for name in self.cameras}
        arrays.update(proprio=self.proprio[slots], action=self.action[slots[:-1]], reward=self.reward[slots[:-1]])
        return arrays

    def _load(self, episode_limit: Optional[int], kept: set) -> None:
        """Refill memory with the newest completed episodes on disk that fit the capacity."""
        records = self.store.entries()
        if episode_limit is not None:
            is_later = [int(r["episode"]) >= episode_limit and int(r["episode"]) not in kept for r in records]
            later = [r for r, flag in zip(records, is_later) if flag]
            if later:
                records = [r for r, flag in zip(records, is_later) if not flag]
                self.store.forget(later, kept=records)
                LOG.warning("replay: dropped %d episode(s) written after the checkpoint (ids %s) from %s",
                            len(later), [int(r["episode"]) for r in later], self.store.directory)
            self._next_id = max(self._next_id, episode_limit)   # ids continue as in the uninterrupted run
        chosen, frames = [], 0
        for record in reversed(records):
            need = int(record.get("length", 0)) + 1
            if frames + need > self.capacity:
                break
            chosen.append(record)
            frames += need
        loaded = 0
        for record in reversed(chosen):
            arrays = self.store.read(record)
            if arrays is None or not self._insert_loaded(record, arrays):
                continue
            loaded += 1
        if records:
            self._next_id = max(self._next_id, max(int(r["episode"]) for r in records) + 1)
        self.loaded_episodes = loaded
        if records:
            LOG.info("replay: loaded %d of %d stored episodes (%d transitions) from %s; skipped %s",
                     loaded, len(records), self.num_transitions, self.store.directory, self.store.skipped)

    def _insert_loaded(self, record: dict, arrays: dict) -> bool:
        size = self.config.image_size
        try:
            length = int(record["length"])
            frames = {name: arrays[f"frames_{name}"] for name in self.cameras}
            proprio, action, reward = arrays["proprio"], arrays["action"], arrays["reward"]
            for name, image in frames.items():
                if image.shape != (length + 1, 3, size, size) or image.dtype != np.uint8:
                    raise ValueError(f"camera {name} frames {image.shape} {image.dtype}, expected "
                                     f"({length + 1}, 3, {size}, {size}) uint8")
            if action.shape != (length, self.config.action_dim) or reward.shape != (length,) or \
                    proprio.shape != (length + 1, self.config.proprio_dim) or length < 1:
                raise ValueError("action/reward/proprio shapes do not match the episode length and config")
        except (KeyError, ValueError) as error:
            self.store.skipped["unreadable_files"] += 1
            LOG.warning("replay: episode file %s does not match this agent config (%s); skipped", record["file"], error)
            return False
        frame = lambda t: {**{n: frames[n][t] for n in self.cameras}, PROPRIO: proprio[t]}  # noqa: E731
        with self.lock:
            episode = self._begin_episode(frame(0), int(record["episode"]), _LOADING)
            for t in range(length):
                self._append(episode, action[t], float(reward[t]), frame(t + 1))
            self._finish(episode, bool(record.get("terminal", False)), _LOADING)
        return True
