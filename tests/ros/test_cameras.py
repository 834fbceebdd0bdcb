"""Camera nodes: crop + resize like SERL, CameraInfo that matches, a video file standing in for a device, and
clear failures (missing device, missing pyrealsense2)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image

from sole_r1_ros.logic.cameras import CropResize, FrameError, LatestFrameGrabber
from sole_r1_ros.ros.images import image_to_numpy

RED_BGR, BLUE_BGR = (0, 0, 255), (255, 0, 0)


@pytest.fixture(scope="module")
def half_red_half_blue_video(tmp_path_factory):
    """A 320x240 video: left half red, right half blue, 30 frames."""
    path = tmp_path_factory.mktemp("video") / "halves.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (320, 240))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[:, :160], frame[:, 160:] = RED_BGR, BLUE_BGR
    for _ in range(30):
        writer.write(frame)
    writer.release()
    return path


def run_node(module: str, params: dict, env: dict | None = None) -> subprocess.Popen:
    """Start a node module as its own process with -p parameters."""
    args = [sys.executable, "-m", module, "--ros-args"]
    for key, value in params.items():
        args += ["-p", f"{key}:={value}"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})


def stop(process: subprocess.Popen) -> str:
    """SIGINT the node, return its output."""
    if process.poll() is None:
        process.send_signal(2)
    try:
        out, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out


# ---- the pure pipeline ---------------------------------------------------------------------------------------
def test_crop_then_resize_returns_rgb_of_the_cropped_region():
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[:, :160], frame[:, 160:] = RED_BGR, BLUE_BGR
    image = CropResize((160, 40, 160, 160), 64, 64).apply(frame)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert np.all(image[..., 2] == 255) and np.all(image[..., 0] == 0)          # blue, in RGB order
    whole = CropResize((), 0, 0).apply(frame)
    assert whole.shape == (240, 320, 3) and tuple(whole[0, 0]) == (255, 0, 0)   # red, in RGB order


def test_intrinsics_follow_the_crop_and_the_resize():
    # Hand-computed: scale 64/160 = 0.4; cx' = (160 - 160 + 0.5) * 0.4 - 0.5, cy' = (120 - 40 + 0.5) * 0.4 - 0.5.
    fx, fy, cx, cy = CropResize((160, 40, 160, 160), 64, 64).intrinsics(300.0, 300.0, 160.0, 120.0, 320, 240)
    assert (fx, fy) == pytest.approx((120.0, 120.0))
    assert (cx, cy) == pytest.approx((-0.3, 31.7))


def test_bad_frames_and_crops_raise_clear_errors():
    with pytest.raises(FrameError, match="does not fit a 320x240 frame"):
        CropResize((200, 0, 160, 160), 64, 64).apply(np.zeros((240, 320, 3), np.uint8))
    with pytest.raises(FrameError, match="HxWx3 uint8"):
        CropResize((), 64, 64).apply(np.zeros((240, 320), np.float32))
    with pytest.raises(FrameError, match="HxWx3 uint8"):
        CropResize((), 64, 64).apply(None)
    with pytest.raises(ValueError, match=r"\[x, y, width, height\]"):
        CropResize((1, 2, 3), 64, 64)


def test_grabber_keeps_only_the_newest_frame_and_counts_failed_reads():
    frames = iter([np.full((2, 2, 3), i, np.uint8) for i in range(5)])

    def read():
        frame = next(frames, None)
        return (frame is not None), frame

    grabber = LatestFrameGrabber(read, "test")
    deadline = time.monotonic() + 5.0
    while grabber.failures == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    grabber.stop()
    sequence, _, frame = grabber.latest()
    assert sequence == 5 and int(frame[0, 0, 0]) == 4 and grabber.failures >= 1


# ---- the nodes -----------------------------------------------------------------------------------------------
def test_opencv_camera_with_a_video_file_publishes_cropped_resized_frames_at_its_rate(ros, half_red_half_blue_video):
    images = ros.collect(Image, "/cameras/wrist/image_raw")
    infos = ros.collect(CameraInfo, "/cameras/wrist/camera_info")
    node = run_node("sole_r1_ros.nodes.camera_opencv", {
        "name": "wrist", "device": str(half_red_half_blue_video), "fps": 20.0, "crop": "[160, 40, 160, 160]",
        "output_width": 64, "output_height": 64, "intrinsics": "[300.0, 300.0, 160.0, 120.0]",
        "parent_frame": "base", "optical_pose": "[0.5, 0.0, 0.6, 1.0, 0.0, 0.0, 0.0]"})
    try:
        ros.wait_for(lambda: len(images) >= 3, 30.0, "wrist images from camera_opencv")
        start = len(images)
        time.sleep(2.0)
        count = len(images) - start
    finally:
        output = stop(node)
    assert 10 <= count <= 60, f"{count} frames in 2 s at fps 20\n{output}"
    msg = images[-1][1]
    assert (msg.width, msg.height, msg.encoding, msg.header.frame_id) == (64, 64, "rgb8", "wrist_camera_optical_frame")
    rgb = image_to_numpy(msg, "rgb8").astype(int)
    assert rgb[..., 2].mean() > 180 and rgb[..., 0].mean() < 60, "the crop should keep only the blue half"
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in images]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    info = infos[-1][1]
    assert (info.width, info.height) == (64, 64)
    assert list(info.k) == pytest.approx([120.0, 0.0, -0.3, 0.0, 120.0, 31.7, 0.0, 0.0, 1.0])


def test_opencv_camera_with_a_missing_device_exits_with_a_clear_message(tmp_path):
    node = run_node("sole_r1_ros.nodes.camera_opencv", {"name": "shoulder", "device": str(tmp_path / "nope.mp4")})
    output = node.communicate(timeout=60)[0]
    assert node.returncode == 2, output
    assert "no camera device or video file" in output


def test_realsense_camera_without_pyrealsense2_exits_with_install_instructions(tmp_path):
    # Hide any installed pyrealsense2 so the test proves the message whatever this machine has.
    (tmp_path / "pyrealsense2.py").write_text("raise ImportError('pyrealsense2 hidden by the test')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    node = run_node("sole_r1_ros.nodes.camera_realsense", {"name": "wrist", "device": "123456"}, env)
    output = node.communicate(timeout=60)[0]
    assert node.returncode == 2, output
    assert "pyrealsense2 is not installed" in output and "camera_backend:=opencv" in output
    assert "Traceback" not in output
