"""Shippable policies (sole_r1_rl.policy): export of encoder + actor, loading into a new agent, critic warm-up."""
import json

import numpy as np
import pytest
import torch

from sole_r1_rl.agent import DrQV2Agent
from sole_r1_rl.checkpoint import TrainingCounters, save_checkpoint
from sole_r1_rl.config import AgentConfig
from sole_r1_rl.online import OnlineLearner
from sole_r1_rl.policy import PolicyError, architecture_overrides, export_policy, load_policy, main, resolve_policy
from sole_r1_rl.replay import Batch

SHAPES = dict(image_size=32, feature_dim=24, hidden_dim=32, num_critics=2, critic_subsample=None, batch_size=4)


def _agent(**overrides) -> DrQV2Agent:
    return DrQV2Agent(AgentConfig.preset("serl", **{**SHAPES, **overrides}))


def _obs(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"shoulder": rng.integers(0, 256, (3, 32, 32), dtype=np.uint8),
            "wrist": rng.integers(0, 256, (3, 32, 32), dtype=np.uint8),
            "proprio": rng.normal(size=8).astype(np.float32)}


def _batch(seed: int, size: int = 4) -> Batch:
    rng = np.random.default_rng(seed)
    images = lambda: {c: rng.integers(0, 256, (size, 3, 32, 32), dtype=np.uint8) for c in ("shoulder", "wrist")}  # noqa: E731
    return Batch(obs=images(), proprio=rng.normal(size=(size, 8)).astype(np.float32),
                 action=rng.uniform(-1, 1, (size, 7)).astype(np.float32),
                 reward=rng.uniform(0, 1, (size, 1)).astype(np.float32),
                 discount=np.full((size, 1), 0.96, np.float32), next_obs=images(),
                 next_proprio=rng.normal(size=(size, 8)).astype(np.float32))


def _exported(tmp_path, agent: DrQV2Agent) -> str:
    save_checkpoint(str(tmp_path / "run" / "checkpoint.pt"), agent, TrainingCounters(1200, 900, 12))
    return str(export_policy(tmp_path / "run", tmp_path / "policy", {"task": "reach-v3", "reward": "oracle"}))


def _bf16_rounded(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(torch.bfloat16).float())


def test_an_exported_policy_acts_like_the_trained_agent_in_a_new_agent(tmp_path):
    torch.manual_seed(0)
    trained = _agent()
    folder = _exported(tmp_path, trained)
    # bf16 on disk: the new agent must act exactly as the trained one with its weights rounded to bf16
    for module in (trained.encoder, trained.actor):
        _bf16_rounded(module)
    torch.manual_seed(1)   # other random initial weights
    fresh = DrQV2Agent(AgentConfig.preset("serl", **{**architecture_overrides(folder), "critic_subsample": None,
                                                     "num_critics": 2, "batch_size": 4}))
    before = fresh.act(_obs(0), 10 ** 6, eval_mode=True)
    info = load_policy(fresh, folder)
    for seed in range(3):
        np.testing.assert_array_equal(fresh.act(_obs(seed), 10 ** 6, eval_mode=True),
                                      trained.act(_obs(seed), 10 ** 6, eval_mode=True))
    assert not np.allclose(before, fresh.act(_obs(0), 10 ** 6, eval_mode=True))
    assert info["task"] == "reach-v3" and info["env_steps"] == 1200 and info["parameters"] > 0
    # only the encoder and the actor are shipped, and small: no critic, no optimiser state
    from safetensors.torch import load_file
    keys = load_file(f"{folder}/policy.safetensors").keys()
    assert {key.split(".")[0] for key in keys} == {"encoder", "actor"}


def test_loading_into_another_architecture_names_the_setting(tmp_path):
    folder = _exported(tmp_path, _agent())
    with pytest.raises(PolicyError, match="feature_dim: policy 24 vs agent 50"):
        load_policy(_agent(feature_dim=50), folder)


def test_a_missing_policy_is_a_clear_error(tmp_path):
    with pytest.raises(PolicyError, match="no policy .*policy.safetensors"):
        resolve_policy(tmp_path / "nowhere")


def test_warmup_updates_fit_the_critic_and_leave_encoder_and_actor_alone():
    torch.manual_seed(0)
    agent = _agent(policy_warmup_updates=3, critic_actor_ratio=1)
    frozen = {name: {k: v.clone() for k, v in getattr(agent, name).state_dict().items()} for name in ("encoder", "actor")}
    critic = {k: v.clone() for k, v in agent.critic.state_dict().items()}
    for step in range(3):
        metrics = agent.update(_batch(step), step)
        assert "actor_loss" not in metrics and torch.isfinite(metrics["critic_loss"])
    for name, state in frozen.items():
        for key, value in getattr(agent, name).state_dict().items():
            assert torch.equal(value, state[key]), f"{name}.{key} moved during warm-up"
    assert any(not torch.equal(v, critic[k]) for k, v in agent.critic.state_dict().items())
    metrics = agent.update(_batch(9), 3)   # warm-up over: the full update, actor included
    assert "actor_loss" in metrics
    assert any(not torch.equal(v, frozen["actor"][k]) for k, v in agent.actor.state_dict().items())


def test_online_learner_starts_from_a_policy_and_a_resume_keeps_its_own_weights(tmp_path):
    torch.manual_seed(0)
    trained = _agent()
    folder = _exported(tmp_path, trained)
    config = AgentConfig.preset("serl", **SHAPES)
    learner = OnlineLearner(config, str(tmp_path / "online"), init_policy=folder)
    reference = _agent()
    load_policy(reference, folder)
    for key, value in learner.agent.actor.state_dict().items():
        assert torch.equal(value, reference.actor.state_dict()[key])
    # a run directory with a checkpoint resumes from it, not from the policy
    with torch.no_grad():
        for parameter in learner.agent.actor.parameters():
            parameter.add_(1.0)
    learner.save()
    resumed = OnlineLearner(config, str(tmp_path / "online"), init_policy=folder)
    for key, value in resumed.agent.actor.state_dict().items():
        assert torch.equal(value, learner.agent.actor.state_dict()[key])


def test_export_command_line_records_provenance(tmp_path, capsys):
    save_checkpoint(str(tmp_path / "run" / "checkpoint.pt"), _agent(), TrainingCounters(50, 10, 1))
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "p"), "--set", "reward=embedded"]) == 0
    assert "MB)" in capsys.readouterr().out
    info = json.loads((tmp_path / "p" / "policy.json").read_text())
    assert info["reward"] == "embedded" and info["episodes"] == 1
    assert AgentConfig.from_yaml(str(tmp_path / "p" / "agent.yaml")).feature_dim == 24


def test_the_shipped_reach_policy_loads_into_the_demo_agent_and_acts():
    config = AgentConfig.preset("serl", **architecture_overrides("policy-reach-v3"))
    agent = DrQV2Agent(config)
    info = load_policy(agent, "policy-reach-v3")
    assert info["task"] == "reach-v3" and info["reward"] == "oracle"
    rng = np.random.default_rng(0)
    obs = {"shoulder": rng.integers(0, 256, (3, 64, 64), dtype=np.uint8),
           "wrist": rng.integers(0, 256, (3, 64, 64), dtype=np.uint8), "proprio": np.zeros(8, np.float32)}
    action = agent.act(obs, 0, eval_mode=True)
    assert action.shape == (7,) and np.all(np.abs(action) <= 1.0)
