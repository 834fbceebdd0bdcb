"""Actor exploration noise follows its schedule and clip; the critic target takes min over a REDQ random subset."""
import pytest
import torch

from .learner_testlib import tiny_config
from sole_r1_rl.networks import Actor, CriticEnsemble, TruncatedNormal, target_min
from sole_r1_rl.schedule import parse_schedule


def test_linear_schedule_matches_hand_values():
    schedule = parse_schedule("linear(1.0,0.1,500000)")
    assert schedule(0) == pytest.approx(1.0)
    assert schedule(250_000) == pytest.approx(0.55)
    assert schedule(500_000) == pytest.approx(0.1)
    assert schedule(2_000_000) == pytest.approx(0.1)
    assert parse_schedule("0.2")(123) == pytest.approx(0.2)
    two_piece = parse_schedule("step_linear(1.0,0.5,100,0.1,100)")
    assert two_piece(50) == pytest.approx(0.75) and two_piece(150) == pytest.approx(0.3)


def test_bad_schedule_strings_name_the_accepted_forms():
    for bad in ("linear(1,0.1)", "cosine(1,0,10)", "linear(1,0.1,0)"):
        with pytest.raises(ValueError, match="linear|duration"):
            parse_schedule(bad)


def test_actor_noise_std_follows_schedule_and_clip_bounds_the_noise():
    config = tiny_config()
    actor = Actor(repr_dim=20, config=config)
    features, proprio = torch.randn(4096, 20), torch.randn(4096, 8)
    schedule = parse_schedule(config.stddev_schedule)
    for step, expected in ((0, 1.0), (250_000, 0.55), (600_000, 0.1)):
        dist = actor(features, proprio, schedule(step))
        assert dist.stddev == pytest.approx(expected)
    # with a small std the clamp to [-1, 1] rarely binds, so the empirical noise std shows the scheduled value
    mean = torch.zeros(20000, 7)
    noise = TruncatedNormal(mean, 0.1).sample() - mean
    assert noise.std().item() == pytest.approx(0.1, rel=0.05)
    clipped = TruncatedNormal(mean, 1.0).sample(clip=0.3) - mean
    assert clipped.abs().max().item() <= 0.3 + 1e-6 and clipped.std().item() > 0.2
    actions = TruncatedNormal(torch.full((1000, 7), 0.95), 1.0).sample()
    assert actions.max().item() < 1.0 and actions.min().item() > -1.0


def test_clamped_sample_passes_gradient_to_the_mean():
    loc = torch.zeros(3, 7, requires_grad=True)
    TruncatedNormal(loc, 0.5).sample(clip=0.3).sum().backward()
    assert torch.equal(loc.grad, torch.ones(3, 7))


def test_redq_target_is_min_over_a_subset_of_distinct_members_drawn_from_the_generator():
    q = torch.arange(10, dtype=torch.float32).unsqueeze(1).repeat(1, 3)  # member n predicts n everywhere
    draws = [target_min(q, 2, torch.Generator().manual_seed(seed)) for seed in range(3000)]
    values = torch.stack(draws)[:, 0]
    # same generator state -> same subset
    assert torch.equal(target_min(q, 2, torch.Generator().manual_seed(7)), target_min(q, 2, torch.Generator().manual_seed(7)))
    assert len({tuple(d.tolist()) for d in draws[:50]}) > 3   # different generator states, different subsets
    # P(member 0 in a 2-of-10 subset) = 0.2; min = 9 would need the same member twice (impossible without replacement)
    assert (values == 0).float().mean().item() == pytest.approx(0.2, abs=0.03)
    assert not (values == 9).any()
    # one subset per call, shared by the whole batch: with q[n, b] = n + 100 b every column picks the same member
    spread = torch.arange(10, dtype=torch.float32)[:, None] + 100 * torch.arange(3, dtype=torch.float32)[None, :]
    for seed in range(20):
        members = target_min(spread, 2, torch.Generator().manual_seed(seed)) - 100 * torch.arange(3)
        assert len(set(members.tolist())) == 1


def test_twin_q_target_is_the_min_of_both_critics():
    q = torch.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, 3.5]])
    assert torch.equal(target_min(q, None), torch.tensor([0.5, -2.0, 3.0]))


@pytest.mark.parametrize("preset,members", [("drqv2", 2), ("serl", 10)])
def test_critic_ensemble_members_are_independent(preset, members):
    config = tiny_config(num_critics=members, critic_subsample=2 if members > 2 else None,
                         mlp_layer_norm=preset == "serl")
    critic = CriticEnsemble(repr_dim=12, config=config)
    q = critic(torch.randn(5, 12), torch.randn(5, 8), torch.rand(5, 7) * 2 - 1)
    assert q.shape == (members, 5)
    assert len({round(v, 5) for v in q[:, 0].tolist()}) == members  # different init per member
