"""The composite image matches the official grid: tile sizes, black gaps, centred views, smart_resize."""
import numpy as np
import pytest

from sole_r1_model.composite import CompositeFrameBuilder, resize_with_padding, smart_resize, variant_for_cameras
from sole_r1_model.frames import read_frames, split_side_by_side
from sole_r1_model.rewarder import ProgressQuery

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
YELLOW, CYAN, MAGENTA = (255, 255, 0), (0, 255, 255), (255, 0, 255)


def _solid(h, w, color):
    return np.full((h, w, 3), color, dtype=np.uint8)


@pytest.fixture()
def query():
    """External frames 100x200 (wide), wrist frames 300x150 (tall); a distinct colour per camera and timestep."""
    external = tuple(_solid(100, 200, c) for c in (RED, GREEN, BLUE))
    wrist = tuple(_solid(300, 150, c) for c in (YELLOW, CYAN, MAGENTA))
    return ProgressQuery(task="t", external=external, wrist=wrist, previous_progress=12)


@pytest.mark.parametrize("hw, expected", [
    ((773, 1162), (784, 1176)),   # the official full grid (1162/28 = 41.5 rounds to even 42)
    ((384, 1162), (392, 1176)),   # one row
    ((773, 773), (784, 784)),     # two columns
    ((10, 10), (56, 56)),         # below min_pixels 3136 = 56*56
])
def test_smart_resize_matches_qwen_factor_28(hw, expected):
    assert smart_resize(*hw) == expected


def test_smart_resize_rejects_extreme_aspect_ratios():
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(1, 300)


def test_full_grid_layout_by_pixel_values(query):
    grid = CompositeFrameBuilder().build_grid(query)
    assert grid.shape == (773, 1162, 3) and grid.dtype == np.uint8
    # 5-pixel black gaps: columns 384-388 and 773-777, row 384-388.
    assert not grid[:, 384:389].any() and not grid[:, 773:778].any() and not grid[384:389].any()
    for col, (ext_color, wrist_color) in enumerate([(RED, YELLOW), (GREEN, CYAN), (BLUE, MAGENTA)]):
        x = col * 389
        ext = grid[0:384, x:x + 384]
        # 200x100 -> 384x192, centred vertically: black bands of 96 rows above and below.
        assert not ext[:96].any() and not ext[288:].any()
        assert (ext[96:288] == ext_color).all()
        wrist = grid[389:773, x:x + 384]
        # 150x300 -> 192x384, centred horizontally: black bands of 96 columns left and right.
        assert not wrist[:, :96].any() and not wrist[:, 288:].any()
        assert (wrist[:, 96:288] == wrist_color).all()


def test_full_composite_is_smart_resized_to_1176x784_keeping_the_layout(query):
    image = CompositeFrameBuilder().build(query)
    assert image.shape == (784, 1176, 3) and image.dtype == np.uint8
    sy, sx = 784 / 773, 1176 / 1162
    for col, (ext_color, wrist_color) in enumerate([(RED, YELLOW), (GREEN, CYAN), (BLUE, MAGENTA)]):
        cx = round((col * 389 + 192) * sx)
        assert np.abs(image[round(192 * sy), cx].astype(int) - ext_color).max() <= 3
        assert np.abs(image[round((389 + 192) * sy), cx].astype(int) - wrist_color).max() <= 3
        assert image[round(40 * sy), cx].max() <= 3                       # black band above the wide view
    assert image[round(300 * sy), round(386 * sx)].max() <= 40            # middle of the first column gap


@pytest.mark.parametrize("variant, shape, top_left, top_right", [
    ("from_zero", (784, 784, 3), RED, BLUE),            # first | current, no previous
    ("external_only", (392, 1176, 3), RED, BLUE),       # top row only
    ("wrist_only", (392, 1176, 3), YELLOW, MAGENTA),    # the wrist row alone
    ("external_only_from_zero", (392, 784, 3), RED, BLUE),
])
def test_variants_have_the_official_sizes_and_tiles(query, variant, shape, top_left, top_right):
    builder = CompositeFrameBuilder(variant=variant)
    image, grid = builder.build(query), builder.build_grid(query)
    assert image.shape == shape and builder.output_size == shape[:2]
    assert tuple(grid[192, 192]) == top_left and tuple(grid[192, grid.shape[1] - 192]) == top_right


def test_official_square_views_fill_their_tiles(official_lift):
    frame = read_frames(sorted((official_lift / "videos").glob("*.mp4"))[0], [0]).frames[0]
    external, wrist = split_side_by_side(frame)
    query = ProgressQuery(task="t", external=(external,) * 3, wrist=(wrist,) * 3)
    grid = CompositeFrameBuilder().build_grid(query)
    # 768x768 -> exactly 384x384: no black border, and a 2x2 area average of the source.
    expected = external[:2, :2].astype(float).mean(axis=(0, 1))
    assert np.abs(grid[0, 0] - expected).max() <= 1
    assert CompositeFrameBuilder().build(query).shape == (784, 1176, 3)


def test_resize_with_padding_handles_degenerate_thin_frames():
    tile = resize_with_padding(_solid(1, 150, RED), 384)
    assert tile.shape == (384, 384, 3) and (tile[192, 10] == RED).all()


def test_full_variant_without_wrist_frames_says_what_to_use(query):
    single = ProgressQuery(task="t", external=query.external)
    with pytest.raises(ValueError, match="external_only"):
        CompositeFrameBuilder().build(single)
    assert variant_for_cameras("full", have_wrist=False) == "external_only"
    assert variant_for_cameras("from_zero", have_wrist=False) == "external_only_from_zero"
    with pytest.raises(ValueError, match="wrist"):
        variant_for_cameras("wrist_only", have_wrist=False)


@pytest.mark.parametrize("kwargs, message", [({"variant": "grid"}, "unknown composite variant"),
                                             ({"tile": 0}, "tile"), ({"gap": -1}, "gap")])
def test_bad_builder_configs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CompositeFrameBuilder(**kwargs)
