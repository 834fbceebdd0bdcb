"""Image <-> numpy conversion behaves like cv_bridge: encodings, row padding, byte order, malformed input."""
import sys

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image

from sole_r1_ros.ros.images import (ImageConversionError, camera_info_from_fov, image_to_numpy, numpy_to_image,
                                    scale_camera_info)

RNG = np.random.default_rng(0)
CASES = {
    "rgb8": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "bgr8": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "rgba8": RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    "bgra8": RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    "mono8": RNG.integers(0, 256, (5, 7), dtype=np.uint8),
    "mono16": RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    "16UC1": RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    "32FC1": RNG.standard_normal((5, 7)).astype(np.float32),
}


@pytest.mark.parametrize("encoding", sorted(CASES))
def test_round_trip_every_encoding(encoding):
    array = CASES[encoding]
    msg = numpy_to_image(array, encoding, frame_id="cam")
    assert (msg.height, msg.width, msg.encoding, msg.header.frame_id) == (5, 7, encoding, "cam")
    assert msg.step == 7 * (array.shape[2] if array.ndim == 3 else 1) * array.dtype.itemsize
    back = image_to_numpy(msg)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def _padded(array: np.ndarray, encoding: str, pad: int, bigendian: bool = False) -> Image:
    """Build a message by hand, the way a camera driver with aligned rows would."""
    height, width = array.shape[:2]
    rows = array.astype(array.dtype.newbyteorder(">" if bigendian else "<")).reshape(height, -1).view(np.uint8)
    padded = np.zeros((height, rows.shape[1] + pad), np.uint8)
    padded[:, :rows.shape[1]] = rows
    padded[:, rows.shape[1]:] = 0xAB  # garbage in the padding must not leak into the image
    return Image(height=height, width=width, encoding=encoding, is_bigendian=int(bigendian),
                 step=padded.shape[1], data=padded.tobytes())


@pytest.mark.parametrize("encoding", ["rgb8", "mono8", "16UC1", "32FC1"])
def test_padded_rows_are_skipped(encoding):
    array = CASES[encoding]
    np.testing.assert_array_equal(image_to_numpy(_padded(array, encoding, pad=13)), array)


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_big_endian_data_is_swapped_to_native(encoding):
    array = CASES[encoding]
    back = image_to_numpy(_padded(array, encoding, pad=4, bigendian=True))
    assert back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_colour_conversions_match_opencv():
    rgb = CASES["rgb8"]
    msg = numpy_to_image(rgb, "rgb8")
    np.testing.assert_array_equal(image_to_numpy(msg, "bgr8"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    grey = image_to_numpy(msg, "mono8")
    assert np.abs(grey.astype(int) - cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(int)).max() <= 1
    bgr_msg = numpy_to_image(CASES["bgr8"], "bgr8")
    np.testing.assert_array_equal(image_to_numpy(bgr_msg, "rgb8"), cv2.cvtColor(CASES["bgr8"], cv2.COLOR_BGR2RGB))
    rgba = image_to_numpy(msg, "rgba8")
    assert rgba.shape == (5, 7, 4) and (rgba[:, :, 3] == 255).all()


@pytest.mark.parametrize("mutate, message", [
    (lambda m: setattr(m, "encoding", "yuv422_weird"), "unsupported image encoding"),
    (lambda m: setattr(m, "step", 3), "smaller than one row"),
    (lambda m: setattr(m, "data", bytes(m.data[:-5])), r"expected step\*height"),
    (lambda m: setattr(m, "height", 0), "empty image"),
])
def test_malformed_messages_raise_clear_errors(mutate, message):
    msg = numpy_to_image(CASES["rgb8"], "rgb8")
    mutate(msg)
    with pytest.raises(ImageConversionError, match=message):
        image_to_numpy(msg)


def test_wrong_array_for_encoding_is_rejected():
    with pytest.raises(ImageConversionError, match="3 channel"):
        numpy_to_image(CASES["mono8"], "rgb8")
    with pytest.raises(ImageConversionError, match="dtype"):
        numpy_to_image(CASES["rgb8"].astype(np.float32), "rgb8")
    with pytest.raises(ImageConversionError, match="cannot convert"):
        image_to_numpy(numpy_to_image(CASES["32FC1"], "32FC1"), "rgb8")


def test_camera_info_from_fov_and_scaling():
    info = camera_info_from_fov(640, 480, 90.0, "cam")
    assert info.k[0] == pytest.approx(240.0) and info.k[2] == pytest.approx(320.0) and info.k[5] == 240.0
    assert (info.width, info.height, info.header.frame_id) == (640, 480, "cam")
    small = scale_camera_info(info, 320, 240)
    assert small.k[0] == pytest.approx(120.0) and small.k[2] == pytest.approx(160.0) and small.width == 320
    with pytest.raises(ValueError):
        camera_info_from_fov(0, 480, 60.0)


def test_numpy_path_is_used_without_cv_bridge():
    # The wheels here have no cv_bridge: this proves the suite exercises the numpy implementation.
    import sole_r1_ros.ros.images as images
    assert ("cv_bridge" in sys.modules) == (images._BRIDGE is not None)
