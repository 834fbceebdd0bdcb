"""In-process trainer: env -> agent -> rewarder -> progress shaper -> replay -> updates, no ROS.

The same agent, replay and reward code as the learner node, in one loop: reward queries every `query_every` env
steps (the reward node's ~1 Hz at 10 Hz control) and at each episode end, uniform random actions for the first
`num_expl_steps`, `updates_per_trigger` updates every `update_every_steps` after `num_seed_steps`, an episode CSV
(length, perceived return, final perceived progress, true success, steps/s), periodic atomic checkpoints with
resume, and a learning-curve PNG.

    python -m sole_r1_rl.trainer --suite metaworld --task reach-v3 --rewarder oracle --steps 2000 \\
        --out runs/reach --set batch_size=64
"""
from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch

from sole_r1_model.rewarder import ProgressQuery, Rewarder
from sole_r1_rl.agent import DrQV2Agent
from sole_r1_rl.checkpoint import CheckpointError, TrainingCounters, read_checkpoint, save_checkpoint
from sole_r1_rl.config import AgentConfig
from sole_r1_rl.cli import parse_args
from sole_r1_rl.curves import EpisodeLog, plot_learning_curve
from sole_r1_rl.loader import BatchLoader
from sole_r1_rl.obs import FrameStacker, observation_frames
from sole_r1_rl.replay import ReplayBuffer
from sole_r1_rl.reward import ProgressRewardShaper
from sole_r1_rl.run_config import TrainerConfig

if TYPE_CHECKING:  # sole_r1_sim imports MuJoCo: only needed when the trainer builds its own env
    from sole_r1_sim.contract import ManipulationEnv, Observation

LOG = logging.getLogger("sole_r1.trainer")


class Trainer:
    """Owns env, rewarder, agent, replay and shaper for one run directory (see module docstring)."""

    def __init__(self, config: TrainerConfig, agent_config: AgentConfig,
                 env: Optional["ManipulationEnv"] = None, rewarder: Optional[Rewarder] = None) -> None:
        self.config, self.agent_config = config, agent_config
        os.makedirs(config.out, exist_ok=True)
        _seed_everything(config.seed)
        self.agent = DrQV2Agent(agent_config)
        self.checkpoint_path = os.path.join(config.out, "checkpoint.pt")
        # Validate a resume before anything in the run directory changes: a refused one leaves it as it was.
        checkpoint = None
        if config.resume and os.path.exists(self.checkpoint_path):
            checkpoint = read_checkpoint(self.checkpoint_path)
            checkpoint.restore_agent(self.agent)
        render = config.render_size or agent_config.image_size
        if env is None:
            from sole_r1_sim import make_env
            env = make_env(config.suite, config.task, image_size=(render, render), seed=config.seed)
        if rewarder is None:
            from sole_r1_model.rewarders import make_rewarder
            rewarder = make_rewarder(config.rewarder)
        self.env, self.rewarder = env, rewarder
        episode_limit = checkpoint.extra.get("replay_episode_limit") if checkpoint is not None else None
        self.replay = ReplayBuffer(agent_config, os.path.join(config.out, "replay"), seed=config.seed,
                                   compress=config.compress_replay, episode_limit=episode_limit)
        self.shaper = ProgressRewardShaper(config.reward)
        self.stacker = FrameStacker(agent_config.cameras, agent_config.frame_stack)
        self.episodes = EpisodeLog(os.path.join(config.out, "episodes.csv"))
        self.counters = TrainingCounters()
        self.counts = {"rewarder_errors": 0, "act_errors": 0}
        self._loader: Optional[BatchLoader] = None
        if checkpoint is not None:
            checkpoint.restore_rng({"replay": self.replay.rng})
            self.counters = checkpoint.counters
            # The run continues exactly from the checkpoint: episodes logged after it (a kill before the next
            # checkpoint) are run again, so their rows would be duplicates (the replay drops its copies itself).
            dropped = self.episodes.drop_after(self.counters.episodes)
            if dropped:
                LOG.warning("resume: dropped %d row(s) of episodes.csv written after the checkpoint (episode %d)",
                            dropped, self.counters.episodes)
            LOG.info("resumed from %s at %s with %d transitions in replay", self.checkpoint_path, self.counters,
                     len(self.replay))
        agent_config.to_yaml(os.path.join(config.out, "agent.yaml"))

    # -- the loop
    def run(self) -> TrainingCounters:
        """Train until `config.steps` env steps; returns the final counters."""
        cfg, agent_cfg = self.config, self.agent_config
        bar = _progress_bar(cfg, self.counters.env_steps)
        last_checkpoint = self.counters.env_steps
        started = time.time()
        try:
            self._begin_episode()
            while self.counters.env_steps < cfg.steps:
                step = self.counters.env_steps
                action = self._act(step)
                observation, _, terminated, truncated, _ = self.env.step(action)
                self._episode_step += 1
                if cfg.max_episode_steps and self._episode_step >= cfg.max_episode_steps:
                    truncated = True
                done = bool(terminated or truncated)
                frames = self._frames(observation)
                self.shaper.add_step(dict(obs=self._last_frames, action=action, next_obs=frames,
                                          terminated=bool(terminated), truncated=bool(truncated) and not terminated))
                if self._episode_step % cfg.query_every == 0 or done:
                    self._query(observation)
                self._store(self.shaper.ready())
                self._last_frames, self._stacked = frames, self.stacker.push(frames)
                self.counters.env_steps += 1
                self._maybe_update(step)
                if bar is not None:
                    bar.update(1)
                if done:
                    self._end_episode(bool(terminated), time.time() - started)
                    if bar is not None:
                        bar.set_postfix(episodes=self.counters.episodes, updates=self.counters.updates)
                    if cfg.time_limit_s and time.time() - started >= cfg.time_limit_s:
                        LOG.info("time limit of %.0f s reached at %d env steps: stopping", cfg.time_limit_s,
                                 self.counters.env_steps)
                        break
                    if self.counters.env_steps - last_checkpoint >= cfg.checkpoint_every:
                        self.save()
                        last_checkpoint = self.counters.env_steps
                    self._begin_episode()
        finally:
            if bar is not None:
                bar.close()
            if self._loader is not None:
                self._loader.close()
        self.save()
        return self.counters

    def save(self) -> None:
        """Checkpoint (atomic) and refresh the learning curve."""
        save_checkpoint(self.checkpoint_path, self.agent, self.counters, {"replay": self.replay.rng},
                        extra={"trainer": dataclasses.asdict(self.config),
                               "replay_episode_limit": self.replay.closed_episode_limit})
        title = f"{self.config.suite}/{self.config.task} -- rewarder {self.rewarder.name}"
        plot_learning_curve(self.episodes, os.path.join(self.config.out, "learning_curve.png"), title)

    def close(self) -> None:
        """Close env and rewarder."""
        self.env.close()
        self.rewarder.close()

    # -- pieces
    def _begin_episode(self) -> None:
        observation, _ = self.env.reset(seed=self.config.seed + self.counters.episodes)
        self.shaper.start_episode()
        self._last_frames = self._frames(observation)
        self._stacked = self.stacker.reset(self._last_frames)
        self._first_images = self._previous_images = _images(observation)
        self._previous_progress, self._query_index, self._episode_step = 0.0, 0, 0
        self._episode_return, self._episode_started = 0.0, time.time()
        self._valid, self._invalid = 0, 0

    def _frames(self, observation: "Observation") -> dict:
        size = self.agent_config.image_size
        if observation.shoulder.shape[0] != size:
            observation = _resized(observation, size)
        return observation_frames(observation, self.agent_config.cameras, size)

    def _act(self, step: int) -> np.ndarray:
        try:
            action = self.agent.act(self._stacked, step, eval_mode=False)
            if np.all(np.isfinite(action)):
                return action
            raise ValueError(f"non-finite action {action}")
        except (ValueError, RuntimeError) as error:
            self.counts["act_errors"] += 1
            LOG.warning("act failed at step %d (%s); holding still (zero action), %d so far", step, error,
                        self.counts["act_errors"])
            return np.zeros(self.agent_config.action_dim, np.float32)

    def _query(self, observation: "Observation") -> None:
        """Score the current frame against the episode's first and previously scored frames."""
        self._query_index += 1
        current = _images(observation)
        privileged = self.env.privileged_progress() if self.rewarder.privileged else None
        try:
            query = ProgressQuery(task=self.env.instruction, external=(self._first_images[0],
                                  self._previous_images[0], current[0]),
                                  wrist=(self._first_images[1], self._previous_images[1], current[1]),
                                  previous_progress=self._previous_progress, query_index=self._query_index,
                                  stamp=float(self._episode_step), privileged_progress=privileged)
            result = self.rewarder.score([query])[0]
            valid, progress = result.valid, result.progress
        except Exception as error:  # noqa: BLE001 -- a rewarder failure must not stop the control loop
            self.counts["rewarder_errors"] += 1
            LOG.warning("rewarder %s failed (%s); estimate marked invalid, %d failures so far",
                        self.rewarder.name, error, self.counts["rewarder_errors"])
            valid, progress = False, self._previous_progress
        self.shaper.add_estimate(self._episode_step, progress, valid)
        self._previous_images = current
        if valid:
            self._previous_progress = float(progress)
            self._valid += 1
        else:
            self._invalid += 1

    def _store(self, released: list) -> None:
        for payload, reward in released:
            self.replay.add(reward=reward, **payload)
            self._episode_return += reward

    def _maybe_update(self, step: int) -> None:
        cfg = self.agent_config
        if step < cfg.num_seed_steps or step % cfg.update_every_steps != 0 or len(self.replay) == 0:
            return
        if self._loader is None:
            self._loader = BatchLoader(self.replay, cfg.batch_size, cfg.device)
        for _ in range(cfg.updates_per_trigger):
            metrics = self.agent.update(self._loader.next(), step)
            self.counters.updates += 1
            if self.counters.updates % self.config.log_every == 0:  # float() syncs the device: only when logging
                LOG.info("update %d (env step %d): %s", self.counters.updates, step,
                         {k: round(float(v), 4) for k, v in metrics.items()})

    def _end_episode(self, terminated: bool, wall: float) -> None:
        dropped_before = self.shaper.stats["dropped_steps"]
        self._store(self.shaper.end_episode())
        self.replay.close_episode(terminated=terminated, truncated=not terminated)
        self.counters.episodes += 1
        elapsed = max(time.time() - self._episode_started, 1e-9)
        self.episodes.write(dict(
            episode=self.counters.episodes, env_steps=self.counters.env_steps, length=self._episode_step,
            **{"return": self._episode_return}, final_progress=self._previous_progress if self._valid else None,
            true_success=bool(self.env.true_success()), valid_estimates=self._valid,
            invalid_estimates=self._invalid, dropped_steps=self.shaper.stats["dropped_steps"] - dropped_before,
            steps_per_s=self._episode_step / elapsed, updates=self.counters.updates, wall_s=wall))


def _images(observation: "Observation") -> tuple:
    return observation.shoulder, observation.wrist


def _resized(observation: "Observation", size: int) -> "Observation":
    import cv2

    from sole_r1_sim.contract import Observation

    resize = lambda image: cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)  # noqa: E731
    return Observation(shoulder=resize(observation.shoulder), wrist=resize(observation.wrist),
                       proprio=observation.proprio)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _progress_bar(config: TrainerConfig, initial: int):
    if not config.progress_bar:
        return None
    from tqdm import tqdm

    return tqdm(total=config.steps, initial=initial, unit="step", dynamic_ncols=True, desc="train")


def main(argv: Optional[list] = None) -> int:
    """CLI entry point (see module docstring)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    trainer_config, agent_config, threads = parse_args(argv)
    if threads:
        torch.set_num_threads(threads)
    try:
        trainer = Trainer(trainer_config, agent_config)
    except CheckpointError as error:
        raise SystemExit(f"error: {error}") from error
    try:
        counters = trainer.run()
    finally:
        trainer.close()
    print(f"done: {counters}; episodes in {trainer_config.out}/episodes.csv, "
          f"curve in {trainer_config.out}/learning_curve.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
