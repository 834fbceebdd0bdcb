"""In-process trainer: envs -> agent -> rewarder -> progress shaper -> replay -> updates, no ROS.

The same agent, replay and reward code as the learner node, in one loop: reward queries every `query_every` env
steps (the reward node's ~1 Hz at 10 Hz control) and at each episode end, uniform random actions for the first
`num_expl_steps`, `updates_per_trigger` updates every `update_every_steps` after `num_seed_steps`, an episode CSV
(length, perceived return, final perceived progress, true success, steps/s), periodic atomic checkpoints with
resume, and a learning-curve PNG.

With `num_envs` N > 1 the envs step in parallel worker processes (env_workers.py) and the learner batches across
them: one actor forward for the N observations, one rewarder call for every env whose query is due, one replay
stream per env; `update_every_steps` counts the env steps of all envs, and the updates owed by one step run while
the workers compute the next (the policy lags one vector step, as SERL's actors do). Each env keeps its own episode
state (`EnvEpisode`). Checkpoints are taken at an episode end without waiting for the other envs: their unfinished
episodes continue in this run, and a resume from that checkpoint drops them and runs them again with the same
seeds, as a kill drops the unfinished episode with one env. `time_limit_s` instead lets every env finish its
episode (an env that ends one after the budget stops) and checkpoints once all have stopped.

    python -m sole_r1_rl.trainer --suite metaworld --task reach-v3 --rewarder oracle --steps 2000 \\
        --out runs/reach --set batch_size=64 --num-envs 4
"""
from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np
import torch

from sole_r1_model.rewarder import Rewarder
from sole_r1_rl.agent import DrQV2Agent
from sole_r1_rl.checkpoint import CheckpointError, TrainingCounters, read_checkpoint, save_checkpoint
from sole_r1_rl.config import AgentConfig
from sole_r1_rl.cli import parse_args
from sole_r1_rl.curves import EpisodeLog, plot_learning_curve
from sole_r1_rl.env_episode import EnvEpisode
from sole_r1_rl.env_workers import EnvFailure, EnvFailuresExceeded, EnvWorkers, LocalEnvs, SuiteEnvFactory
from sole_r1_rl.loader import BatchLoader
from sole_r1_rl.obs import observation_frames
from sole_r1_rl.replay import ReplayBuffer
from sole_r1_rl.run_config import TrainerConfig

if TYPE_CHECKING:  # sole_r1_sim imports MuJoCo: only needed when the trainer builds its own env
    from sole_r1_sim.contract import ManipulationEnv, Observation

LOG = logging.getLogger("sole_r1.trainer")


class Trainer:
    """Owns envs, rewarder, agent, replay and shaper(s) for one run directory (see module docstring).

    With one env, `env` (built from the config when not given) runs in this process; with `num_envs` > 1 each
    worker process calls `env_factory(index)` (picklable; default: `make_env` of the config's suite and task)."""

    def __init__(self, config: TrainerConfig, agent_config: AgentConfig,
                 env: Optional["ManipulationEnv"] = None, rewarder: Optional[Rewarder] = None,
                 env_factory: Optional[Callable[[int], "ManipulationEnv"]] = None) -> None:
        self.config, self.agent_config = config, agent_config
        if config.num_envs > 1 and env is not None:
            raise ValueError("num_envs > 1 builds one env per worker process: pass env_factory (a picklable "
                             "callable index -> env) instead of env")
        os.makedirs(config.out, exist_ok=True)
        _seed_everything(config.seed)
        self.agent = DrQV2Agent(agent_config)
        self.checkpoint_path = os.path.join(config.out, "checkpoint.pt")
        # Validate a resume before anything in the run directory changes: a refused one leaves it as it was.
        checkpoint = None
        if config.resume and os.path.exists(self.checkpoint_path):
            checkpoint = read_checkpoint(self.checkpoint_path)
            checkpoint.restore_agent(self.agent)
        elif config.init_policy:   # a new run from a shipped policy (see sole_r1_rl.policy)
            from sole_r1_rl.policy import load_policy

            LOG.info("started from policy %s: %s", config.init_policy, load_policy(self.agent, config.init_policy))
        render = config.render_size or agent_config.image_size
        self.env_factory = env_factory or SuiteEnvFactory(config.suite, config.task, render, config.seed)
        if env is None and config.num_envs == 1:
            env = self.env_factory(0)
        if rewarder is None:
            from sole_r1_model.rewarders import make_rewarder
            rewarder = make_rewarder(config.rewarder)
        self.env, self.rewarder = env, rewarder
        extra = checkpoint.extra if checkpoint is not None else {}
        self.replay = ReplayBuffer(agent_config, os.path.join(config.out, "replay"), seed=config.seed,
                                   compress=config.compress_replay, episode_limit=extra.get("replay_episode_limit"),
                                   kept_episodes=extra.get("replay_kept_episodes", ()))
        self.env_episodes = [EnvEpisode.create(index, config.reward, agent_config.cameras, agent_config.frame_stack)
                             for index in range(config.num_envs)]
        self.episodes = EpisodeLog(os.path.join(config.out, "episodes.csv"))
        self.counters = TrainingCounters()
        self.counts = {"rewarder_errors": 0, "act_errors": 0, "env_failures": 0}
        self._loader: Optional[BatchLoader] = None
        self._pending_updates: list = []      # env steps whose updates are owed
        self._stopping = False
        self._started, self._finished = time.time(), None
        self._steps_at_start = 0
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
        seeds = extra.get("episode_seeds", {})
        self._next_seed = int(seeds.get("next", self.counters.episodes))
        self._unfinished_seeds = [int(offset) for offset in seeds.get("unfinished", ())]
        agent_config.to_yaml(os.path.join(config.out, "agent.yaml"))

    # -- the loop
    def run(self) -> TrainingCounters:
        """Train until `config.steps` env steps; returns the final counters."""
        cfg = self.config
        self._stopping = False
        envs = self._open_envs()
        bar = _progress_bar(cfg, self.counters.env_steps)
        try:
            self._started, self._finished, self._steps_at_start = time.time(), None, self.counters.env_steps
            last_checkpoint = self.counters.env_steps
            self._begin_episodes(envs, self.env_episodes)
            while self.counters.env_steps < cfg.steps:
                running = [state for state in self.env_episodes if state.running]
                if not running:
                    break
                ended, failed = self._step_envs(envs, running, bar)
                if not ended and not failed:
                    continue
                for state, terminated, success in ended:
                    self._end_episode(state, terminated, success)
                if bar is not None and ended:
                    bar.set_postfix(episodes=self.counters.episodes, updates=self.counters.updates)
                if ended and not self._stopping and cfg.time_limit_s and \
                        time.time() - self._started >= cfg.time_limit_s:
                    self._stopping = True
                    LOG.info("time limit of %.0f s reached at %d env steps: stopping%s", cfg.time_limit_s,
                             self.counters.env_steps, " as each env ends its episode" if len(running) > 1 else "")
                if self._stopping:
                    continue
                if ended and self.counters.env_steps - last_checkpoint >= cfg.checkpoint_every:
                    self._run_updates()
                    self.save()
                    last_checkpoint = self.counters.env_steps
                self._begin_episodes(envs, [state for state, _, _ in ended] + failed)
            self._run_updates()
            self._finished = time.time()
        finally:
            if bar is not None:
                bar.close()
            envs.close()
            if self._loader is not None:
                self._loader.close()
        self.save()
        return self.counters

    def save(self) -> None:
        """Checkpoint (atomic) and refresh the learning curve."""
        # episodes still running are lost to a resume from this checkpoint: it runs their seeds again first
        running = [state.seed_offset for state in self.env_episodes if state.running]
        unfinished = sorted(self._unfinished_seeds + running)
        save_checkpoint(self.checkpoint_path, self.agent, self.counters, {"replay": self.replay.rng},
                        extra={"trainer": dataclasses.asdict(self.config),
                               "replay_episode_limit": self.replay.closed_episode_limit,
                               "replay_kept_episodes": self.replay.closed_above_limit,
                               "episode_seeds": {"next": self._next_seed, "unfinished": unfinished}})
        title = f"{self.config.suite}/{self.config.task} -- rewarder {self.rewarder.name}"
        plot_learning_curve(self.episodes, os.path.join(self.config.out, "learning_curve.png"), title)

    def close(self) -> None:
        """Close env and rewarder (worker processes close at the end of `run`)."""
        if self.env is not None:
            self.env.close()
        self.rewarder.close()

    @property
    def env_steps_per_s(self) -> float:
        """Env steps per wall second of all envs together, from the start of `run`'s stepping to its end (or now)."""
        elapsed = (self._finished or time.time()) - self._started
        return (self.counters.env_steps - self._steps_at_start) / max(elapsed, 1e-9)

    # -- one step of every running env
    def _step_envs(self, envs, running: list, bar) -> tuple[list, list]:
        """Act, step the running envs, query, store, update; returns (ended (state, terminated, success), failed)."""
        cfg = self.config
        step = self.counters.env_steps
        actions = self._act(running, step)
        for state, action in zip(running, actions):
            last = bool(cfg.max_episode_steps) and state.step + 1 >= cfg.max_episode_steps
            envs.send_step(state.index, action, query=(state.step + 1) % cfg.query_every == 0 or last, last=last)
        if envs.overlaps:
            self._run_updates()   # the previous step's updates, while the workers step
        stepped, ended, failed, due = [], [], [], []
        for state, action in zip(running, actions):
            try:
                reply = envs.receive(state.index)
            except EnvFailure as failure:
                self._env_failed(envs, state, failure)
                failed.append(state)
                continue
            state.step += 1
            terminated, truncated = reply.terminated, reply.truncated
            if cfg.max_episode_steps and state.step >= cfg.max_episode_steps:
                truncated = True
            done = bool(terminated or truncated)
            frames = self._frames(reply.observation)
            state.shaper.add_step(dict(obs=state.last_frames, action=action, next_obs=frames,
                                      terminated=bool(terminated), truncated=bool(truncated) and not terminated))
            if state.step % cfg.query_every == 0 or done:
                due.append((state, reply))
            stepped.append((state, frames))
            if done:
                ended.append((state, bool(terminated), reply.true_success))
        self._query(envs, due)
        for state, frames in stepped:
            self._store(state, state.shaper.ready())
            state.advance(frames)
        self.counters.env_steps += len(stepped)
        self._pending_updates.extend(range(step, step + len(stepped)))
        if not envs.overlaps:
            self._run_updates()
        if bar is not None:
            bar.update(len(stepped))
        return ended, failed

    # -- pieces
    def _open_envs(self):
        if self.config.num_envs == 1:
            return LocalEnvs(self.env, self.rewarder.privileged)
        LOG.info("starting %d env worker processes", self.config.num_envs)
        return EnvWorkers(self.env_factory, self.config.num_envs, self.rewarder.privileged,
                          self.config.env_timeout_s)

    def _begin_episodes(self, envs, states: list) -> None:
        """Reset the envs of `states` (in parallel) with the next seeds of the run's sequence."""
        pending = list(states)
        while pending:
            offsets = [self._take_seed() for _ in pending]
            for state, offset in zip(pending, offsets):
                envs.send_reset(state.index, self.config.seed + offset)
            failed = []
            for state, offset in zip(pending, offsets):
                try:
                    observation = envs.receive(state.index).observation
                except EnvFailure as failure:
                    self._env_failed(envs, state, failure)
                    failed.append(state)
                    continue
                state.start(self._frames(observation), observation, offset)
            pending = failed

    def _take_seed(self) -> int:
        """Episodes a resume must run again come first, then the sequence continues."""
        if self._unfinished_seeds:
            return self._unfinished_seeds.pop(0)
        self._next_seed += 1
        return self._next_seed - 1

    def _env_failed(self, envs, state: EnvEpisode, failure: EnvFailure) -> None:
        """Drop the failed env's episode and restart its worker, or stop once `env_restarts` are used up."""
        where = f"at episode step {state.step}" if state.running else "while resetting"
        state.running = False
        stored = self.replay.drop_episode(stream=state.index)
        state.shaper.start_episode()
        while True:
            self.counts["env_failures"] += 1
            LOG.error("env %d failed %s (%s); its episode is dropped (%d stored transitions), %d of %d allowed "
                      "failures", state.index, where, failure.reason, stored, self.counts["env_failures"],
                      self.config.env_restarts)
            if self.counts["env_failures"] > self.config.env_restarts:
                raise EnvFailuresExceeded(
                    f"stopping: env {state.index} failed and all {self.config.env_restarts} env restarts are used "
                    f"({failure.reason.splitlines()[0]}). The run resumes from its last checkpoint in "
                    f"{self.config.out}; fix the env or allow more failures with --env-restarts") from failure
            try:
                envs.restart(state.index)
                return
            except EnvFailure as again:
                failure, stored, where = again, 0, "while starting"

    def _frames(self, observation: "Observation") -> dict:
        size = self.agent_config.image_size
        if observation.shoulder.shape[0] != size:
            observation = _resized(observation, size)
        return observation_frames(observation, self.agent_config.cameras, size)

    def _act(self, running: list, step: int) -> list:
        """One forward pass for all running envs; a failing batch is retried row by row to find the bad one."""
        if len(running) > 1:
            batch = {key: np.stack([state.stacked[key] for state in running]) for key in running[0].stacked}
            try:
                actions = self.agent.act_batch(batch, step, eval_mode=False)
                if np.all(np.isfinite(actions)):
                    return list(actions)
            except (ValueError, RuntimeError):
                pass
        return [self._act_one(state.stacked, step) for state in running]

    def _act_one(self, stacked: dict, step: int) -> np.ndarray:
        try:
            action = self.agent.act(stacked, step, eval_mode=False)
            if np.all(np.isfinite(action)):
                return action
            raise ValueError(f"non-finite action {action}")
        except (ValueError, RuntimeError) as error:
            self.counts["act_errors"] += 1
            LOG.warning("act failed at step %d (%s); holding still (zero action), %d so far", step, error,
                        self.counts["act_errors"])
            return np.zeros(self.agent_config.action_dim, np.float32)

    def _query(self, envs, due: list) -> None:
        """Score each due env's current frame against its episode's first and previously scored frames -- one
        rewarder call for all of them (rewarders batch across episodes)."""
        if not due:
            return
        for state, _ in due:
            state.query_index += 1
        try:
            queries = [state.query(envs.instruction(state.index), reply.observation,
                                   reply.privileged_progress if self.rewarder.privileged else None)
                       for state, reply in due]
            answers = [(result.valid, result.progress) for result in self.rewarder.score(queries)]
        except Exception as error:  # noqa: BLE001 -- a rewarder failure must not stop the control loop
            self.counts["rewarder_errors"] += len(due)
            LOG.warning("rewarder %s failed (%s); %d estimate(s) marked invalid, %d failures so far",
                        self.rewarder.name, error, len(due), self.counts["rewarder_errors"])
            answers = [(False, state.previous_progress) for state, _ in due]
        for (state, reply), (valid, progress) in zip(due, answers):
            state.record(progress, valid, reply.observation)

    def _store(self, state: EnvEpisode, released: list) -> None:
        for payload, reward in released:
            self.replay.add(reward=reward, stream=state.index, **payload)
            state.episode_return += reward

    def _run_updates(self) -> None:
        steps, self._pending_updates = self._pending_updates, []
        for step in steps:
            self._maybe_update(step)

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
                LOG.info("update %d (env step %d, %.1f env steps/s, %.2f updates/env step): %s",
                         self.counters.updates, step, self.env_steps_per_s,
                         self.counters.updates / max(self.counters.env_steps, 1),
                         {k: round(float(v), 4) for k, v in metrics.items()})

    def _end_episode(self, state: EnvEpisode, terminated: bool, success: Optional[bool]) -> None:
        dropped_before = state.shaper.stats["dropped_steps"]
        self._store(state, state.shaper.end_episode())
        self.replay.close_episode(terminated=terminated, truncated=not terminated, stream=state.index)
        self.counters.episodes += 1
        state.running = False
        now = time.time()
        self.episodes.write(dict(
            episode=self.counters.episodes, env_steps=self.counters.env_steps, length=state.step,
            **{"return": state.episode_return}, final_progress=state.previous_progress if state.valid else None,
            true_success=bool(success), valid_estimates=state.valid, invalid_estimates=state.invalid,
            dropped_steps=state.shaper.stats["dropped_steps"] - dropped_before,
            steps_per_s=state.step / max(now - state.started, 1e-9), updates=self.counters.updates,
            wall_s=now - self._started, env=state.index, seed=self.config.seed + state.seed_offset,
            env_steps_per_s=self.env_steps_per_s,
            updates_per_step=self.counters.updates / max(self.counters.env_steps, 1)))


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
    except (EnvFailure, EnvFailuresExceeded) as error:   # a worker that cannot start, or too many failures
        raise SystemExit(f"error: {error}") from error
    finally:
        trainer.close()
    print(f"done: {counters}, {trainer.env_steps_per_s:.1f} env steps/s, "
          f"{counters.updates / max(counters.env_steps, 1):.2f} updates/env step; episodes in "
          f"{trainer_config.out}/episodes.csv, curve in {trainer_config.out}/learning_curve.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
