"""ActorLoop logic: observation pairing, act timing, control periods, reward matching, episodes, e-stop, scale."""
from __future__ import annotations

import types

import numpy as np
import pytest

from sole_r1_ros.logic.actor_loop import ActorLoop, ActorLoopConfig, EpisodeChange, EpisodeEvent

ACTION = np.array([0.5, -0.5, 1.0, 0.1, 0.0, -0.1, 1.0], np.float32)
QUATERNION = (0.0, 0.0, 0.0, 1.0)


class FakeClock:
    """Injected clock: seconds, set by the test."""

    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeLearner:
    """The OnlineLearner methods the loop drives, recording every call."""

    def __init__(self) -> None:
        self.in_episode = False
        self.counters = types.SimpleNamespace(env_steps=0)
        self.episode_step = 0
        self.begun: list = []       # frames of each begin_episode
        self.observed: list = []    # (previous action, frames) of each observe
        self.acts = 0
        self.estimates: list = []   # (frame index, progress, valid)
        self.ended: list = []       # terminated flag of each end_episode of an episode in progress
        self.aborted = 0
        self.saves = 0

    def begin_episode(self, frames: dict) -> None:
        self.begun.append(frames)
        self.in_episode, self.episode_step = True, 0

    def observe(self, action, frames: dict) -> int:
        self.observed.append((action, frames))
        self.episode_step += 1
        self.counters.env_steps += 1
        return self.episode_step

    def act(self) -> np.ndarray:
        self.acts += 1
        return ACTION.copy()

    def add_estimate(self, frame_index: int, progress: float, valid: bool) -> None:
        self.estimates.append((frame_index, progress, valid))

    def end_episode(self, terminated: bool) -> None:
        if self.in_episode:
            self.ended.append(terminated)
            self.in_episode = False

    def abort_episode(self) -> None:
        if self.in_episode:
            self.aborted += 1
            self.in_episode = False

    def save(self) -> None:
        self.saves += 1


def make_loop(mode: str = "lockstep", episode: int | None = 1, clock=None, **config):
    config = {"translation_scale": 0.02, "rotation_scale": 0.1, **config}
    learner = FakeLearner()
    loop = ActorLoop(learner, ActorLoopConfig(mode=mode, **config), cameras=("shoulder", "wrist"),
                     clock=clock or FakeClock())
    if episode is not None:
        loop.on_episode(EpisodeEvent.STARTED, episode)
    return loop, learner


def frame(value: int = 0) -> np.ndarray:
    return np.full((3, 4, 4), value, np.uint8)


def images(loop: ActorLoop, stamp: int):
    """Both cameras at `stamp`; returns what the second one's arrival returned."""
    loop.on_camera("shoulder", stamp, frame(1))
    return loop.on_camera("wrist", stamp, frame(2))


def observation(loop: ActorLoop, stamp: int, position=(0.4, 0.0, 0.3)):
    """A lockstep observation: pose and both cameras with one stamp."""
    loop.on_pose(stamp, np.array(position), np.array(QUATERNION))
    return images(loop, stamp)


def test_lockstep_pairs_images_with_the_pose_of_the_same_stamp():
    loop, learner = make_loop("lockstep")
    loop.on_pose(10, np.array([0.1, 0.1, 0.1]), np.array(QUATERNION))
    loop.on_pose(20, np.array([0.2, 0.2, 0.2]), np.array(QUATERNION))
    assert images(loop, 10) is not None   # lockstep acts on every completed observation, no timer needed
    np.testing.assert_allclose(learner.begun[0]["proprio"], [0.1, 0.1, 0.1, *QUATERNION, 1.0])
    out = images(loop, 20)
    assert out.stamp_ns == 20
    np.testing.assert_allclose(learner.observed[0][1]["proprio"][:3], [0.2, 0.2, 0.2])
    assert images(loop, 30) is None       # no pose with that stamp yet
    assert loop.on_pose(30, np.array([0.3, 0.3, 0.3]), np.array(QUATERNION)).stamp_ns == 30


def test_realtime_pairs_images_with_the_newest_pose_and_acts_on_the_tick():
    loop, learner = make_loop("realtime")
    loop.on_gripper(0.04)
    assert loop.on_pose(5, np.array([0.1, 0.1, 0.1]), np.array(QUATERNION)) is None
    loop.on_pose(7, np.array([0.2, 0.2, 0.2]), np.array(QUATERNION))
    assert images(loop, 9) is None        # complete, but realtime acts on the timer
    out = loop.tick()
    assert out.stamp_ns == 9 and out.command.episode_id == 1
    np.testing.assert_allclose(learner.begun[0]["proprio"], [0.2, 0.2, 0.2, *QUATERNION, 0.04])
    np.testing.assert_allclose(out.command.translation, ACTION[:3] * 0.02)
    np.testing.assert_allclose(out.command.rotation, ACTION[3:6] * 0.1)
    assert out.command.gripper == pytest.approx(1.0)


def test_more_than_eight_incomplete_observations_drop_the_oldest_and_are_counted():
    loop, _ = make_loop("lockstep")
    for stamp in range(1, 11):
        loop.on_camera("shoulder", stamp, frame())
    assert loop.counts["incomplete_observations"] == 2

    def wrist_and_pose(stamp):
        loop.on_pose(stamp, np.zeros(3), np.array(QUATERNION))
        return loop.on_camera("wrist", stamp, frame())

    assert wrist_and_pose(3).stamp_ns == 3       # kept: completes
    assert wrist_and_pose(1) is None             # dropped: its shoulder frame is gone
    assert loop.counts["incomplete_observations"] == 2


def test_non_finite_proprio_is_counted_and_never_acted_on():
    loop, learner = make_loop("lockstep")
    assert observation(loop, 1, position=(0.4, np.nan, 0.3)) is None
    assert loop.counts["bad_proprio"] == 1 and learner.acts == 0


def test_no_action_without_an_observation_or_an_episode():
    loop, learner = make_loop("realtime", episode=None)
    assert loop.tick() is None
    loop.on_pose(1, np.zeros(3), np.array(QUATERNION))
    images(loop, 1)
    assert loop.tick() is None and learner.acts == 0
    loop.on_episode(EpisodeEvent.STARTED, 1)
    assert loop.tick().stamp_ns == 1


def test_realtime_tick_without_new_observation_acts_once_when_the_next_completes():
    clock = FakeClock(0.0)
    loop, learner = make_loop("realtime", clock=clock, control_rate=10.0)
    loop.on_pose(0, np.zeros(3), np.array(QUATERNION))
    images(loop, 1)
    assert loop.tick().stamp_ns == 1
    clock.t = 0.1
    assert loop.tick() is None                   # nothing new: due
    clock.t = 0.13
    assert images(loop, 2).stamp_ns == 2         # acts as soon as it completes, not at the next tick
    clock.t = 0.15
    assert images(loop, 3) is None               # due was answered: the next one waits for the timer
    clock.t = 0.2
    assert loop.tick().stamp_ns == 3
    assert learner.acts == 3


def test_realtime_acts_at_most_once_within_half_a_period():
    clock = FakeClock(0.0)
    loop, learner = make_loop("realtime", clock=clock, control_rate=10.0)
    loop.on_pose(0, np.zeros(3), np.array(QUATERNION))
    images(loop, 1)
    loop.tick()
    clock.t = 0.1
    loop.tick()
    clock.t = 0.18
    assert images(loop, 2) is not None           # a late action answering the 0.1 s tick
    clock.t = 0.2
    assert loop.tick() is None                   # 20 ms after that action: this tick is already answered
    clock.t = 0.21
    assert images(loop, 3) is None               # so a fast camera stream does not act twice per period
    clock.t = 0.3
    assert loop.tick().stamp_ns == 3
    assert learner.acts == 3


def test_lockstep_acts_on_every_completed_observation():
    loop, learner = make_loop("lockstep")
    assert [observation(loop, s).stamp_ns for s in (1, 2, 3)] == [1, 2, 3]
    assert learner.acts == 3 and len(learner.observed) == 2


def test_control_periods_are_recorded_between_actions_but_not_across_resets():
    clock = FakeClock(0.0)
    loop, _ = make_loop("lockstep", clock=clock)
    observation(loop, 1)
    clock.t = 0.1
    observation(loop, 2)
    loop.on_episode(EpisodeEvent.ENDED, 1, "time_limit")
    loop.on_episode(EpisodeEvent.STARTED, 2)
    clock.t = 5.0
    observation(loop, 3)                         # first action of the new episode: the reset is no period
    clock.t = 5.2
    observation(loop, 4)
    assert list(loop.periods) == pytest.approx([0.1, 0.2])


def test_estimates_are_matched_to_acted_frames_by_stamp_and_unmatched_ones_counted():
    loop, learner = make_loop("lockstep")
    for stamp in (100, 200, 300):
        observation(loop, stamp)
    loop.on_progress(1, 200, query_index=1, progress=40.0, valid=True)
    loop.on_progress(1, 300, query_index=2, progress=35.0, valid=False)
    loop.on_progress(1, 250, query_index=3, progress=50.0, valid=True)   # a frame the actor never acted on
    loop.on_progress(7, 300, query_index=4, progress=50.0, valid=True)   # another episode
    loop.on_progress(1, 100, query_index=0, progress=0.0, valid=True)    # frame 0: anchored by the shaper
    assert learner.estimates == [(1, 40.0, True), (2, 35.0, False)]
    assert loop.counts["valid_estimates"] == 1 and loop.counts["invalid_estimates"] == 1
    assert loop.counts["unmatched_estimates"] == 2


def test_a_step_of_a_missed_episode_joins_it_mid_way():
    loop, learner = make_loop("lockstep", episode=None)
    assert loop.on_episode(EpisodeEvent.STEP, 4) == EpisodeChange.JOINED
    assert loop.on_episode(EpisodeEvent.STEP, 4) == EpisodeChange.NONE
    assert loop.episode_id == 4 and observation(loop, 1).command.episode_id == 4
    assert loop.on_episode(EpisodeEvent.ENDED, 4, "time_limit") == EpisodeChange.ENDED
    assert loop.on_episode(EpisodeEvent.STEP, 4) == EpisodeChange.NONE   # a late STEP never rejoins an ended one
    assert loop.episode_id is None


def test_a_new_episode_truncates_the_one_in_progress():
    loop, learner = make_loop("lockstep")
    observation(loop, 1)
    assert loop.on_episode(EpisodeEvent.STARTED, 2) == EpisodeChange.STARTED
    assert learner.ended == [False] and loop.episode_id == 2


@pytest.mark.parametrize("reason, terminated", [("progress_threshold", True), ("time_limit", False)])
def test_ended_is_terminal_only_for_progress_threshold(reason, terminated):
    loop, learner = make_loop("lockstep")
    observation(loop, 1)
    assert loop.on_episode(EpisodeEvent.ENDED, 1, reason) == EpisodeChange.ENDED
    assert learner.ended == [terminated] and loop.episode_id is None


def test_ended_by_estop_aborts_the_episode():
    loop, learner = make_loop("lockstep")
    observation(loop, 1)
    assert loop.on_episode(EpisodeEvent.ENDED, 1, "estop") == EpisodeChange.ABORTED
    assert learner.aborted == 1 and learner.ended == [] and loop.episode_id is None


def test_ended_of_another_episode_changes_nothing():
    loop, learner = make_loop("lockstep")
    observation(loop, 1)
    assert loop.on_episode(EpisodeEvent.ENDED, 9, "time_limit") == EpisodeChange.NONE
    assert loop.episode_id == 1 and learner.in_episode


def test_estop_latch_drops_the_episode_and_blocks_acting_until_released():
    loop, learner = make_loop("realtime")
    loop.on_pose(0, np.zeros(3), np.array(QUATERNION))
    images(loop, 1)
    loop.tick()
    assert loop.on_estop(True) and loop.estopped and learner.aborted == 1
    assert not loop.on_estop(True)               # no change: nothing more to log
    images(loop, 2)
    assert loop.tick() is None and learner.acts == 1
    loop.on_episode(EpisodeEvent.ENDED, 1, "estop")
    assert loop.on_estop(False) and not loop.estopped
    loop.on_episode(EpisodeEvent.STARTED, 2)
    assert loop.tick().command.episode_id == 2 and len(learner.begun) == 2


def test_unknown_action_scale_blocks_acting_until_the_bridge_sends_it():
    loop, learner = make_loop("realtime", translation_scale=-1.0, rotation_scale=-1.0)
    loop.on_pose(0, np.zeros(3), np.array(QUATERNION))
    images(loop, 1)
    assert not loop.action_scale_known and loop.tick() is None and learner.acts == 0
    assert not loop.on_action_scale([0.02, float("nan")]) and not loop.on_action_scale([0.02])
    assert loop.on_action_scale([0.02, 0.1])
    out = loop.tick()
    np.testing.assert_allclose(out.command.translation, ACTION[:3] * 0.02)
    np.testing.assert_allclose(out.command.rotation, ACTION[3:6] * 0.1)


def test_configured_action_scale_wins_over_the_bridge():
    loop, _ = make_loop("realtime", translation_scale=0.05, rotation_scale=-1.0)
    assert loop.on_action_scale([0.02, 0.1]) and loop.action_scale == (0.05, 0.1)


def test_checkpoint_is_saved_at_an_episode_end_every_checkpoint_every_steps():
    loop, learner = make_loop("lockstep", checkpoint_every=3)
    for stamp in range(1, 4):                    # 1 begin + 2 observed steps
        observation(loop, stamp)
    loop.on_episode(EpisodeEvent.ENDED, 1, "time_limit")
    assert learner.saves == 0
    loop.on_episode(EpisodeEvent.STARTED, 2)
    for stamp in range(4, 6):
        observation(loop, stamp)
    loop.on_episode(EpisodeEvent.ENDED, 2, "time_limit")
    assert learner.counters.env_steps == 3 and learner.saves == 1
