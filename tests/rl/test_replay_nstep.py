"""n-step targets: hand-computed returns and discounts, episode ends (terminal vs truncated), frame stacks."""
import numpy as np
import pytest

from .learner_testlib import fill_episode, tiny_config
from sole_r1_rl.replay import ReplayBuffer

# rewards 1, 2, 3, 4 with discount 0.9 and nstep 3, written out by hand:
#   t=0: 1 + 0.9*2 + 0.81*3 = 5.23, bootstrap 0.9^3 = 0.729 from o_3
#   t=1: 2 + 0.9*3 + 0.81*4 = 7.94, reaches o_4 (the end) after 3 steps
#   t=2: 3 + 0.9*4          = 6.6,  reaches o_4 after 2 steps
#   t=3: 4                  = 4.0,  reaches o_4 after 1 step
HAND_REWARD = [5.23, 7.94, 6.6, 4.0]
HAND_NEXT_T = [3, 4, 4, 4]
TRUNCATED_DISCOUNT = [0.729, 0.729, 0.81, 0.9]   # time limit: bootstrap from o_4 with 0.9^k
TERMINAL_DISCOUNT = [0.729, 0.0, 0.0, 0.0]       # true terminal: no bootstrap once o_4 is reached


@pytest.mark.parametrize("terminal,discounts", [(False, TRUNCATED_DISCOUNT), (True, TERMINAL_DISCOUNT)])
def test_nstep_targets_match_hand_computed_values(terminal, discounts):
    config = tiny_config(discount=0.9, nstep=3)
    replay = ReplayBuffer(config)
    fill_episode(replay, config, 0, [1, 2, 3, 4], terminal=terminal)
    batch = replay.batch_at([0, 0, 0, 0], [0, 1, 2, 3])
    np.testing.assert_allclose(batch.reward[:, 0], HAND_REWARD, rtol=1e-6)
    np.testing.assert_allclose(batch.discount[:, 0], discounts, rtol=1e-6)
    np.testing.assert_array_equal(batch.next_proprio[:, 1], HAND_NEXT_T)   # proprio[1] encodes t
    np.testing.assert_array_equal(batch.proprio[:, 1], [0, 1, 2, 3])
    np.testing.assert_allclose(batch.action[:, 0], [0.0, 0.01, 0.02, 0.03], rtol=1e-6)


def test_frame_stack_repeats_the_first_frame_before_the_episode_start():
    config = tiny_config(frame_stack=3, nstep=1)
    replay = ReplayBuffer(config)
    fill_episode(replay, config, 0, [0.0] * 5)
    fill_episode(replay, config, 1, [0.0] * 5)
    batch = replay.batch_at([1, 1, 1], [0, 1, 3])
    # channel blocks are frames oldest..newest; pixel value = (37*episode + t) % 256
    blocks = batch.obs["shoulder"][:, ::3, 0, 0]
    np.testing.assert_array_equal(blocks, [[37, 37, 37], [37, 37, 38], [38, 39, 40]])
    next_blocks = batch.next_obs["wrist"][:, ::3, 0, 0]
    np.testing.assert_array_equal(next_blocks, [[37, 37, 38], [37, 38, 39], [39, 40, 41]])


def test_sampled_transitions_never_cross_episode_boundaries():
    config = tiny_config(discount=0.5, nstep=4, batch_size=64)
    replay = ReplayBuffer(config, seed=3)
    lengths = [1, 2, 3, 7, 5]
    for episode, length in enumerate(lengths):
        # reward of step t in episode e is 10*e + t, so a crossing would show up in the returns
        fill_episode(replay, config, episode, [10 * episode + t for t in range(length)], terminal=episode % 2 == 0)
    assert len(replay) == sum(lengths) and replay.num_episodes == len(lengths)
    for _ in range(20):
        batch = replay.sample(64)
        episode, t = batch.proprio[:, 0].astype(int), batch.proprio[:, 1].astype(int)
        next_episode, next_t = batch.next_proprio[:, 0].astype(int), batch.next_proprio[:, 1].astype(int)
        np.testing.assert_array_equal(next_episode, episode)
        for e, t0, t1, reward, discount in zip(episode, t, next_t, batch.reward[:, 0], batch.discount[:, 0]):
            k = min(4, lengths[e] - t0)
            assert t1 == t0 + k
            assert reward == pytest.approx(sum(0.5 ** i * (10 * e + t0 + i) for i in range(k)))
            ended_terminal = e % 2 == 0 and t1 == lengths[e]
            assert discount == pytest.approx(0.0 if ended_terminal else 0.5 ** k)


def test_open_episode_is_sampled_with_its_available_steps_and_bootstraps():
    config = tiny_config(discount=0.9, nstep=3)
    replay = ReplayBuffer(config)
    fill_episode(replay, config, 0, [1.0, 1.0], close=False)
    batch = replay.batch_at([0, 0], [0, 1])
    np.testing.assert_allclose(batch.reward[:, 0], [1.9, 1.0], rtol=1e-6)
    np.testing.assert_allclose(batch.discount[:, 0], [0.81, 0.9], rtol=1e-6)   # not terminal yet: bootstrap


def test_ring_evicts_whole_oldest_episodes_and_never_samples_them():
    config = tiny_config(replay_capacity=30, nstep=2)
    replay = ReplayBuffer(config, seed=0)
    for episode in range(6):
        fill_episode(replay, config, episode, [1.0] * 9)          # 10 frames each
    assert replay.num_episodes == 3 and len(replay) == 27
    sampled = {int(e) for _ in range(20) for e in replay.sample(32).proprio[:, 0]}
    assert sampled == {3, 4, 5}
    with pytest.raises(ValueError, match="replay_capacity"):
        fill_episode(replay, config, 9, [1.0] * 40)


def test_sampling_an_empty_replay_says_what_to_do():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(tiny_config()).sample(4)


def test_bad_actions_and_rewards_are_rejected_with_clear_errors():
    config = tiny_config()
    replay = ReplayBuffer(config)
    frame = {"shoulder": np.zeros((3, 16, 16), np.uint8), "wrist": np.zeros((3, 16, 16), np.uint8),
             "proprio": np.zeros(8, np.float32)}
    with pytest.raises(ValueError, match="finite"):
        replay.add(frame, np.full(7, np.nan), 0.0, frame)
    with pytest.raises(ValueError, match="reward"):
        replay.add(frame, np.zeros(7), float("inf"), frame)
