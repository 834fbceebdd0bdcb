"""In-process trainer: query cadence, rewarder failures that never stop the loop, episode log, checkpoint/resume,
and the Meta-World smoke run through the command line."""
import csv
import json
import logging
import os
import zipfile

import numpy as np
import pytest

from .learner_testlib import TinyReachEnv, tiny_config
from sole_r1_model.rewarder import ProgressResult, Rewarder
from sole_r1_rl.checkpoint import TrainingCounters
from sole_r1_rl.replay import ReplayBuffer
from sole_r1_rl.reward import RewardConfig
from sole_r1_rl.run_config import TrainerConfig
from sole_r1_rl.trainer import Trainer


class FlakyOracle(Rewarder):
    """Privileged progress, but every third answer is invalid (carrying a wild value the shaper must ignore)."""

    name, privileged = "flaky_oracle", True

    def __init__(self):
        self.calls = []

    def _score(self, queries):
        results = []
        for query in queries:
            self.calls.append((query.query_index, query.stamp, query.previous_progress))
            valid = len(self.calls) % 3 != 0
            results.append(ProgressResult(progress=query.privileged_progress if valid else 99.0, valid=valid))
        return results


class BrokenRewarder(Rewarder):
    """Raises on every call, like a dead reward server."""

    name = "broken"

    def _score(self, queries):
        raise ConnectionError("reward server unreachable")


def _trainer(tmp_path, rewarder, steps=60, run=None, **agent):
    config = TrainerConfig(**{**dict(steps=steps, out=str(tmp_path), query_every=5, max_episode_steps=20,
                                     progress_bar=False, checkpoint_every=10_000, reward=RewardConfig()),
                              **(run or {})})
    agent_config = tiny_config(num_seed_steps=10, update_every_steps=2, num_expl_steps=15, **agent)
    return Trainer(config, agent_config, env=TinyReachEnv(16), rewarder=rewarder)


def _rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_loop_queries_every_k_steps_logs_episodes_and_updates(tmp_path):
    rewarder = FlakyOracle()
    trainer = _trainer(tmp_path, rewarder)
    counters = trainer.run()
    assert (counters.env_steps, counters.episodes) == (60, 3)
    assert counters.updates == len(range(10, 60, 2))
    # queries at episode steps 5, 10, 15, 20 with indices 1..4; previous progress = own last valid answer
    assert [(index, stamp) for index, stamp, _ in rewarder.calls[:4]] == [(1, 5.0), (2, 10.0), (3, 15.0), (4, 20.0)]
    # query 3 is invalid, so query 4 is told the answer of query 2 again, never the invalid 99
    assert rewarder.calls[0][2] == 0.0 and rewarder.calls[3][2] == rewarder.calls[2][2] != 99.0
    rows = _rows(tmp_path / "episodes.csv")
    assert [int(r["length"]) for r in rows] == [20, 20, 20]
    assert sum(int(r["invalid_estimates"]) for r in rows) == 4           # calls 3, 6, 9, 12
    assert all(r["true_success"] in ("0", "1") for r in rows)
    assert len(trainer.replay) == 60 and trainer.replay.num_episodes == 3
    returns = [float(r["return"]) for r in rows]
    assert all(0.0 <= value <= 20.0 for value in returns)                # progress/100 per step, never 0.99 * 20
    assert (tmp_path / "learning_curve.png").exists() and (tmp_path / "checkpoint.pt").exists()
    manifest = [json.loads(line) for line in open(tmp_path / "replay" / "manifest.jsonl")]
    assert [m["length"] for m in manifest] == [20, 20, 20] and not any(m["terminal"] for m in manifest)
    assert trainer.env.resets == [0, 1, 2, 3]


def test_a_failing_rewarder_never_stops_the_loop_and_yields_no_transitions(tmp_path):
    trainer = _trainer(tmp_path, BrokenRewarder(), steps=40)
    counters = trainer.run()
    assert counters.env_steps == 40 and counters.episodes == 2 and counters.updates == 0
    assert trainer.counts["rewarder_errors"] == 8 and len(trainer.replay) == 0
    rows = _rows(tmp_path / "episodes.csv")
    assert [int(r["dropped_steps"]) for r in rows] == [20, 20] and rows[0]["final_progress"] == ""


def test_resume_continues_counters_replay_and_episode_log(tmp_path):
    _trainer(tmp_path, FlakyOracle(), steps=40).run()
    resumed = _trainer(tmp_path, FlakyOracle(), steps=80)
    assert resumed.counters.env_steps == 40 and len(resumed.replay) == 40
    counters = resumed.run()
    assert (counters.env_steps, counters.episodes) == (80, 4)
    assert [int(r["episode"]) for r in _rows(tmp_path / "episodes.csv")] == [1, 2, 3, 4]
    assert resumed.env.resets == [2, 3, 4]   # episode seeds continue after the restored episode count


def test_a_time_limit_stops_at_the_next_episode_end_with_a_checkpoint_that_resumes(tmp_path):
    trainer = _trainer(tmp_path, FlakyOracle(), steps=1000, run=dict(time_limit_s=1e-6))
    counters = trainer.run()
    assert (counters.env_steps, counters.episodes) == (20, 1)   # the first episode is finished, never cut
    assert len(_rows(tmp_path / "episodes.csv")) == 1 and (tmp_path / "checkpoint.pt").exists()
    resumed = _trainer(tmp_path, FlakyOracle(), steps=40)
    assert resumed.counters.env_steps == 20 and resumed.run().env_steps == 40


class Killed(Exception):
    """Stands in for SIGKILL."""


def test_resume_after_a_kill_between_episode_end_and_checkpoint_restores_exactly_the_checkpoint(tmp_path, caplog):
    first = _trainer(tmp_path, FlakyOracle(), steps=80, run=dict(checkpoint_every=20))
    checkpoint = first.save

    def killed_before_the_third_checkpoint():
        if first.counters.episodes == 3:   # episode 3 is in episodes.csv and the replay, not in a checkpoint
            raise Killed
        checkpoint()

    first.save = killed_before_the_third_checkpoint
    with pytest.raises(Killed):
        first.run()
    assert [int(r["episode"]) for r in _rows(tmp_path / "episodes.csv")] == [1, 2, 3]
    assert len(open(tmp_path / "replay" / "manifest.jsonl").readlines()) == 3

    with caplog.at_level(logging.INFO):
        resumed = _trainer(tmp_path, FlakyOracle(), steps=80, run=dict(checkpoint_every=20))
    assert resumed.counters.env_steps == 40 and resumed.counters.episodes == 2
    assert len(resumed.replay) == 40 and resumed.replay.num_episodes == 2
    assert [int(r["episode"]) for r in _rows(tmp_path / "episodes.csv")] == [1, 2]
    assert "written after the checkpoint" in caplog.text
    counters = resumed.run()
    assert (counters.env_steps, counters.episodes) == (80, 4)
    assert [int(r["episode"]) for r in _rows(tmp_path / "episodes.csv")] == [1, 2, 3, 4]
    manifest = [json.loads(line) for line in open(tmp_path / "replay" / "manifest.jsonl")]
    assert [m["episode"] for m in manifest] == [0, 1, 2, 3]
    assert len(resumed.replay) == 80 and len(ReplayBuffer(resumed.agent_config, str(tmp_path / "replay"))) == 80


def test_a_refused_resume_leaves_agent_yaml_as_it_was(tmp_path):
    _trainer(tmp_path, FlakyOracle(), steps=20).run()
    before = (tmp_path / "agent.yaml").read_text()
    assert "hidden_dim: 32" in before
    with pytest.raises(ValueError, match="hidden_dim") as error:
        _trainer(tmp_path, FlakyOracle(), steps=40, hidden_dim=64)
    assert "--no-resume" in str(error.value)
    assert (tmp_path / "agent.yaml").read_text() == before
    resumed = _trainer(tmp_path, FlakyOracle(), steps=40, batch_size=4)   # a setting that fits is accepted
    assert resumed.counters == TrainingCounters(env_steps=20, updates=resumed.counters.updates, episodes=1)
    assert "batch_size: 4" in (tmp_path / "agent.yaml").read_text()


def test_a_refused_resume_of_the_online_learner_leaves_agent_yaml_as_it_was(tmp_path):
    from sole_r1_rl.online import OnlineLearner

    OnlineLearner(tiny_config(), str(tmp_path)).save()
    before = (tmp_path / "agent.yaml").read_text()
    with pytest.raises(ValueError, match="hidden_dim"):
        OnlineLearner(tiny_config(hidden_dim=64), str(tmp_path))
    assert (tmp_path / "agent.yaml").read_text() == before


def test_compress_replay_reaches_the_episode_files(tmp_path):
    _trainer(tmp_path, FlakyOracle(), steps=20, run=dict(compress_replay=True)).run()
    (stored,) = (tmp_path / "replay").glob("episode_*.npz")
    with zipfile.ZipFile(stored) as archive:
        assert {member.compress_type for member in archive.infolist()} == {zipfile.ZIP_DEFLATED}


def test_metaworld_reach_smoke_run_with_the_oracle_through_the_cli(tmp_path):
    from sole_r1_rl.trainer import main

    out = tmp_path / "run"
    code = main(["--suite", "metaworld", "--task", "reach-v3", "--rewarder", "oracle", "--steps", "200",
                 "--out", str(out), "--image-size", "64", "--max-episode-steps", "100", "--no-progress-bar",
                 "--threads", "1", "--set", "batch_size=16", "--set", "hidden_dim=64", "--set", "num_seed_steps=150",
                 "--set", "num_expl_steps=100", "--set", "update_every_steps=10"])
    assert code == 0
    rows = _rows(out / "episodes.csv")
    assert [int(r["length"]) for r in rows] == [100, 100]
    assert all(r["true_success"] in ("0", "1") and int(r["valid_estimates"]) == 10 for r in rows)
    assert all(np.isfinite(float(r["return"])) and float(r["steps_per_s"]) > 0 for r in rows)
    import torch
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    assert checkpoint["counters"] == {"env_steps": 200, "updates": 5, "episodes": 2}
    assert (out / "learning_curve.png").stat().st_size > 1000
    assert len([line for line in open(out / "replay" / "manifest.jsonl")]) == 2
    assert os.path.exists(out / "agent.yaml")


def test_a_run_starts_from_the_shipped_reach_policy_through_the_cli(tmp_path):
    import torch
    from safetensors.torch import load_file

    from sole_r1_config.paths import models_dir
    from sole_r1_rl.trainer import main

    out = tmp_path / "run"
    code = main(["--suite", "metaworld", "--task", "reach-v3", "--rewarder", "oracle", "--steps", "100",
                 "--out", str(out), "--max-episode-steps", "100", "--no-progress-bar", "--threads", "1",
                 "--preset", "serl", "--init-policy", "policy-reach-v3", "--set", "batch_size=16",
                 "--set", "num_seed_steps=50", "--set", "num_expl_steps=0", "--set", "update_every_steps=10",
                 "--set", "policy_warmup_updates=1000"])
    assert code == 0
    agent = torch.load(out / "checkpoint.pt", weights_only=False)["agent"]
    assert agent["config"]["feature_dim"] == 50 and agent["update_count"] == 5   # shapes from the policy
    shipped = load_file(str(models_dir() / "policy-reach-v3" / "policy.safetensors"))
    for key, value in agent["actor"].items():   # warm-up: the actor is still the shipped one
        assert torch.equal(value, shipped[f"actor.{key}"].float()), key


def test_a_missing_init_policy_is_a_configuration_error(tmp_path):
    from sole_r1_rl.cli import parse_args

    with pytest.raises(SystemExit, match="invalid configuration: no policy 'nowhere'"):
        parse_args(["--out", str(tmp_path), "--init-policy", "nowhere"])
