"""Reading episode bags without ROS: metadata, every non-camera message decoded, camera frames on demand.

Written by the `recorder` node (sole_r1_ros/logic/bag_files.py has the format); read by `sole-r1 replay`,
`sole-r1 export` and `video_source bag:=...`. A bag left open by a crash is recovered into a scratch folder and
read from its whole chunks.
"""
from __future__ import annotations

import dataclasses
import logging
import struct
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np
import yaml

from sole_r1_ros.logic.bag_files import TOPIC_BY_ROLE, TOPICS, BagError, recover_bag, typestore

CAMERAS = ("shoulder", "wrist")
EPISODE_ENDED = 2  # EpisodeInfo.EVENT_ENDED

LOG = logging.getLogger("sole_r1.bags")


def image_to_rgb(msg: Any) -> np.ndarray:
    """An 8-bit sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8; row padding allowed) as an HxWx3 RGB array."""
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8UC1": 1, "8UC3": 3}.get(msg.encoding)
    if channels is None:
        raise BagError(f"image encoding {msg.encoding!r} is not an 8-bit colour or grey encoding")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    rows = np.asarray(msg.data, dtype=np.uint8)[: step * height].reshape(height, step)
    pixels = rows[:, : width * channels].reshape(height, width, channels)
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    if msg.encoding.startswith("bgr"):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, :3])


def stamp_ns(msg: Any) -> int:
    """header.stamp of a deserialised message, in nanoseconds."""
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


# ---------------------------------------------------------------------------------------------------- reading
@dataclasses.dataclass
class RecordedEpisode:
    """One episode bag: its metadata, every non-image message decoded, and camera frames read on demand."""

    path: Path                      # the bag folder that was read (a recovered copy when `recovered`)
    name: str                       # the bag's own folder name (episode stem in reports)
    metadata: dict                  # custom metadata: task, rewarder, config_hash, git_revision, episode_id, ...
    counts: dict                    # topic -> messages
    messages: dict                  # role -> [(bag time ns, message)] for every non-camera role
    camera_stamps: dict             # camera role -> header stamps (ns) of its frames, in recorded order
    recovered: bool = False         # True: the recorder died; read from the bag's whole chunks

    @property
    def num_frames(self) -> int:
        """Frames of the shoulder camera (the episode's time base)."""
        return len(self.camera_stamps.get("shoulder", ()))

    @property
    def task(self) -> str:
        """The task instruction: metadata, else the episode's EpisodeInfo or ProgressEstimate."""
        if self.metadata.get("task"):
            return self.metadata["task"]
        for role in ("episode", "progress"):
            for _, msg in self.messages.get(role, []):
                if msg.task:
                    return msg.task
        return ""

    @property
    def true_success(self) -> Optional[bool]:
        """PRIVILEGED true success from the last EpisodeInfo that knew it (ENDED first); None when never known."""
        known = [m for _, m in self.messages.get("episode", []) if m.true_success_known]
        ended = [m for m in known if m.event == EPISODE_ENDED]
        return bool((ended or known)[-1].true_success) if known else None

    def privileged_progress(self) -> Optional[np.ndarray]:
        """PRIVILEGED progress (%) per shoulder frame from EpisodeInfo (latest stamped at or before the frame).

        None when the episode never carried it (the real robot). The simulator stamps each STEP event with the
        stamp of that step's frames, so a frame gets exactly its own step's value.
        """
        infos = sorted(((stamp_ns(m), float(m.privileged_progress)) for _, m in self.messages.get("episode", [])
                        if np.isfinite(m.privileged_progress)), key=lambda item: item[0])
        if not infos or self.num_frames == 0:
            return None
        stamps, values = np.array([i[0] for i in infos]), np.array([i[1] for i in infos])
        index = np.clip(np.searchsorted(stamps, self.camera_stamps["shoulder"], side="right") - 1, 0, None)
        return values[index]

    def wrist_index(self) -> np.ndarray:
        """For each shoulder frame, the index of the wrist frame with the nearest stamp (cameras may drift)."""
        shoulder, wrist = self.camera_stamps["shoulder"], self.camera_stamps.get("wrist", np.empty(0, np.int64))
        if wrist.size == 0:
            raise BagError(f"{self.name}: no wrist camera frames")
        after = np.searchsorted(wrist, shoulder)
        low, high = np.clip(after - 1, 0, wrist.size - 1), np.clip(after, 0, wrist.size - 1)
        return np.where(np.abs(wrist[high] - shoulder) < np.abs(wrist[low] - shoulder), high, low)

    def iter_frames(self, role: str, indices: Optional[Iterable[int]] = None) -> Iterator[tuple[int, np.ndarray]]:
        """(index, RGB frame) of camera `role`, in recorded order, only for `indices` when given (streams the bag)."""
        from rosbags.rosbag2 import Reader

        wanted = None if indices is None else {int(i) for i in indices}
        store = typestore()
        with Reader(self.path) as reader:
            connections = [c for c in reader.connections if c.topic == TOPIC_BY_ROLE[role].name]
            for index, (connection, _, raw) in enumerate(reader.messages(connections=connections)):
                if wanted is None or index in wanted:
                    yield index, image_to_rgb(store.deserialize_cdr(raw, connection.msgtype))

    def iter_frame_pairs(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(shoulder frame, nearest wrist frame) in recorded order, streaming both cameras from the bag."""
        nearest = self.wrist_index()
        wrist = self.iter_frames("wrist")
        index, frame = -1, None
        for i, shoulder in self.iter_frames("shoulder"):
            while index < nearest[i]:
                index, frame = next(wrist)
            yield shoulder, frame

    def frames(self, role: str, indices: Iterable[int]) -> list:
        """RGB frames of camera `role` at `indices`, in that order (repeats allowed)."""
        wanted = [int(i) for i in indices]
        found = dict(self.iter_frames(role, wanted))
        missing = sorted(set(wanted) - set(found))
        if missing:
            raise BagError(f"{self.name}: {role} frames {missing[:5]} are not in the bag")
        return [found[i] for i in wanted]


def read_episode(path: str | Path, scratch: Optional[Path] = None) -> RecordedEpisode:
    """Read an episode bag folder (or its .mcap); a bag left open by a crash is recovered into `scratch` first."""
    from rosbags.rosbag2 import Reader

    path = Path(path)
    folder = path.parent if path.suffix == ".mcap" else path
    if not folder.is_dir():
        raise BagError(f"{path}: not a bag folder")
    recovered = not (folder / "metadata.yaml").is_file()
    if recovered:
        scratch = Path(scratch or tempfile.mkdtemp(prefix="sole_r1_recovered_"))
        folder = recover_bag(folder, scratch / folder.name)
    store = typestore()
    by_topic = {t.name: t for t in TOPICS}
    messages: dict = defaultdict(list)
    stamps: dict = defaultdict(list)
    with Reader(folder) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        for connection, timestamp, raw in reader.messages():
            topic = by_topic.get(connection.topic)
            if topic is None:
                continue
            if topic.role in CAMERAS:
                stamps[topic.role].append(_raw_stamp(raw))
            else:
                messages[topic.role].append((timestamp, store.deserialize_cdr(raw, connection.msgtype)))
    info = yaml.safe_load((folder / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    metadata = {str(k): str(v) for k, v in (info.get("custom_data") or {}).items()}
    return RecordedEpisode(path=folder, name=path.stem if path.suffix == ".mcap" else path.name, metadata=metadata,
                           counts=counts, messages=dict(messages),
                           camera_stamps={k: np.asarray(v, np.int64) for k, v in stamps.items()},
                           recovered=recovered)


def read_bags(paths: Iterable[str | Path], scratch: Optional[Path], min_frames: int
              ) -> tuple[list[RecordedEpisode], list[str]]:
    """The episodes of every bag under `paths` with at least `min_frames` camera frames, and the names skipped.

    Raises BagError (or OSError) for a bag that cannot be read; a bag its recorder never closed is read from its
    whole chunks (copied into `scratch`) with a warning.
    """
    episodes = [read_episode(path, scratch) for path in find_bags(paths)]
    for episode in episodes:
        if episode.recovered:
            LOG.warning("%s was not closed (recorder stopped): read from its whole chunks, copy in %s",
                        episode.name, episode.path)
    kept = [e for e in episodes if e.num_frames >= min_frames]
    skipped = [e.name for e in episodes if e.num_frames < min_frames]
    if skipped:
        LOG.info("skipping %d episode(s) with fewer than %d frames: %s", len(skipped), min_frames, ", ".join(skipped))
    return kept, skipped


def _raw_stamp(raw: bytes | memoryview) -> int:
    """header.stamp of a CDR-encoded stamped message, read from its first bytes (no full deserialisation)."""
    little = bytes(raw[:2]) in (b"\x00\x01", b"\x00\x03")  # CDR_LE / PL_CDR_LE encapsulation
    sec, nanosec = struct.unpack_from("<iI" if little else ">iI", raw, 4)
    return sec * 1_000_000_000 + nanosec


def find_bags(paths: Iterable[str | Path]) -> list[Path]:
    """Bag folders among `paths`: each a bag folder, an .mcap file, or a folder searched for bags (sorted)."""
    found: list[Path] = []
    for item in map(Path, paths):
        if item.suffix == ".mcap" and item.is_file():
            found.append(item.parent)
        elif item.is_dir() and (any(item.glob("*.mcap")) or (item / "metadata.yaml").is_file()):
            found.append(item)
        elif item.is_dir():
            found.extend(sorted({p.parent for p in item.rglob("*.mcap")}))
        else:
            raise BagError(f"{item}: no such bag (give a bag folder, an .mcap file or a folder of bags)")
    if not found:
        raise BagError("no bags found (a bag is a folder with an .mcap file)")
    return list(dict.fromkeys(found))


