"""The one image SOLE-R1 sees per call: a grid of camera tiles (first | previous | current), smart-resized.

Faithful to the official code (philipmit/sole-r1-model `reward_server/src/reward_server/utils.py`:
`resize_with_padding`, `create_composite_frame`, `prepare_vlm_images`; the same in Philip-MIT/rewardgen
`rewardgen/sole.py`):
- each view is resized with cv2 INTER_AREA so that its long side is `tile` (sizes truncated with int(), as
  there) and centred on a black tile x tile canvas;
- columns first | previous | current separated by `gap` black pixels; rows external (top) / wrist (bottom)
  separated by a `gap`-pixel black row: 1162 x 773 for tile 384, gap 5;
- the grid then goes through Qwen `smart_resize` with factor 28, min_pixels 3136, max_pixels 12845056
  (qwen_vl_utils, `vision_process.py`) and PIL `Image.resize` with its default filter for RGB (bicubic):
  1162 x 773 becomes 1176 x 784.
"""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
from PIL import Image

from sole_r1_model.rewarder import ProgressQuery, check_rgb_frame

SMART_RESIZE_FACTOR = 28
SMART_RESIZE_MIN_PIXELS = 3136
SMART_RESIZE_MAX_PIXELS = 12845056
_MAX_ASPECT_RATIO = 200  # qwen_vl_utils refuses more elongated images


@dataclasses.dataclass(frozen=True)
class Layout:
    """Which camera goes in each row (top first) and which timestep in each column (left first)."""

    rows: tuple[str, ...]
    columns: tuple[str, ...]


_THREE = ("first", "previous", "current")
_TWO = ("first", "current")
VARIANTS: dict[str, Layout] = {
    "full": Layout(("external", "wrist"), _THREE),
    "from_zero": Layout(("external", "wrist"), _TWO),
    "external_only": Layout(("external",), _THREE),
    "external_only_from_zero": Layout(("external",), _TWO),
    "wrist_only": Layout(("wrist",), _THREE),
    "wrist_only_from_zero": Layout(("wrist",), _TWO),
}
_TIMESTEP = {"first": 0, "previous": 1, "current": 2}
# Without a wrist camera the official client switches to the external-only layout (reward_client/main.py).
_WITHOUT_WRIST = {"full": "external_only", "from_zero": "external_only_from_zero"}


def variant_for_cameras(variant: str, have_wrist: bool) -> str:
    """`variant` if the cameras allow it; without wrist frames its external-only form, else a clear error."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    if have_wrist or "wrist" not in VARIANTS[variant].rows:
        return variant
    if variant in _WITHOUT_WRIST:
        return _WITHOUT_WRIST[variant]
    raise ValueError(f"variant {variant!r} needs wrist frames; give a wrist video or a side-by-side video")


def smart_resize(height: int, width: int, factor: int = SMART_RESIZE_FACTOR,
                 min_pixels: int = SMART_RESIZE_MIN_PIXELS, max_pixels: int = SMART_RESIZE_MAX_PIXELS
                 ) -> tuple[int, int]:
    """Qwen's target (height, width): multiples of `factor`, pixel count within bounds, aspect kept."""
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > _MAX_ASPECT_RATIO:
        raise ValueError(f"aspect ratio of {height}x{width} exceeds {_MAX_ASPECT_RATIO}; crop the image first")
    # Python's round() (ties to even) as in qwen_vl_utils: 1162/28 = 41.5 rounds to 42.
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def resize_with_padding(image: np.ndarray, size: int = 384) -> np.ndarray:
    """Resize (INTER_AREA, aspect kept) so the long side is `size`, centred on a black size x size tile."""
    check_rgb_frame(image)
    h, w = image.shape[:2]
    scale = size / max(h, w)
    # int() truncation like the official code; max(1, .) only guards degenerate 1-pixel-thin inputs.
    new_w, new_h = max(1, int(w * scale)), max(1, int(h * scale))
    resized = image if (new_h, new_w) == (h, w) else cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    tile = np.zeros((size, size, 3), dtype=np.uint8)
    y0, x0 = (size - new_h) // 2, (size - new_w) // 2
    tile[y0:y0 + new_h, x0:x0 + new_w] = resized
    return tile


@dataclasses.dataclass
class CompositeFrameBuilder:
    """Builds the model's input image for a ProgressQuery in one of the official layouts."""

    tile: int = 384          # side of each square camera tile, pixels
    gap: int = 5             # black gap between tiles, pixels
    variant: str = "full"    # a key of VARIANTS

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown composite variant {self.variant!r}; choose one of {sorted(VARIANTS)}")
        if int(self.tile) != self.tile or self.tile < 8:
            raise ValueError(f"tile must be an integer >= 8 pixels, got {self.tile!r}")
        if int(self.gap) != self.gap or self.gap < 0:
            raise ValueError(f"gap must be an integer >= 0 pixels, got {self.gap!r}")

    @property
    def layout(self) -> Layout:
        """The rows and columns of this builder's variant."""
        return VARIANTS[self.variant]

    @property
    def grid_size(self) -> tuple[int, int]:
        """(height, width) of the grid before smart_resize, e.g. (773, 1162) for "full"."""
        rows, cols = len(self.layout.rows), len(self.layout.columns)
        return rows * self.tile + (rows - 1) * self.gap, cols * self.tile + (cols - 1) * self.gap

    @property
    def output_size(self) -> tuple[int, int]:
        """(height, width) of the image the model sees, e.g. (784, 1176) for "full"."""
        return smart_resize(*self.grid_size)

    def build_grid(self, query: ProgressQuery) -> np.ndarray:
        """The tile grid before smart_resize (RGB uint8), e.g. 773 x 1162 x 3 for "full"."""
        views = {"external": query.external, "wrist": query.wrist}
        if "wrist" in self.layout.rows and query.wrist is None:
            raise ValueError(f"variant {self.variant!r} shows the wrist camera but the query has no wrist frames; "
                             "use variant 'external_only' (or its from_zero form) for single-camera episodes")
        col_gap = np.zeros((self.tile, self.gap, 3), dtype=np.uint8)
        rows = []
        for camera in self.layout.rows:
            frames = views[camera]
            tiles = [resize_with_padding(frames[_TIMESTEP[c]], self.tile) for c in self.layout.columns]
            parts = [tiles[0]]
            for tile in tiles[1:]:
                parts += [col_gap, tile]
            rows.append(np.hstack(parts))
        row_gap = np.zeros((self.gap, rows[0].shape[1], 3), dtype=np.uint8)
        grid = [rows[0]]
        for row in rows[1:]:
            grid += [row_gap, row]
        return np.ascontiguousarray(np.vstack(grid))

    def build(self, query: ProgressQuery) -> np.ndarray:
        """The image the model sees: the grid, smart-resized (784 x 1176 x 3 for "full")."""
        return resize_for_model(self.build_grid(query))


def resize_for_model(grid: np.ndarray) -> np.ndarray:
    """Apply Qwen smart_resize (factor 28) with PIL's default bicubic filter, as the official server does."""
    height, width = grid.shape[:2]
    new_h, new_w = smart_resize(height, width)
    if (new_h, new_w) == (height, width):
        return grid
    resized = Image.fromarray(grid).resize((new_w, new_h), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.uint8)
