"""RewardSession without ROS: frame-0 estimates, async skips, failures by kind, timeouts, lockstep order, resets."""
import time

import numpy as np
import pytest

from sole_r1_model.rewarders.oracle import OracleRewarder
from sole_r1_ros.logic.reward import stats as kinds
from sole_r1_ros.logic.reward.episode_frames import EXTERNAL, WRIST
from sole_r1_ros.logic.reward.session import RewarderCallError, RewardSession, RewardSessionConfig

from .peers.failing_rewarder import FailingRewarder, RecordingRewarder

MS = 1_000_000


class Published(list):
    """The estimates a session published, with a wait helper."""

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"only {len(self)} of {count} estimates after {timeout} s: {self}")
            time.sleep(0.01)


def make_session(rewarder, **config):
    published = Published()
    session = RewardSession(rewarder, RewardSessionConfig(task="Lift the cube", **config), published.append)
    return session, published


def add_pair(session, index: int, stamp_ms: int = None):
    stamp = (1000 + 100 * index if stamp_ms is None else stamp_ms) * MS
    image = np.full((8, 8, 3), index, np.uint8)
    session.add_frame(EXTERNAL, stamp, image)
    return session.add_frame(WRIST, stamp, image)


def wait_idle(session, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not session.worker.idle:
        assert time.monotonic() < deadline, "the worker never became idle"
        time.sleep(0.01)


def test_first_pair_is_zero_percent_without_a_model_call_then_answers_follow():
    rewarder = RecordingRewarder()
    session, published = make_session(rewarder)
    add_pair(session, 0)
    assert [(e.query_index, e.progress, e.valid, e.frames_used) for e in published] == [(0, 0.0, True, 1)]
    assert rewarder.calls == 0 and not session.request_query()        # nothing new to score yet
    add_pair(session, 1)
    add_pair(session, 2)
    assert session.request_query()
    published.wait_for(2)
    answer = published[1]
    assert answer.query_index == 1 and answer.progress == 10.0 and answer.valid
    assert answer.stamp_ns == 1200 * MS and answer.frames_used == 3 and answer.rewarder == "recording"
    assert not session.request_query()                                # the newest pair was scored already
    session.close()


def test_failures_publish_last_valid_progress_and_are_counted_by_kind():
    rewarder = FailingRewarder(["valid:40", "raise", "sleep:1.0", "garbage", "valid:70"])
    session, published = make_session(rewarder, query_timeout=0.3)
    add_pair(session, 0)
    for index in range(1, 6):
        add_pair(session, index)
        assert session.request_query()
        if index == 3:  # the sleeping call: time it out, then the worker stays busy until its late answer
            time.sleep(0.4)
            assert session.check_timeout()
            assert not session.request_query() and session.stats.skipped == 0  # no new pair yet: not a skip
            add_pair(session, 30, stamp_ms=1350)
            assert not session.request_query() and session.stats.skipped == 1
            wait_idle(session)
            continue
        published.wait_for(index + 1)
        wait_idle(session)
    published.wait_for(6)
    got = [(e.query_index, e.progress, e.valid, e.error_kind) for e in published[1:]]
    assert got == [(1, 40.0, True, ""), (2, 40.0, False, kinds.EXCEPTION), (3, 40.0, False, kinds.TIMEOUT),
                   (4, 40.0, False, kinds.INVALID_ANSWER), (5, 70.0, True, "")]
    # The rewarder always saw the last VALID answer as the previous progress.
    assert [q.previous_progress for q in rewarder.queries] == [0.0, 40.0, 40.0, 40.0, 40.0]
    snapshot = session.snapshot()
    assert snapshot.errors == {kinds.EXCEPTION: 1, kinds.TIMEOUT: 1, kinds.INVALID_ANSWER: 1}
    assert snapshot.invalid == 3 and snapshot.answers == 5 and snapshot.late_discarded == 1
    assert snapshot.last_valid and "RuntimeError: scripted" in published[2].error
    session.close()


def test_lockstep_scores_every_nth_pair_in_order_with_its_stamp():
    rewarder = FailingRewarder(["sleep:0.05"])  # slower than the frames: due pairs must queue, not be skipped
    session, published = make_session(rewarder, mode="lockstep", reward_every=3)
    for index in range(11):
        add_pair(session, index)
    published.wait_for(4)
    wait_idle(session)
    assert [e.query_index for e in published] == [0, 1, 2, 3]
    assert [e.stamp_ns for e in published] == [(1000 + 100 * i) * MS for i in (0, 3, 6, 9)]
    assert [int(q.external[2][0, 0, 0]) for q in rewarder.queries] == [3, 6, 9]       # current frames
    assert [int(q.external[1][0, 0, 0]) for q in rewarder.queries] == [0, 3, 6]       # previous = last scored
    session.close()


def test_new_episode_discards_the_old_answer_and_takes_the_new_task():
    rewarder = FailingRewarder(["sleep:0.3", "valid:20"])
    session, published = make_session(rewarder)
    add_pair(session, 0)
    add_pair(session, 1)
    assert session.request_query()
    assert session.start_episode(7, "Open the drawer")
    assert not session.start_episode(7, "Open the drawer")            # a repeated announcement changes nothing
    wait_idle(session)
    assert session.stats.late_discarded == 1 and len(published) == 1  # only episode 0's frame-0 estimate
    add_pair(session, 0, stamp_ms=50)
    add_pair(session, 1, stamp_ms=150)
    assert session.request_query()
    published.wait_for(3)
    assert [(e.episode_id, e.query_index, e.task) for e in published[1:]] == [
        (7, 0, "Open the drawer"), (7, 1, "Open the drawer")]
    assert rewarder.queries[-1].task == "Open the drawer" and rewarder.queries[-1].previous_progress == 0.0
    session.close()


def test_privileged_progress_reaches_only_a_privileged_rewarder():
    oracle, published = make_session(OracleRewarder(), mode="lockstep")
    perceptual = RecordingRewarder()
    other, _ = make_session(perceptual, mode="lockstep")
    for session in (oracle, other):
        for index in range(3):
            add_pair(session, index)
            # Like sim_bridge: the step's privileged progress comes just after its frames; the oracle waits for it.
            session.note_privileged((1000 + 100 * index) * MS, 30.0 * index)
    published.wait_for(3)
    assert [(e.progress, e.valid, e.privileged) for e in published] == [(0.0, True, True), (30.0, True, True),
                                                                         (60.0, True, True)]
    wait_idle(other)
    assert len(perceptual.queries) == 2 and all(q.privileged_progress is None for q in perceptual.queries)
    assert len(other._privileged) == 0                                # never even stored
    oracle.close()
    other.close()


def test_async_oracle_scores_the_newest_frame_whose_privileged_progress_is_known():
    session, published = make_session(OracleRewarder())
    for index in range(4):
        add_pair(session, index)
    session.note_privileged(1200 * MS, 25.0)                          # frame 3's value has not arrived yet
    assert session.request_query()
    published.wait_for(2)
    assert (published[1].stamp_ns, published[1].progress, published[1].valid) == (1200 * MS, 25.0, True)
    session.close()


def test_lockstep_oracle_without_privileged_progress_answers_invalid_after_the_timeout():
    session, published = make_session(OracleRewarder(), mode="lockstep", query_timeout=0.2)
    add_pair(session, 0)
    add_pair(session, 1)
    assert len(published) == 1                                        # waiting for the simulator's value
    time.sleep(0.3)
    session.check_timeout()
    published.wait_for(2)
    assert not published[1].valid and published[1].error_kind == kinds.EXCEPTION
    assert "privileged_progress" in published[1].error
    session.close()


def test_missing_task_gives_a_counted_invalid_estimate_without_a_model_call():
    rewarder = RecordingRewarder()
    published = Published()
    session = RewardSession(rewarder, RewardSessionConfig(task=""), published.append)
    add_pair(session, 0)
    add_pair(session, 1)
    assert not session.request_query()
    assert published[-1].error_kind == kinds.NO_TASK and not published[-1].valid and rewarder.calls == 0
    session.close()


def test_malformed_frames_are_counted_and_dropped():
    session, published = make_session(RecordingRewarder())
    assert session.add_frame(EXTERNAL, 1000 * MS, np.zeros((8, 8), np.uint8)) is None
    assert session.add_frame(WRIST, 1000 * MS, np.zeros((8, 8, 4), np.uint8)) is None
    assert session.snapshot().errors == {kinds.MALFORMED_IMAGE: 2} and published == []
    session.close()


def test_service_scoring_uses_first_second_to_last_and_last_frames():
    rewarder = FailingRewarder(["valid:55", "raise"])
    session, _ = make_session(rewarder)
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(5)]
    result = session.score_frames("Lift", frames, frames, previous_progress=12.0)
    assert result.valid and result.progress == 55.0
    query = rewarder.queries[-1]
    assert [int(f[0, 0, 0]) for f in query.external] == [0, 3, 4] and query.previous_progress == 12.0
    with pytest.raises(RewarderCallError, match="exception: the rewarder raised RuntimeError"):
        session.score_frames("Lift", frames, [], previous_progress=0.0)
    with pytest.raises(ValueError, match="at least 2 external frames"):
        session.score_frames("Lift", frames[:1], [], 0.0)
    with pytest.raises(ValueError, match="wrist_frames must be empty or as many"):
        session.score_frames("Lift", frames, frames[:2], 0.0)
    session.close()


@pytest.mark.parametrize("kwargs, message", [({"mode": "sync"}, "mode"), ({"reward_every": 0}, "reward_every"),
                                              ({"query_timeout": 0.0}, "query_timeout")])
def test_bad_session_config_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RewardSessionConfig(**kwargs)


def test_rewarder_options_override_the_resolved_config_and_bad_ones_are_named():
    from sole_r1_ros.logic.reward.rewarder_loading import load_rewarder

    rewarder = load_rewarder("openai", "{timeout_s: 5.0, max_new_tokens: 64}")
    assert rewarder.config.timeout_s == 5.0 and rewarder.config.max_new_tokens == 64
    assert rewarder.config.base_url == "http://127.0.0.1:8000/v1"      # the rest stays the backend's default
    rewarder.close()
    with pytest.raises(ValueError, match="unknown key 'timeout'"):
        load_rewarder("openai", "{timeout: 5}")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_rewarder("openai", "{timeout_s: [")
    with pytest.raises(ValueError, match="cannot change 'backend'"):
        load_rewarder("openai", "{backend: oracle}")


def test_frames_of_a_new_episode_that_arrive_before_its_announcement_are_kept():
    session, published = make_session(RecordingRewarder(), mode="lockstep", reward_every=2)
    for index in range(3):
        add_pair(session, index)                                      # episode 0: frames at 1000, 1100, 1200 ms
    published.wait_for(2)                                             # frame 0 and the lockstep answer of frame 2
    add_pair(session, 7, stamp_ms=5000)                               # the new episode's frame 0 came first ...
    assert session.start_episode(1, "Open the drawer", stamp_ns=4990 * MS)  # ... then its announcement
    add_pair(session, 8, stamp_ms=5100)
    add_pair(session, 9, stamp_ms=5200)
    published.wait_for(4)
    wait_idle(session)
    got = [(e.episode_id, e.query_index, e.stamp_ns // MS) for e in published]
    assert got[2:] == [(1, 0, 5000), (1, 1, 5200)]                    # frame 0 at 5000 ms, lockstep frame 2 at 5200
    assert published[2].task == published[3].task == "Open the drawer"
    session.close()
