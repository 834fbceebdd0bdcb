"""Several envs feeding one learner (`num_envs` > 1): batched acting and reward queries, interleaved replay
streams, per-env episode log rows, checkpoint/resume and time-limit stops with episodes in flight, env workers
that fail, and a Meta-World smoke run through the command line."""
import csv
import functools
import json
import logging
import multiprocessing

import numpy as np
import pytest
import torch

from .learner_testlib import (make_broken_env, make_failing_env, make_tiny_env, make_truncating_env, numbered_frame,
                              tiny_config)
from sole_r1_model.rewarder import ProgressResult, Rewarder
from sole_r1_rl.agent import DrQV2Agent
from sole_r1_rl.cli import parse_args
from sole_r1_rl.curves import EPISODE_FIELDS, EpisodeLog
from sole_r1_rl.env_workers import EnvFailure, EnvFailuresExceeded
from sole_r1_rl.replay import ReplayBuffer
from sole_r1_rl.run_config import TrainerConfig
from sole_r1_rl.trainer import Trainer


class RecordingOracle(Rewarder):
    """Privileged progress, always valid; records the size of every batch it is asked to score."""

    name, privileged = "recording_oracle", True

    def __init__(self):
        self.batches = []

    def _score(self, queries):
        self.batches.append([(query.query_index, query.stamp) for query in queries])
        return [ProgressResult(progress=query.privileged_progress) for query in queries]


def _trainer(tmp_path, steps, num_envs=3, factory=make_tiny_env, rewarder=None, run=None, **agent):
    config = TrainerConfig(**{**dict(steps=steps, out=str(tmp_path), query_every=5, max_episode_steps=20,
                                     progress_bar=False, checkpoint_every=10_000, num_envs=num_envs), **(run or {})})
    agent_config = tiny_config(**{**dict(num_seed_steps=10, update_every_steps=2, num_expl_steps=15), **agent})
    return Trainer(config, agent_config, rewarder=rewarder or RecordingOracle(), env_factory=factory)


def _rows(tmp_path):
    with open(tmp_path / "episodes.csv") as handle:
        return list(csv.DictReader(handle))


def _manifest(tmp_path):
    return [json.loads(line) for line in open(tmp_path / "replay" / "manifest.jsonl")]


def _consistent(trainer, tmp_path):
    """The episode log, the replay on disk and the counters tell the same story."""
    rows, manifest = _rows(tmp_path), _manifest(tmp_path)
    assert [int(r["episode"]) for r in rows] == list(range(1, trainer.counters.episodes + 1))
    assert len(manifest) == len(rows) and len({m["episode"] for m in manifest}) == len(manifest)
    assert sorted(m["length"] for m in manifest) == sorted(int(r["length"]) for r in rows)


# -- the agent and the replay
def test_act_batch_equals_single_acts_in_eval_mode_and_one_row_reproduces_act():
    torch.manual_seed(0)
    config = tiny_config(num_expl_steps=0)
    agent = DrQV2Agent(config)
    rng = np.random.default_rng(0)
    rows = [{**{name: rng.integers(0, 256, (9, 16, 16), dtype=np.uint8) for name in config.cameras},
             "proprio": rng.normal(size=8).astype(np.float32)} for _ in range(4)]
    batch = {key: np.stack([row[key] for row in rows]) for key in rows[0]}
    batched = agent.act_batch(batch, step=100, eval_mode=True)
    assert batched.shape == (4, 7)
    np.testing.assert_allclose(batched, [agent.act(row, 100, eval_mode=True) for row in rows], atol=1e-6)
    torch.manual_seed(5)
    single = agent.act(rows[0], 100)
    torch.manual_seed(5)
    np.testing.assert_array_equal(agent.act_batch({k: v[:1] for k, v in batch.items()}, 100)[0], single)
    bad = {key: value.copy() for key, value in batch.items()}
    bad["proprio"][2, 0] = np.nan
    with pytest.raises(ValueError, match=r"row\(s\) \[2\]"):
        agent.act_batch(bad, 100)


def _write_interleaved(replay, config, lengths, order):
    """Episode e (stream e) gets lengths[e] transitions, written one step at a time in the stream `order`."""
    written = {e: 0 for e in range(len(lengths))}
    for e in order:
        t = written[e]
        last = t == lengths[e] - 1
        replay.add(numbered_frame(config, e, t), np.full(7, t / 100.0, np.float32), float(10 * e + t),
                   numbered_frame(config, e, t + 1), terminated=last and e == 0, truncated=last and e != 0, stream=e)
        written[e] += 1


def test_interleaved_streams_sample_exactly_like_episodes_written_one_after_another(tmp_path):
    config = tiny_config(frame_stack=3, nstep=3, discount=0.9)
    lengths = [5, 3, 6]
    order = [0, 1, 2, 2, 0, 1, 2, 1, 0, 0, 2, 2, 0, 2]            # 3 streams, episodes open at the same time
    interleaved = ReplayBuffer(config, str(tmp_path / "interleaved"))
    _write_interleaved(interleaved, config, lengths, order)
    sequential = ReplayBuffer(config, str(tmp_path / "sequential"))
    for e, length in enumerate(lengths):
        _write_interleaved(sequential, config, lengths, [e] * length)
    assert len(interleaved) == len(sequential) == sum(lengths) and interleaved.num_episodes == 3
    assert interleaved.open_streams == [] and interleaved.closed_episode_limit == 3
    # replay ids follow the order episodes opened: streams 0, 1, 2 opened in that order both times
    ids = [e for e, length in enumerate(lengths) for _ in range(length)]
    steps = [t for length in lengths for t in range(length)]
    a, b = interleaved.batch_at(ids, steps), sequential.batch_at(ids, steps)
    for key, value in a.arrays().items():
        np.testing.assert_array_equal(value, b.arrays()[key], err_msg=key)
    np.testing.assert_array_equal(a.next_proprio[:, 1], [3, 4, 5, 5, 5, 3, 3, 3, 3, 4, 5, 6, 6, 6])
    for name in ("interleaved", "sequential"):           # persisted episodes are whole, in step order
        with np.load(tmp_path / name / "episode_00000002_6.npz") as stored:
            np.testing.assert_array_equal(stored["proprio"][:, 1], range(7))
            np.testing.assert_array_equal(stored["reward"], [20, 21, 22, 23, 24, 25])
    for _ in range(10):                                   # random samples never mix episodes either
        batch = interleaved.sample(32)
        np.testing.assert_array_equal(batch.proprio[:, 0], batch.next_proprio[:, 0])


def test_a_wrapping_ring_evicts_interleaved_episodes_whole_and_refuses_to_overwrite_an_open_one():
    config = tiny_config(replay_capacity=50, nstep=2)
    replay = ReplayBuffer(config, seed=0)
    for round_ in range(4):          # two streams, 9 transitions each: 20 interleaved frames a round, 80 in all
        episodes = [2 * round_, 2 * round_ + 1]
        for t in range(9):
            for stream, e in enumerate(episodes):
                replay.add(numbered_frame(config, e, t), np.zeros(7), 1.0, numbered_frame(config, e, t + 1),
                           truncated=t == 8, stream=stream)
    # rounds 2 and 3 are in the ring; episodes 2 and 3 were evicted whole when round 3 reached their first frames
    assert replay.num_episodes == 4 and len(replay) == 36
    sampled = {int(e) for _ in range(20) for e in replay.sample(32).proprio[:, 0]}
    assert sampled == {4, 5, 6, 7}
    small = ReplayBuffer(tiny_config(replay_capacity=10))
    small.add(numbered_frame(config, 0, 0), np.zeros(7), 1.0, numbered_frame(config, 0, 1), stream=0)
    with pytest.raises(ValueError, match="cannot hold the 2 episodes being written at once"):
        for t in range(10):
            small.add(numbered_frame(config, 1, t), np.zeros(7), 1.0, numbered_frame(config, 1, t + 1), stream=1)


def test_a_dropped_stream_leaves_no_transitions_and_resume_keeps_episodes_closed_while_an_older_was_open(tmp_path):
    config = tiny_config()
    replay = ReplayBuffer(config, str(tmp_path))
    frame = functools.partial(numbered_frame, config)
    replay.add(frame(0, 0), np.zeros(7), 0.0, frame(0, 1), stream=0)          # id 0, stays open
    replay.add(frame(1, 0), np.zeros(7), 0.0, frame(1, 1), stream=1)          # id 1
    replay.add(frame(1, 1), np.zeros(7), 0.0, frame(1, 2), truncated=True, stream=1)
    replay.add(frame(2, 0), np.zeros(7), 0.0, frame(2, 1), stream=2)          # id 2, its env fails
    assert replay.drop_episode(stream=2) == 1 and len(replay) == 3 and replay.open_streams == [0]
    limit, kept = replay.closed_episode_limit, replay.closed_above_limit     # what a checkpoint records now
    assert (limit, kept) == (0, [1])
    replay.add(frame(0, 1), np.zeros(7), 0.0, frame(0, 2), truncated=True, stream=0)   # closed after it
    resumed = ReplayBuffer(config, str(tmp_path), episode_limit=limit, kept_episodes=kept)
    assert resumed.num_episodes == 1 and len(resumed) == 2
    assert [m["episode"] for m in _manifest_of(tmp_path)] == [1]


def _manifest_of(directory):
    return [json.loads(line) for line in open(directory / "manifest.jsonl")]


def test_an_episode_log_from_before_the_new_columns_gets_them_on_resume(tmp_path):
    path = tmp_path / "episodes.csv"
    path.write_text("episode,env_steps,length,return\n1,20,20,0.5\n")
    log = EpisodeLog(str(path))
    log.write({"episode": 2, "env_steps": 40, "env": 1})
    rows = log.rows()
    assert tuple(rows[0]) == EPISODE_FIELDS and rows[0]["return"] == "0.5" and rows[1]["env"] == "1"


def test_num_envs_is_a_trainer_flag():
    config, _, _ = parse_args(["--num-envs", "4", "--env-restarts", "2"])
    assert (config.num_envs, config.env_restarts) == (4, 2)
    with pytest.raises(ValueError, match="env_factory"):
        Trainer(TrainerConfig(num_envs=2), tiny_config(), env=object(), rewarder=RecordingOracle())


# -- the loop with worker processes
def test_three_envs_feed_one_learner_with_batched_queries_and_per_env_episodes(tmp_path):
    rewarder = RecordingOracle()
    trainer = _trainer(tmp_path, steps=120, rewarder=rewarder, num_seed_steps=0)
    counters = trainer.run()
    assert (counters.env_steps, counters.episodes) == (120, 6)
    # update steps count all envs: vector step v covers env steps 3v..3v+2 and its updates run during step v+1;
    # the first transitions are released by the queries of vector step 4 (episode step 5), so updates start at 12
    assert counters.updates == len(range(12, 120, 2))
    assert {len(batch) for batch in rewarder.batches} == {3}                  # one call for the three envs
    assert rewarder.batches[0] == [(1, 5.0)] * 3 and len(rewarder.batches) == 2 * 4
    rows = _rows(tmp_path)
    assert [r["env"] for r in rows] == ["0", "1", "2", "0", "1", "2"]
    assert [r["seed"] for r in rows] == ["0", "1", "2", "3", "4", "5"]
    assert [int(r["env_steps"]) for r in rows] == [60, 60, 60, 120, 120, 120]
    assert all(int(r["length"]) == 20 and int(r["valid_estimates"]) == 4 for r in rows)
    assert float(rows[-1]["updates_per_step"]) == pytest.approx(int(rows[-1]["updates"]) / 120, rel=1e-4)
    assert all(float(r["env_steps_per_s"]) > 0 for r in rows)
    # the replay holds every transition of the six episodes, written interleaved, each episode intact
    assert len(trainer.replay) == 120 and trainer.replay.num_episodes == 6
    _consistent(trainer, tmp_path)
    starts = trainer.replay.batch_at(range(6), [0] * 6).proprio[:, :3]
    assert len({tuple(np.round(row, 6)) for row in starts}) == 6                # six different reset seeds
    for episode in range(6):
        batch = trainer.replay.batch_at([episode] * 20, range(20))
        with np.load(tmp_path / "replay" / f"episode_{episode:08d}_20.npz") as stored:
            np.testing.assert_array_equal(batch.proprio, stored["proprio"][:20])
            np.testing.assert_array_equal(batch.action, stored["action"])
    assert multiprocessing.active_children() == []                          # workers stopped with the run


def test_resume_after_a_mid_episode_stop_and_after_a_kill_between_checkpoints(tmp_path):
    class Killed(Exception):
        pass

    factory = make_truncating_env          # env 0: 15-step episodes, env 1: 7-step ones, so they interleave
    first = _trainer(tmp_path, steps=50, num_envs=2, factory=factory, run=dict(max_episode_steps=None,
                                                                               checkpoint_every=20))
    save = first.save

    def killed_at_the_second_checkpoint():
        if first.counters.env_steps >= 40:
            raise Killed
        save()

    first.save = killed_at_the_second_checkpoint
    with pytest.raises(Killed):
        first.run()
    assert multiprocessing.active_children() == []
    resumed = _trainer(tmp_path, steps=60, num_envs=2, factory=factory, run=dict(max_episode_steps=None,
                                                                                checkpoint_every=20))
    _consistent(resumed, tmp_path)              # rows and episodes after the checkpoint are gone
    assert resumed.replay.num_episodes == resumed.counters.episodes
    counters = resumed.run()                    # stops mid-episode at 60 steps: the unfinished ones are dropped
    _consistent(resumed, tmp_path)
    again = _trainer(tmp_path, steps=90, num_envs=2, factory=factory, run=dict(max_episode_steps=None))
    assert again.counters == counters and again.replay.num_episodes == counters.episodes
    unfinished = sorted(again._unfinished_seeds)
    assert len(unfinished) == 2                 # both envs were mid-episode: their seeds run first on resume
    again.run()
    _consistent(again, tmp_path)
    seeds = [int(r["seed"]) for r in _rows(tmp_path)]
    assert len(seeds) == len(set(seeds)) and set(unfinished) <= set(seeds)


def test_a_time_limit_lets_every_env_finish_its_episode_then_checkpoints(tmp_path):
    trainer = _trainer(tmp_path, steps=1000, num_envs=2, factory=make_truncating_env,
                       run=dict(max_episode_steps=None, time_limit_s=1e-6))
    counters = trainer.run()
    # env 1 ends first (7 steps) and stops; env 0 finishes its 15-step episode; nothing is cut
    assert (counters.env_steps, counters.episodes) == (7 * 2 + 8, 2)
    assert [(r["env"], r["length"]) for r in _rows(tmp_path)] == [("1", "7"), ("0", "15")]
    resumed = _trainer(tmp_path, steps=40, num_envs=2, factory=make_truncating_env, run=dict(max_episode_steps=None))
    assert resumed.counters == counters and resumed._unfinished_seeds == []
    assert resumed.run().env_steps >= 40
    _consistent(resumed, tmp_path)


@pytest.mark.parametrize("how", ["raise", "exit", "hang"])
def test_a_failing_env_worker_is_logged_counted_and_restarted(tmp_path, how, caplog):
    factory = functools.partial(make_failing_env, marker_dir=str(tmp_path), how=how)
    trainer = _trainer(tmp_path / "run", steps=80, num_envs=2, factory=factory, run=dict(env_timeout_s=5.0))
    with caplog.at_level(logging.ERROR, logger="sole_r1.trainer"):
        counters = trainer.run()
    assert trainer.counts["env_failures"] == 1 and "env 1 failed at episode step 6" in caplog.text
    assert counters.env_steps >= 80 and counters.episodes == 3
    rows = _rows(tmp_path / "run")
    # env 1's first episode died at its 7th step: no row, no transitions; its fresh worker takes the next seed
    assert [(r["env"], r["seed"]) for r in rows] == [("0", "0"), ("1", "2"), ("0", "3")]
    assert trainer.replay.num_episodes == 3 and [m["length"] for m in _manifest(tmp_path / "run")] == [20] * 3
    with pytest.raises(ValueError, match="no transition"):
        trainer.replay.batch_at([1], [0])       # replay id 1 was the failed episode (ids follow first releases)
    assert multiprocessing.active_children() == []


def test_an_env_that_keeps_failing_stops_the_run_with_a_clear_error_and_no_worker_left(tmp_path):
    factory = functools.partial(make_failing_env, marker_dir=str(tmp_path), once=False, fail_at=3)
    trainer = _trainer(tmp_path / "run", steps=200, num_envs=2, factory=factory, run=dict(env_restarts=1))
    with pytest.raises(EnvFailuresExceeded, match="env 1 failed and all 1 env restarts are used") as error:
        trainer.run()
    assert "--env-restarts" in str(error.value) and "simulated env failure" in str(error.value)
    assert trainer.counts["env_failures"] == 2 and multiprocessing.active_children() == []
    broken = _trainer(tmp_path / "broken", steps=10, num_envs=2, factory=make_broken_env)
    with pytest.raises(EnvFailure, match="building the env failed: OSError: no simulator for env 0"):
        broken.run()
    assert multiprocessing.active_children() == []


def test_metaworld_reach_two_envs_with_the_oracle_through_the_cli(tmp_path, monkeypatch):
    import sole_r1_model.rewarders as rewarders
    from sole_r1_model.rewarders.oracle import OracleRewarder
    from sole_r1_rl.trainer import main

    batches = []

    class RecordingMetaWorldOracle(OracleRewarder):
        def _score(self, queries):
            batches.append(len(queries))
            return super()._score(queries)

    monkeypatch.setattr(rewarders, "make_rewarder", lambda spec: RecordingMetaWorldOracle())
    out = tmp_path / "run"
    code = main(["--suite", "metaworld", "--task", "reach-v3", "--rewarder", "oracle", "--steps", "100",
                 "--num-envs", "2", "--out", str(out), "--image-size", "64", "--max-episode-steps", "50",
                 "--no-progress-bar", "--threads", "1", "--set", "batch_size=16", "--set", "hidden_dim=64",
                 "--set", "num_seed_steps=60", "--set", "num_expl_steps=40", "--set", "update_every_steps=10"])
    assert code == 0
    rows = list(csv.DictReader(open(out / "episodes.csv")))
    assert sorted((r["env"], r["seed"], r["length"]) for r in rows) == [("0", "0", "50"), ("1", "1", "50")]
    assert all(int(r["valid_estimates"]) == 5 and r["true_success"] in ("0", "1") for r in rows)
    assert all(float(r["env_steps_per_s"]) > 0 and np.isfinite(float(r["return"])) for r in rows)
    assert batches == [2] * 5                                    # every query of both envs in one call
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    assert checkpoint["counters"] == {"env_steps": 100, "updates": 4, "episodes": 2}
    manifest = [json.loads(line) for line in open(out / "replay" / "manifest.jsonl")]
    assert sorted(m["length"] for m in manifest) == [50, 50]
