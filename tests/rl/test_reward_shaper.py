"""Rewards from progress estimates: hold_last / interpolate, progress / delta, invalid estimates never rewarded."""
import math
import random

import pytest

from sole_r1_rl.reward import ProgressRewardShaper, RewardConfig


def _run(config, estimates, steps=10):
    """Feed `steps` steps; after step i an estimate of frame i+1 arrives if listed. Returns rewards by step."""
    shaper = ProgressRewardShaper(config)
    released = []
    for i in range(steps):
        shaper.add_step(i)
        if i + 1 in estimates:
            progress, valid = estimates[i + 1]
            shaper.add_estimate(i + 1, progress, valid)
        released += shaper.ready()
    released += shaper.end_episode()
    assert [step for step, _ in released] == sorted(step for step, _ in released)  # always in step order
    return dict(released), shaper


# valid estimates 50 % at frame 5 and 20 % at frame 10, frame 0 is 0 % (official convention); rewards by hand:
INTERPOLATED = [0.1, 0.2, 0.3, 0.4, 0.5, 0.44, 0.38, 0.32, 0.26, 0.2]      # p(i+1)/100 on the line 0->50->20
HELD = [0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.2]                 # latest estimate at or before i+1
INTERPOLATED_DELTA = [0.1] * 5 + [-0.06] * 5                               # change of the interpolated line
HELD_DELTA = [0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, -0.3]


@pytest.mark.parametrize("mode,reward,expected", [
    ("interpolate", "progress", INTERPOLATED), ("hold_last", "progress", HELD),
    ("interpolate", "delta", INTERPOLATED_DELTA), ("hold_last", "delta", HELD_DELTA)])
def test_shaper_modes_match_hand_computed_rewards(mode, reward, expected):
    rewards, shaper = _run(RewardConfig(mode=mode, kind=reward), {5: (50.0, True), 10: (20.0, True)})
    assert [rewards[i] for i in range(10)] == pytest.approx(expected)
    assert shaper.stats["rewarded_steps"] == 10 and shaper.stats["dropped_steps"] == 0


def test_default_is_interpolated_progress_over_100_anchored_at_zero():
    config = RewardConfig()
    assert (config.mode, config.kind, config.scale, config.first_frame_progress) == ("interpolate", "progress",
                                                                                       0.01, 0.0)


def test_steps_wait_until_their_reward_is_fixed():
    shaper = ProgressRewardShaper(RewardConfig())
    for i in range(7):
        shaper.add_step(i)
    assert shaper.ready() == []                      # no estimate yet
    shaper.add_estimate(5, 50.0, True)
    assert [step for step, _ in shaper.ready()] == [0, 1, 2, 3, 4]
    assert shaper.ready() == []                      # steps 5, 6 need frames 6, 7: wait for the next estimate
    assert [step for step, _ in shaper.end_episode()] == [5, 6]   # episode end: they hold 50 %


def test_invalid_estimates_are_skipped_and_never_become_rewards():
    # an invalid answer carries the previous value (or garbage) forward; here 99 %, far above every valid one
    rewards, shaper = _run(RewardConfig(), {5: (99.0, False), 10: (40.0, True)})
    assert [rewards[i] for i in range(10)] == pytest.approx([0.04 * (i + 1) for i in range(10)])  # 0 -> 40 line
    assert shaper.stats["invalid_estimates"] == 1
    held, _ = _run(RewardConfig(mode="hold_last"), {5: (99.0, False), 10: (40.0, True)})
    assert [held[i] for i in range(10)] == pytest.approx([0.0] * 9 + [0.4])


def test_no_reward_is_ever_derived_from_an_invalid_value():
    generator = random.Random(0)
    for trial in range(200):
        estimates = {}
        for frame in range(3, 41, 3):
            valid = generator.random() < 0.6
            estimates[frame] = (generator.uniform(0, 50) if valid else generator.choice([77.0, float("nan")]), valid)
        for mode in ("interpolate", "hold_last"):
            rewards, _ = _run(RewardConfig(mode=mode), estimates, steps=40)
            assert all(0.0 <= r <= 0.5 + 1e-9 for r in rewards.values()), (trial, mode)


def test_without_a_frame0_anchor_steps_before_the_first_valid_estimate_are_dropped():
    rewards, shaper = _run(RewardConfig(first_frame_progress=None), {5: (50.0, True), 10: (20.0, True)})
    assert sorted(rewards) == [4, 5, 6, 7, 8, 9]
    assert [rewards[i] for i in range(4, 10)] == pytest.approx(INTERPOLATED[4:])
    assert shaper.stats["dropped_steps"] == 4


@pytest.mark.parametrize("anchor", [0.0, None])
def test_an_episode_without_any_valid_estimate_gives_no_transitions(anchor):
    rewards, shaper = _run(RewardConfig(first_frame_progress=anchor), {5: (10.0, False), 10: (20.0, False)})
    assert rewards == {} and shaper.stats["dropped_steps"] == 10 and shaper.stats["invalid_estimates"] == 2


def test_delta_rewards_sum_to_the_final_perceived_progress():
    rewards, _ = _run(RewardConfig(kind="delta"), {3: (10.0, True), 6: (-5.0, True), 9: (30.0, False),
                                                     10: (60.0, True)})
    assert sum(rewards.values()) == pytest.approx(0.6)


def test_out_of_order_and_non_finite_estimates_are_counted_and_ignored():
    shaper = ProgressRewardShaper(RewardConfig())
    for i in range(6):
        shaper.add_step(i)
    shaper.add_estimate(5, 50.0, True)
    shaper.add_estimate(3, 90.0, True)                 # older frame after a newer one
    shaper.add_estimate(6, math.inf, True)             # claims valid but is not a number
    assert shaper.stats["out_of_order_estimates"] == 1 and shaper.stats["invalid_estimates"] == 1
    assert [r for _, r in shaper.end_episode()] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.5])


def test_progress_outside_the_model_range_is_clamped_and_bad_configs_are_rejected():
    rewards, _ = _run(RewardConfig(), {10: (250.0, True)})
    assert rewards[9] == pytest.approx(1.0)
    for bad in (dict(mode="nearest"), dict(kind="log"), dict(scale=0.0), dict(first_frame_progress=150.0)):
        with pytest.raises(ValueError):
            RewardConfig(**bad)


def test_new_episode_counts_unreleased_steps_of_the_old_one_as_dropped():
    shaper = ProgressRewardShaper(RewardConfig())
    shaper.add_step("a")
    shaper.start_episode()
    assert shaper.stats["dropped_steps"] == 1
