"""Reading episodes, splitting side-by-side views, choosing frames to score and interpolating progress."""
import logging

import cv2
import numpy as np
import pytest

from sole_r1_model.frames import (RateSampler, compute_stride, count_frames, interpolate_progress, key_frame_indices,
                                  read_episode_key_frames, read_frames, read_key_frames, split_side_by_side,
                                  stride_indices)


@pytest.fixture(scope="module")
def official_videos(official_lift):
    videos = sorted((official_lift / "videos").glob("*.mp4"))
    assert len(videos) == 4
    return videos


@pytest.mark.parametrize("n, k, expected", [
    (25, 10, [0, 2, 5, 8, 10, 13, 16, 18, 21, 24]),
    (5, 10, [0, 1, 2, 3, 4]),        # fewer frames than key frames: every frame
    (1, 10, [0]),
    (100, 3, [0, 49, 99]),
])
def test_key_frames_are_linspace_truncated_to_int(n, k, expected):
    assert key_frame_indices(n, k) == expected


def test_key_frames_reject_empty_episodes():
    with pytest.raises(ValueError, match="at least one frame"):
        key_frame_indices(0)


def test_interpolation_is_linear_between_key_frames_and_exact_at_them():
    np.testing.assert_array_equal(interpolate_progress([0, 2, 4], [0, 10, -10], 5), [0, 5, 10, 0, -10])
    np.testing.assert_array_equal(interpolate_progress([0, 3], [0, 30], 5), [0, 10, 20, 30, 30])


def test_interpolation_rejects_inconsistent_keys():
    with pytest.raises(ValueError, match="increase"):
        interpolate_progress([0, 2, 2], [0, 1, 2], 4)
    with pytest.raises(ValueError, match="as many"):
        interpolate_progress([0, 2], [0], 4)
    with pytest.raises(ValueError, match="finite"):
        interpolate_progress([0, 2], [0, float("nan")], 4)


def test_splitting_official_side_by_side_videos_gives_two_768_views(official_videos):
    for video in official_videos:
        source = read_frames(video)
        assert source.num_frames == 25 and len(source.frames) == 25 and source.fps == 2.0
        external, wrist = split_side_by_side(source.frames[12])
        assert external.shape == (768, 768, 3) and wrist.shape == (768, 768, 3)
        np.testing.assert_array_equal(np.hstack([external, wrist]), source.frames[12])
        # The halves are different cameras, not one image cut in two.
        assert np.abs(external.astype(int) - wrist.astype(int)).mean() > 20


def test_reading_selected_frames_returns_the_same_pixels_as_reading_all(official_videos):
    every = read_frames(official_videos[0])
    some = read_frames(official_videos[0], [24, 0, 13])
    assert some.indices == [0, 13, 24] and some.num_frames == 25
    for index, frame in zip(some.indices, some.frames):
        np.testing.assert_array_equal(frame, every.frames[index])


def test_episode_key_frames_of_a_side_by_side_video(official_videos):
    episode = read_episode_key_frames(official_videos[0], side_by_side=True)
    assert episode.key_indices == [0, 2, 5, 8, 10, 13, 16, 18, 21, 24] and episode.num_frames == 25
    assert len(episode.external) == len(episode.wrist) == 10 and episode.wrist[3].shape == (768, 768, 3)


def test_key_frames_survive_a_wrong_frame_count_in_metadata(tmp_path, official_videos):
    # An image folder has no metadata; a .npy of 7 frames: both paths must give linspace over the true count.
    frames = read_frames(official_videos[0], range(7)).frames
    np.save(tmp_path / "clip.npy", np.stack(frames))
    assert read_key_frames(tmp_path / "clip.npy", 3).indices == [0, 3, 6]
    assert count_frames(official_videos[0]) == 25


def write_video(path, count, size=(64, 48)):
    """An MJPG AVI of `count` random frames (its header states the frame count)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(count):
        writer.write(np.random.default_rng(i).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


def test_a_truncated_video_is_read_with_a_warning_naming_both_frame_counts(tmp_path, caplog):
    data = write_video(tmp_path / "whole.avi", 20).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    decoded = count_frames(cut)
    assert 2 <= decoded < 20
    with caplog.at_level(logging.WARNING):
        source = read_key_frames(cut, 10)
    assert source.num_frames == decoded and source.indices == key_frame_indices(decoded, 10)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "cut.avi" in warning and "20" in warning and str(decoded) in warning
    caplog.clear()
    read_key_frames(write_video(tmp_path / "fine.avi", 5), 10)
    assert not caplog.records  # a header that matches says nothing


def test_an_episode_needs_two_frames_to_be_scored(tmp_path):
    with pytest.raises(ValueError, match=r"still\.avi.* 1 frame.*at least 2"):
        read_episode_key_frames(write_video(tmp_path / "still.avi", 1))
    np.save(tmp_path / "one.npy", np.zeros((1, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"one\.npy"):
        read_episode_key_frames(tmp_path / "one.npy", side_by_side=True)


def test_image_folders_are_read_in_numeric_name_order(tmp_path):
    for number, value in [(10, 30), (2, 20), (1, 10)]:
        cv2.imwrite(str(tmp_path / f"frame_{number}.png"), np.full((4, 6, 3), value, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    source = read_frames(tmp_path)
    assert [int(f[0, 0, 0]) for f in source.frames] == [10, 20, 30] and source.fps is None


def test_color_order_is_rgb_for_videos_and_images(tmp_path):
    bgr = np.zeros((8, 8, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's BGR
    cv2.imwrite(str(tmp_path / "0.png"), bgr)
    assert tuple(read_frames(tmp_path).frames[0][0, 0]) == (200, 0, 0)


@pytest.mark.parametrize("name, content, error, message", [
    ("missing.mp4", None, FileNotFoundError, "missing.mp4"),
    ("clip.gif", b"GIF89a", ValueError, "cannot read frames"),
    ("broken.mp4", b"this is not a video", ValueError, "broken.mp4"),
    ("bad.npy", "float", ValueError, r"\(T, H, W, 3\) uint8"),
])
def test_bad_inputs_raise_errors_that_name_the_file(tmp_path, name, content, error, message):
    path = tmp_path / name
    if content == "float":
        np.save(path, np.zeros((2, 4, 4, 3), np.float32))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        read_frames(path)


def test_asking_for_frames_beyond_the_end_is_an_error(official_videos):
    with pytest.raises(ValueError, match=r"25 frames; frames \[30\]"):
        read_frames(official_videos[0], [0, 30])


def test_split_rejects_non_images():
    with pytest.raises(ValueError, match="side-by-side"):
        split_side_by_side(np.zeros((4, 1, 3), np.uint8))


@pytest.mark.parametrize("source, target, stride", [(30, 1, 30), (2, 1, 2), (10, 3, 3), (0.5, 1, 1)])
def test_stride_follows_the_official_client_rule(source, target, stride):
    assert compute_stride(source, target) == stride


def test_stride_rejects_non_positive_rates():
    with pytest.raises(ValueError, match="Hz"):
        compute_stride(30, 0)
    with pytest.raises(ValueError, match="frames per second"):
        compute_stride(float("nan"), 1)


def test_stride_indices_cover_the_episode():
    assert stride_indices(10, 4) == [0, 4, 8] and stride_indices(10, 4, start=1) == [1, 5, 9]


def test_rate_sampler_takes_one_frame_per_period_without_drift_or_bursts():
    sampler = RateSampler(1.0)
    stamps = [round(0.1 * i, 1) for i in range(31)]  # 10 Hz for 3 s
    assert [s for s in stamps if sampler.should_take(s)] == [0.0, 1.0, 2.0, 3.0]
    sampler.reset()
    # A 2.5 s gap in the stream yields one frame when it resumes, then the grid continues.
    taken = [s for s in [0.0, 0.5, 3.0, 3.5, 4.0, 5.0] if sampler.should_take(s)]
    assert taken == [0.0, 3.0, 4.0, 5.0]
    assert not sampler.should_take(float("nan"))
