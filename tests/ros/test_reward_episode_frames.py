"""EpisodeFrames: pairing by stamp, bounded memory that keeps first/previous/newest, queries and episode reset."""
import numpy as np
import pytest

from sole_r1_ros.logic.reward.episode_frames import EXTERNAL, WRIST, EpisodeFrames, EpisodeFramesConfig

MS = 1_000_000  # nanoseconds


def frame(value: int) -> np.ndarray:
    """A small RGB frame whose pixels all equal `value`, so tests can tell frames apart."""
    return np.full((6, 8, 3), value, np.uint8)


def add_pair(buffer: EpisodeFrames, value: int, stamp_ms: int, wrist_offset_ms: int = 0):
    buffer.add(EXTERNAL, stamp_ms * MS, frame(value))
    return buffer.add(WRIST, (stamp_ms + wrist_offset_ms) * MS, frame(value + 100))


def values(frames) -> list[int]:
    return [int(f[0, 0, 0]) for f in frames]


def test_frames_pair_within_tolerance_in_either_arrival_order():
    buffer = EpisodeFrames(EpisodeFramesConfig(pair_tolerance=0.01))
    assert buffer.add(WRIST, 1000 * MS, frame(101)) is None          # waits for its shoulder partner
    pair = buffer.add(EXTERNAL, 1005 * MS, frame(1))                 # 5 ms apart: a pair
    assert pair is not None and pair.index == 0 and pair.stamp_ns == 1005 * MS
    assert int(pair.external[0, 0, 0]) == 1 and int(pair.wrist[0, 0, 0]) == 101
    assert buffer.add(EXTERNAL, 1100 * MS, frame(2)) is None
    assert buffer.add(WRIST, 1150 * MS, frame(102)) is None           # 50 ms apart: no pair
    assert buffer.frames_seen == 1 and buffer.frames_held == 4         # one pair + two waiting frames


def test_closest_partner_is_chosen_and_older_waiting_frames_are_dropped():
    buffer = EpisodeFrames(EpisodeFramesConfig(pair_tolerance=0.02))
    for value, stamp in ((1, 1000), (2, 1010), (3, 1030)):
        buffer.add(WRIST, stamp * MS, frame(100 + value))
    pair = buffer.add(EXTERNAL, 1012 * MS, frame(9))
    assert int(pair.wrist[0, 0, 0]) == 102                              # 2 ms away beats 12 ms and 18 ms
    assert buffer.dropped_unpaired == 1                                 # the 1000 ms wrist frame can never pair
    assert buffer.frames_held == 3                                      # the pair + the 1030 ms frame


def test_frames_older_than_the_newest_pair_are_dropped():
    buffer = EpisodeFrames()
    add_pair(buffer, 1, 1000)
    assert buffer.add(EXTERNAL, 900 * MS, frame(2)) is None
    assert buffer.dropped_out_of_order == 1 and buffer.frames_seen == 1


def test_memory_is_bounded_but_keeps_first_previous_and_newest():
    buffer = EpisodeFrames(EpisodeFramesConfig(max_frames=4))
    for i in range(3):
        add_pair(buffer, i, 1000 + 100 * i)
    buffer.next_query("lift")                                          # pair 2 becomes the previous-query pair
    for i in range(3, 12):
        add_pair(buffer, i, 1000 + 100 * i)
    kept = [p.index for p in buffer.pairs]
    assert len(kept) == 4
    assert kept[0] == 0 and 2 in kept and kept[-1] == 11               # first, previous, newest survive
    assert kept == [0, 2, 10, 11]                                      # the rest: the most recent ones
    query = buffer.next_query("lift")
    assert values(query.external) == [0, 2, 11] and values(query.wrist) == [100, 102, 111]


def test_queries_use_first_previous_current_and_the_last_valid_progress():
    buffer = EpisodeFrames()
    add_pair(buffer, 0, 1000)
    assert not buffer.has_unscored_pair()                              # frame 0 needs no model call
    with pytest.raises(ValueError, match="frame 0"):
        buffer.next_query("lift")
    add_pair(buffer, 1, 1100)
    add_pair(buffer, 2, 1200)
    first = buffer.next_query("lift")
    assert values(first.external) == [0, 0, 2]                         # at the first call previous == first
    assert first.query_index == 1 and first.previous_progress == 0.0 and first.stamp == pytest.approx(1.2)
    assert not buffer.has_unscored_pair()
    assert buffer.record_answer(35.0, valid=True) == 35.0
    add_pair(buffer, 3, 1300)
    second = buffer.next_query("lift")
    assert values(second.external) == [0, 2, 3] and second.query_index == 2 and second.previous_progress == 35.0
    assert buffer.record_answer(-80.0, valid=False) == 35.0            # invalid: the last valid value stays
    add_pair(buffer, 4, 1400)
    third = buffer.next_query("lift", privileged_progress=12.5)
    assert third.previous_progress == 35.0 and third.privileged_progress == 12.5


def test_reset_starts_a_new_episode_from_frame_zero():
    buffer = EpisodeFrames()
    for i in range(3):
        add_pair(buffer, i, 1000 + 100 * i)
    buffer.next_query("lift")
    buffer.record_answer(50.0, True)
    buffer.add(WRIST, 5000 * MS, frame(7))
    buffer.reset()
    assert buffer.pairs == [] and buffer.frames_held == 0 and buffer.queries == 0
    assert buffer.last_valid_progress == 0.0 and buffer.previous is None
    pair = add_pair(buffer, 9, 500)                                    # earlier stamps are fine after a reset
    assert pair.index == 0


def test_external_only_mode_makes_a_pair_from_each_shoulder_frame():
    buffer = EpisodeFrames(EpisodeFramesConfig(use_wrist=False))
    assert buffer.add(WRIST, 1000 * MS, frame(100)) is None
    assert buffer.add(EXTERNAL, 1000 * MS, frame(0)).wrist is None
    buffer.add(EXTERNAL, 1100 * MS, frame(1))
    query = buffer.next_query("lift")
    assert query.wrist is None and values(query.external) == [0, 0, 1]


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32),
                                 np.zeros((0, 4, 3), np.uint8), "not an image"])
def test_malformed_frames_raise_value_error(bad):
    with pytest.raises(ValueError, match="frame must be"):
        EpisodeFrames().add(EXTERNAL, 0, bad)


@pytest.mark.parametrize("kwargs, message", [({"max_frames": 2}, "max_frames"), ({"pair_tolerance": -1.0},
                                              "pair_tolerance"), ({"max_unpaired": 0}, "max_unpaired")])
def test_bad_config_is_rejected_with_the_field_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EpisodeFramesConfig(**kwargs)
