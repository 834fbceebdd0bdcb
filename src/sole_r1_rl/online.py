"""OnlineLearner: the learner node's brain without ROS -- SERL's actor/learner split in one process.

The actor side (`act`, `observe`, `add_estimate`, episode begin/end) runs in the caller's thread at the control
rate and never waits for learning: it acts with its own copy of the policy (encoders + actor), refreshed from the
learner every `actor_refresh_updates` updates. The learning side runs in a background thread, keeping the number of
updates at the configured ratio to env steps (DrQ-v2: `updates_per_trigger` updates every `update_every_steps`
after `num_seed_steps`). The same agent, replay, frame stacker and progress-reward shaper as the in-process trainer.
"""
from __future__ import annotations

import copy
import logging
import os
import threading
import time
from typing import Optional

import numpy as np
import torch

from sole_r1_rl.agent import DrQV2Agent
from sole_r1_rl.checkpoint import TrainingCounters, load_checkpoint, save_checkpoint
from sole_r1_rl.config import AgentConfig
from sole_r1_rl.loader import BatchLoader
from sole_r1_rl.obs import FrameStacker
from sole_r1_rl.replay import ReplayBuffer
from sole_r1_rl.reward import ProgressRewardShaper, RewardConfig

LOG = logging.getLogger("sole_r1.online")


class OnlineLearner:
    """Actor + background learner sharing one replay; persistent in `run_dir` (replay/, checkpoint.pt)."""

    def __init__(self, agent_config: AgentConfig, run_dir: str, reward: Optional[RewardConfig] = None,
                 actor_refresh_updates: int = 20, resume: bool = True, init_policy: str = "") -> None:
        os.makedirs(run_dir, exist_ok=True)
        self.config = agent_config
        self.run_dir = run_dir
        self.agent = DrQV2Agent(agent_config)
        self.replay = ReplayBuffer(agent_config, os.path.join(run_dir, "replay"))
        self.shaper = ProgressRewardShaper(reward or RewardConfig())
        self.stacker = FrameStacker(agent_config.cameras, agent_config.frame_stack)
        self.counters = TrainingCounters()
        self.checkpoint_path = os.path.join(run_dir, "checkpoint.pt")
        resumed = resume and os.path.exists(self.checkpoint_path)
        if resumed:
            self.counters, _ = load_checkpoint(self.checkpoint_path, self.agent, {"replay": self.replay.rng})
            LOG.info("resumed from %s: %s, %d transitions in replay", self.checkpoint_path, self.counters,
                     len(self.replay))
        self.started_from: Optional[dict] = None   # policy.json of the policy a new run started from
        if init_policy and not resumed:   # a resumed run has its own weights
            from sole_r1_rl.policy import load_policy

            self.started_from = {"policy": str(init_policy), **load_policy(self.agent, init_policy)}
            LOG.info("started from policy %s", self.started_from)
        agent_config.to_yaml(os.path.join(run_dir, "agent.yaml"))   # after the resume: a refused one changes nothing
        self.actor_refresh_updates = actor_refresh_updates
        self._policy_lock = threading.Lock()   # guards the learner's weights during updates and checkpoints
        self._snapshot = self._copy_policy()   # the newest acting copy, replaced (never mutated) by the learner
        self._actor = self._snapshot
        self._stacked: Optional[dict] = None
        self._last_frames: Optional[dict] = None
        self.episode_step = 0
        self.episode_return = 0.0
        self.in_episode = False
        self.update_times: list = []
        self.last_metrics: dict = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._loader: Optional[BatchLoader] = None

    # ---- actor side ----------------------------------------------------------------------------------------
    def _copy_policy(self) -> DrQV2Agent:
        """An acting copy (encoders + actor) whose weights never change under the actor's feet.

        Made by the learner thread between two updates, so the actor never waits for a (slow, on CPU) update."""
        actor = copy.copy(self.agent)
        actor.encoder = copy.deepcopy(self.agent.encoder).eval()
        actor.actor = copy.deepcopy(self.agent.actor).eval()
        return actor

    def begin_episode(self, frames: dict) -> None:
        """Start an episode with its first observation (a previous unfinished episode is discarded)."""
        self.shaper.start_episode()
        self._last_frames = frames
        self._stacked = self.stacker.reset(frames)
        self.episode_step, self.episode_return, self.in_episode = 0, 0.0, True

    def act(self) -> np.ndarray:
        """Action in [-1, 1] for the newest observation (random during exploration); zeros if the policy fails."""
        self._actor = self._snapshot  # a reference swap: the learner publishes fresh snapshots
        try:
            action = self._actor.act(self._stacked, self.counters.env_steps, eval_mode=False)
            if np.all(np.isfinite(action)):
                return np.clip(action, -1.0, 1.0)
            raise ValueError(f"non-finite action {action}")
        except (ValueError, RuntimeError) as error:
            LOG.warning("act failed (%s): zero action", error)
            return np.zeros(self.config.action_dim, np.float32)

    def observe(self, action: np.ndarray, frames: dict) -> int:
        """Record the transition (previous obs, action, this obs); returns this observation's frame index."""
        self.shaper.add_step(dict(obs=self._last_frames, action=np.asarray(action, np.float32), next_obs=frames,
                                  terminated=False, truncated=False))
        self._last_frames, self._stacked = frames, self.stacker.push(frames)
        self.episode_step += 1
        self.counters.env_steps += 1
        self._store(self.shaper.ready())
        return self.episode_step

    def add_estimate(self, frame_index: int, progress: float, valid: bool) -> None:
        """A progress estimate of frame `frame_index` of the current episode (invalid ones are never rewards)."""
        if self.in_episode:
            self.shaper.add_estimate(frame_index, progress, valid)
            self._store(self.shaper.ready())

    def end_episode(self, terminated: bool) -> None:
        """Close the episode: flush its rewarded steps into the replay (truncated unless `terminated`)."""
        if not self.in_episode:
            return
        released = self.shaper.end_episode()
        if released:  # mark the last stored step as the episode's end
            payload, reward = released[-1]
            payload.update(terminated=terminated, truncated=not terminated)
        self._store(released)
        self.replay.close_episode(terminated=terminated, truncated=not terminated)
        self.counters.episodes += 1
        self.in_episode = False

    def abort_episode(self) -> None:
        """Drop the episode in progress without storing anything more (e-stop: no transitions while stopped)."""
        if self.in_episode:
            self.shaper.start_episode()
            self.replay.close_episode(terminated=False, truncated=True)
            self.in_episode = False

    def _store(self, released: list) -> None:
        for payload, reward in released:
            self.replay.add(reward=reward, **payload)
            self.episode_return += reward

    # ---- learner side --------------------------------------------------------------------------------------
    def target_updates(self) -> int:
        """How many updates the configured ratio asks for at the current env step."""
        cfg = self.config
        steps = self.counters.env_steps - cfg.num_seed_steps
        return 0 if steps < 0 else (steps // cfg.update_every_steps + 1) * cfg.updates_per_trigger

    def update_once(self) -> dict:
        """One agent update from a replay batch (the learner thread's unit of work)."""
        if self._loader is None:
            self._loader = BatchLoader(self.replay, self.config.batch_size, self.config.device)
        batch = self._loader.next()
        started = time.perf_counter()
        with self._policy_lock:
            metrics = self.agent.update(batch, self.counters.env_steps)
        self.update_times.append(time.perf_counter() - started)
        del self.update_times[:-200]
        self.counters.updates += 1
        self.last_metrics = metrics
        if self.counters.updates % self.actor_refresh_updates == 0:
            self._snapshot = self._copy_policy()
        return metrics

    def _learn(self) -> None:
        while not self._stop.is_set():
            if len(self.replay) < self.config.batch_size or self.counters.updates >= self.target_updates():
                self._stop.wait(0.01)
                continue
            try:
                self.update_once()
            except Exception:  # noqa: BLE001 -- log and keep the actor alive; the node reports it
                LOG.exception("learner update failed")
                self._stop.wait(1.0)

    def start(self) -> None:
        """Start the background learning thread."""
        if self._thread is None:
            torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # leave a core to the actor and ROS
            self._thread = threading.Thread(target=self._learn, name="learner", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the learning thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None
        if self._loader is not None:
            self._loader.close()
            self._loader = None

    def save(self) -> None:
        """Atomic checkpoint of agent, optimisers, counters and RNG (the replay is already on disk)."""
        with self._policy_lock:
            save_checkpoint(self.checkpoint_path, self.agent, self.counters, {"replay": self.replay.rng})
