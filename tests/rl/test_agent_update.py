"""DrQ-v2 agent: the critic learns hand-known values, targets track by soft updates, actors act in bounds,
and state_dict/load restores networks and optimisers."""
import numpy as np
import pytest
import torch

from .learner_testlib import fill_episode, tiny_config
from sole_r1_rl.agent import DrQV2Agent
from sole_r1_rl.replay import ReplayBuffer


def _terminal_replay(config, reward=1.0):
    replay = ReplayBuffer(config, seed=0)
    for episode in range(4):
        fill_episode(replay, config, episode, [reward], terminal=True)   # one-step episodes ending in a terminal
    return replay


@pytest.mark.parametrize("preset_overrides", [dict(), dict(num_critics=10, critic_subsample=2, actor_q="mean",
                                                           critic_actor_ratio=4, mlp_layer_norm=True,
                                                           mlp_activation="tanh")])
def test_critic_converges_to_the_reward_of_terminal_transitions(preset_overrides):
    # terminal one-step transitions: the right Q is exactly the reward (0.5), whatever the actor does
    torch.manual_seed(0)
    config = tiny_config(lr=1e-3, batch_size=16, **preset_overrides)
    agent, replay = DrQV2Agent(config), _terminal_replay(config, reward=0.5)
    for step in range(300):
        metrics = agent.update(replay.sample(16), step)
    assert float(metrics["critic_target_q"]) == pytest.approx(0.5)
    assert float(metrics["critic_q"]) == pytest.approx(0.5, abs=0.05)
    assert float(metrics["critic_loss"]) < 0.01 * config.num_critics


def test_target_critic_is_a_soft_copy_with_tau():
    torch.manual_seed(0)
    config = tiny_config(critic_target_tau=0.25)
    agent, replay = DrQV2Agent(config), _terminal_replay(config)
    before = [p.detach().clone() for p in agent.critic_target.parameters()]
    agent.update(replay.sample(8), 0)
    for old, online, target in zip(before, agent.critic.parameters(), agent.critic_target.parameters()):
        torch.testing.assert_close(target, 0.75 * old + 0.25 * online.detach())


def test_actor_updates_only_every_critic_actor_ratio_updates():
    torch.manual_seed(0)
    config = tiny_config(critic_actor_ratio=3)
    agent, replay = DrQV2Agent(config), _terminal_replay(config)
    updated = []
    for step in range(6):
        before = agent.actor.policy[-1].weight.detach().clone()
        metrics = agent.update(replay.sample(8), step)
        updated.append(not torch.equal(before, agent.actor.policy[-1].weight) and "actor_loss" in metrics)
    assert updated == [True, False, False, True, False, False]


def test_act_is_uniform_before_num_expl_steps_then_policy_in_bounds():
    torch.manual_seed(0)
    config = tiny_config(num_expl_steps=10)
    agent, replay = DrQV2Agent(config), _terminal_replay(config)
    batch = replay.sample(1)
    obs = {"shoulder": batch.obs["shoulder"][0], "wrist": batch.obs["wrist"][0], "proprio": batch.proprio[0]}
    random_actions = np.stack([agent.act(obs, 0) for _ in range(500)])
    assert random_actions.min() < -0.9 and random_actions.max() > 0.9 and abs(random_actions.mean()) < 0.1
    greedy = [agent.act(obs, 20, eval_mode=True) for _ in range(3)]
    assert all(np.array_equal(greedy[0], g) for g in greedy)              # eval mode: the mean, no noise
    noisy = np.stack([agent.act(obs, 20) for _ in range(50)])
    assert noisy.std(axis=0).min() > 0.1 and np.abs(noisy).max() < 1.0
    with pytest.raises(ValueError, match="proprio"):
        agent.act({**obs, "proprio": np.full(8, np.nan, np.float32)}, 20)


def test_state_dict_round_trip_restores_networks_optimisers_and_counter():
    torch.manual_seed(0)
    config = tiny_config()
    agent, replay = DrQV2Agent(config), _terminal_replay(config)
    for step in range(3):
        agent.update(replay.sample(8), step)
    torch.manual_seed(1)
    fresh = DrQV2Agent(config)
    fresh.load_state_dict(agent.state_dict())
    assert fresh.update_count == 3
    for mine, theirs in zip(fresh.encoder.parameters(), agent.encoder.parameters()):
        assert torch.equal(mine, theirs)
    batch = replay.sample(8)
    torch.manual_seed(5)
    a = agent.update(batch, 3)
    torch.manual_seed(5)
    b = fresh.update(batch, 3)
    assert float(a["critic_loss"]) == pytest.approx(float(b["critic_loss"]))
    for mine, theirs in zip(fresh.critic.parameters(), agent.critic.parameters()):
        torch.testing.assert_close(mine, theirs)   # same Adam moments -> same step
    with pytest.raises(ValueError, match="hidden_dim"):
        DrQV2Agent(tiny_config(hidden_dim=16)).load_state_dict(agent.state_dict())


def test_cuda_device_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="--device cpu"):
        DrQV2Agent(tiny_config(device="cuda"))
