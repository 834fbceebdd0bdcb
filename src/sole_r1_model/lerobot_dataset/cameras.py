"""The cameras of a LeRobot dataset -- which is the external view, which the wrist view -- and their frames.

Cameras are the features of dtype `video` or `image`. Defaults: the wrist camera is the one whose name says so
(wrist, hand, gripper, eye_in_hand; none when no name does), the external camera the first other one (or the only
camera there is). Either can be named in full (`observation.images.top`) or by its last part (`top`).

Frames are read only where asked: a video frame is the one at the row's `timestamp` (+ the episode's
`from_timestamp` in a v3.0 file holding many episodes), as LeRobot locates it, decoded by seeking; an image frame
is decoded from the PNG/JPEG bytes of its data-file cell.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from sole_r1_model.lerobot_dataset.format import CAMERA_DTYPES, EpisodeLocation

log = logging.getLogger(__name__)

WRIST_WORDS = ("wrist", "hand", "gripper", "eye_in_hand")
NO_CAMERA = "none"


def camera_keys(info: dict) -> list[str]:
    """The dataset's camera features (video or image), in info.json order."""
    return [k for k, f in info["features"].items() if f.get("dtype") in CAMERA_DTYPES]


def resolve_camera(info: dict, name: str) -> str:
    """A camera key from its full name or its last dotted part (ValueError listing the cameras when unknown)."""
    keys = camera_keys(info)
    matches = [k for k in keys if k == name] or [k for k in keys if k.rsplit(".", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(keys) or "none"
    if matches:
        raise ValueError(f"camera {name!r} is ambiguous: {', '.join(matches)}; give the full key")
    raise ValueError(f"no camera {name!r} in this dataset; its cameras (video/image features) are: {listed}")


def _is_wrist(key: str) -> bool:
    return any(word in key.rsplit(".", 1)[-1].lower() for word in WRIST_WORDS)


def choose_cameras(info: dict, external: Optional[str] = None,
                   wrist: Optional[str] = None) -> tuple[str, Optional[str]]:
    """(external key, wrist key or None); None arguments take the defaults, wrist "none" means external only."""
    keys = camera_keys(info)
    if not keys:
        raise ValueError("the dataset has no camera (no feature of dtype video or image) to score")
    external_key = None if external is None else resolve_camera(info, external)
    if wrist is None:
        wrist_key = next((k for k in keys if _is_wrist(k) and k != external_key), None)
    else:
        wrist_key = None if wrist.lower() == NO_CAMERA else resolve_camera(info, wrist)
    if external_key is None:
        others = [k for k in keys if k != wrist_key]
        if not others and wrist is None:  # one wrist-named camera: score it alone rather than refuse
            external_key, wrist_key = wrist_key, None
        elif not others:
            raise ValueError(f"{wrist_key!r} is the dataset's only camera; score it alone with "
                             f"--external {wrist_key} --wrist none")
        else:
            external_key = next((k for k in others if not _is_wrist(k)), others[0])
    if external_key == wrist_key:
        raise ValueError(f"{external_key!r} cannot be both the external and the wrist view")
    log.info("cameras: external %s, wrist %s (of %s; choose with --external / --wrist)", external_key,
             wrist_key or "none (external-only prompt)", ", ".join(keys))
    return external_key, wrist_key


class EpisodeFrames:
    """Reads an episode's rows and chosen camera frames; keeps one data table and one video reader per camera."""

    def __init__(self, root: str | Path, info: dict) -> None:
        self.root = Path(root)
        self.info = info
        self._table: tuple = (None, None, None)   # (path, columns, pyarrow table) of the last data file read
        self._readers: dict = {}                  # camera key -> (video path, imageio reader)

    def rows(self, episode: EpisodeLocation, columns: Sequence[str] = ()) -> dict:
        """The episode's data rows in frame order: {column: array} with timestamp, frame_index and `columns`."""
        import pyarrow.parquet as pq

        wanted = tuple(dict.fromkeys(("episode_index", "frame_index", "timestamp", *columns)))
        path = self.root / episode.data_file
        if self._table[0] != path or not set(wanted) <= set(self._table[1]):
            if not path.is_file():
                raise ValueError(f"episode {episode.index}: data file {path} is missing")
            # Both cameras' image columns stay: reading them in turn must not reload the file each time.
            read = tuple(dict.fromkeys((*wanted, *(self._table[1] if self._table[0] == path else ()))))
            missing = [c for c in read if c not in pq.read_schema(path).names]
            if missing:
                raise ValueError(f"{path}: no column {', '.join(missing)}")
            self._table = (path, read, pq.read_table(path, columns=list(read)))
        table = self._table[2]
        indices = np.nonzero(table.column("episode_index").to_numpy() == episode.index)[0]
        order = indices[np.argsort(table.column("frame_index").to_numpy()[indices], kind="stable")]
        if len(order) != episode.length:
            raise ValueError(f"episode {episode.index}: {path} holds {len(order)} rows, the episode index says "
                             f"{episode.length}")
        rows = table.take(order)
        return {name: (rows.column(name).to_pylist() if self._is_image(name) else rows.column(name).to_numpy())
                for name in wanted}

    def _is_image(self, key: str) -> bool:
        return self.info["features"].get(key, {}).get("dtype") == "image"

    def frames(self, episode: EpisodeLocation, key: str, indices: Sequence[int]) -> list[np.ndarray]:
        """RGB uint8 HxWx3 frames of camera `key` at the episode's frame indices `indices`."""
        if self._is_image(key):
            cells = self.rows(episode, [key])[key]
            return [self._decode_image(cells[i], episode, key, i) for i in indices]
        timestamps = self.rows(episode)["timestamp"]
        path_name, start = episode.videos[key]
        fps = float(self.info["features"][key].get("info", {}).get("video.fps") or self.info["fps"])
        reader = self._reader(key, self.root / path_name)
        frames = []
        for i in indices:
            position = int(round((start + float(timestamps[i])) * fps))
            try:
                frames.append(np.ascontiguousarray(np.asarray(reader.get_data(position))[:, :, :3]))
            except IndexError:
                raise ValueError(f"episode {episode.index}: {key} frame {i} is frame {position} of "
                                 f"{path_name}, past the end of that video") from None
        return frames

    def _reader(self, key: str, path: Path):
        """The open imageio reader of `path` for camera `key` (the previous file of that camera is closed)."""
        import imageio.v2 as imageio

        current = self._readers.get(key)
        if current is not None and current[0] == path:
            return current[1]
        if current is not None:
            current[1].close()
        if not path.is_file():
            raise ValueError(f"camera {key}: video file {path} is missing")
        reader = imageio.get_reader(str(path), format="FFMPEG")
        self._readers[key] = (path, reader)
        return reader

    def _decode_image(self, cell, episode: EpisodeLocation, key: str, frame: int) -> np.ndarray:
        """An image-feature cell ({bytes, path} as `datasets` stores images) as an RGB array."""
        from PIL import Image

        data = cell.get("bytes") if isinstance(cell, dict) else None
        source = io.BytesIO(data) if data else None
        if source is None and isinstance(cell, dict) and cell.get("path"):
            source = Path(cell["path"]) if Path(cell["path"]).is_absolute() else self.root / cell["path"]
        if source is None:
            raise ValueError(f"episode {episode.index}: {key} frame {frame} holds no image bytes or path")
        try:
            with Image.open(source) as image:
                return np.asarray(image.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"episode {episode.index}: {key} frame {frame} is not a readable image ({exc})") from None

    def close(self) -> None:
        """Close the video readers."""
        for _, reader in self._readers.values():
            reader.close()
        self._readers.clear()
        self._table = (None, None, None)
