"""Agent presets carry the published values; configs validate, round-trip through YAML and reject unknown keys."""
import pytest

from sole_r1_rl.config import AgentConfig


def test_drqv2_preset_matches_the_published_medium_config():
    # facebookresearch/drqv2 cfgs/config.yaml + cfgs/task/medium.yaml, written out by hand
    config = AgentConfig.preset("drqv2")
    assert (config.lr, config.feature_dim, config.hidden_dim, config.critic_target_tau) == (1e-4, 50, 1024, 0.01)
    assert (config.stddev_schedule, config.stddev_clip) == ("linear(1.0,0.1,500000)", 0.3)
    assert (config.nstep, config.discount, config.batch_size, config.update_every_steps) == (3, 0.99, 256, 2)
    assert (config.num_critics, config.critic_subsample, config.actor_q) == (2, None, "min")
    assert (config.image_size, config.frame_stack, config.aug_pad, config.num_expl_steps) == (84, 3, 4, 2000)
    assert config.num_seed_steps == 2000 and config.replay_capacity == 1_000_000


def test_serl_preset_matches_the_published_drq_launcher():
    # rail-berkeley/serl make_drq_agent + examples/async_drq_sim flags, written out by hand
    config = AgentConfig.preset("serl")
    assert (config.num_critics, config.critic_subsample, config.critic_actor_ratio) == (10, 2, 4)
    assert (config.lr, config.critic_target_tau, config.discount, config.batch_size) == (3e-4, 0.005, 0.96, 256)
    assert (config.hidden_dim, config.mlp_activation, config.mlp_layer_norm, config.actor_q) == (256, "tanh", True,
                                                                                                  "mean")
    assert (config.image_size, config.nstep, config.num_expl_steps, config.num_seed_steps) == (128, 1, 300, 300)


def test_yaml_round_trip_and_preset_with_overrides(tmp_path):
    path = tmp_path / "agent.yaml"
    AgentConfig.preset("serl", batch_size=64, device="cpu").to_yaml(str(path))
    assert AgentConfig.from_yaml(str(path)) == AgentConfig.preset("serl", batch_size=64)
    short = tmp_path / "short.yaml"
    short.write_text("agent:\n  preset: drqv2\n  lr: 0.0003\n  cameras: [wrist]\n")
    loaded = AgentConfig.from_yaml(str(short))
    assert loaded.lr == 3e-4 and loaded.cameras == ("wrist",) and loaded.hidden_dim == 1024


def test_unknown_keys_and_bad_values_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown agent config key.*'lrr'"):
        AgentConfig.preset("drqv2", lrr=1e-3)
    with pytest.raises(ValueError, match="unknown agent preset"):
        AgentConfig.preset("sac")
    with pytest.raises(ValueError, match="critic_subsample"):
        AgentConfig(num_critics=2, critic_subsample=3)
    with pytest.raises(ValueError, match="schedule"):
        AgentConfig(stddev_schedule="exp(1,2)")
    with pytest.raises(ValueError, match="image_size"):
        AgentConfig(image_size=8)
    with pytest.raises(ValueError, match="device"):
        AgentConfig(device="tpu")
    with pytest.raises(FileNotFoundError, match="not found"):
        AgentConfig.from_yaml(str(tmp_path / "none.yaml"))
