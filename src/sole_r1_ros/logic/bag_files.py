"""Episode bag files: the recorded topics and their types, the crash-tolerant writer, and recovery after a crash.

A bag is a rosbag2 folder (metadata.yaml + one .mcap file, zstd-compressed chunks) that `ros2 bag info/play` read
on a real ROS install. `rosbags` (pure Python) writes it, with the project's own interfaces (`sole_r1/msg/*`, from
src/sole_r1_interfaces/msg or an installed share/sole_r1/msg) registered, so the bag carries their definitions and
type hashes. The writer closes a small chunk often and flushes it to the file, so a recorder that dies loses at
most its open chunk; `recover_bag` rewrites such a bag (no footer, no metadata.yaml) from its whole chunks.
Everything here is rclpy-free.
"""
from __future__ import annotations

import dataclasses
import functools
import struct
import time
from pathlib import Path
from typing import Sequence

from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode, StoragePlugin
from rosbags.rosbag2.storage_mcap import McapWriter

try:  # Python 3.14 ships zstd; before that, the backports package rosbags itself depends on
    from compression import zstd  # type: ignore
except ImportError:  # pragma: no cover - depends on the interpreter
    from backports import zstd  # type: ignore

SOLE_R1_METADATA = "sole_r1"      # MCAP metadata record written when a bag opens: it survives a crash
ROSBAG2_VERSION = 8               # metadata version 8 is read by Jazzy and Kilted alike
DEFAULT_CHUNK_BYTES = 256 * 1024  # small chunks: a crash loses at most this much (rosbag2 uses 768 KiB)


@dataclasses.dataclass(frozen=True)
class BagTopic:
    """One recorded topic: its role in an episode, ROS name and type, and whether publishers latch it."""

    role: str
    name: str
    msgtype: str
    latched: bool = False


# The names must equal sole_r1_ros.ros.conventions (which needs rclpy); tests/ros/test_recorder.py checks them.
TOPICS = (
    BagTopic("shoulder", "/cameras/shoulder/image_raw", "sensor_msgs/msg/Image"),
    BagTopic("wrist", "/cameras/wrist/image_raw", "sensor_msgs/msg/Image"),
    BagTopic("ee_pose", "/robot/ee_pose", "geometry_msgs/msg/PoseStamped"),
    BagTopic("joint_states", "/robot/joint_states", "sensor_msgs/msg/JointState"),
    BagTopic("gripper", "/robot/gripper", "sensor_msgs/msg/JointState"),
    BagTopic("command", "/robot/command", "sole_r1/msg/EEDeltaCommand"),
    BagTopic("progress", "/reward/progress", "sole_r1/msg/ProgressEstimate"),
    BagTopic("episode", "/episode/info", "sole_r1/msg/EpisodeInfo", latched=True),
    BagTopic("estop", "/safety/estopped", "std_msgs/msg/Bool", latched=True),
)
TOPIC_BY_ROLE = {t.role: t for t in TOPICS}


class BagError(ValueError):
    """A bag is missing, not an episode bag, or damaged beyond its last whole chunk."""


# ------------------------------------------------------------------------------------------------------ types
def interface_dir() -> Path:
    """The folder holding the project's .msg files (source checkout, or share/sole_r1/msg when installed)."""
    from sole_r1_config.paths import share_dir

    root = share_dir()
    for candidate in (root / "src" / "sole_r1_interfaces" / "msg", root / "msg"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no sole_r1 message definitions under {root} (src/sole_r1_interfaces/msg or msg/)")


@functools.lru_cache(maxsize=1)
def typestore():
    """A rosbags typestore with the ROS 2 standard messages and the project's `sole_r1/msg/*` registered."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)  # std/sensor/geometry definitions are the same in Jazzy
    types: dict = {}
    for path in sorted(interface_dir().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"sole_r1/msg/{path.stem}"))
    store.register(types)
    return store


def offered_qos(latched: bool) -> list:
    """The QoS a recorded topic is replayed with: reliable, transient-local for latched topics."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    zero = QosTime(0, 0)  # "unspecified": the middleware default (infinite)
    return [Qos(QosHistory.KEEP_LAST, 1 if latched else 10, QosReliability.RELIABLE,
                QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE, zero, zero,
                QosLiveliness.AUTOMATIC, zero, False)]


# ---------------------------------------------------------------------------------------------------- writing
class _FlushingMcapStorage(McapWriter):
    """rosbags' MCAP storage, closing a chunk at `chunk_bytes` (or on flush()) and pushing it to the file."""

    chunk_bytes = DEFAULT_CHUNK_BYTES

    def write(self, connection, timestamp: int, data) -> None:  # noqa: ANN001 -- rosbags' signature
        """Append one message; a full chunk is closed and flushed."""
        super().write(connection, timestamp, data)
        if self.chunk.bio.tell() >= self.chunk_bytes:
            self.flush()

    def flush(self) -> None:
        """Close the open chunk (if it holds messages) and flush the file, so the data survives a crash."""
        if self.chunk.msgs:
            self.close_chunk()
        self.bio.flush()

    def write_metadata(self, name: str, values: dict) -> None:
        """An MCAP Metadata record in the data section, written at once (read back by recover_bag)."""
        self.bio.write(mcap_metadata_record(name, values))
        self.bio.flush()


class _Rosbag2Writer(Writer):
    """rosbags' rosbag2 writer with the flushing MCAP storage."""

    STORAGE_PLUGINS = {StoragePlugin.MCAP: _FlushingMcapStorage}


class EpisodeBagWriter:
    """One bag being written: every topic declared up front, messages as serialised CDR bytes, custom metadata."""

    def __init__(self, path: str | Path, topics: Sequence[BagTopic], metadata: dict,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.metadata = {str(k): str(v) for k, v in metadata.items()}
        self._writer = _Rosbag2Writer(self.path, version=ROSBAG2_VERSION, storage_plugin=StoragePlugin.MCAP)
        self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)  # zstd chunks, as rosbag2
        self._writer.open()
        self._storage: _FlushingMcapStorage = self._writer.storage  # type: ignore[assignment]
        self._storage.chunk_bytes = chunk_bytes
        self._storage.write_metadata(SOLE_R1_METADATA, self.metadata)
        store = typestore()
        self._connections = {t.name: self._writer.add_connection(t.name, t.msgtype, typestore=store,
                                                                 offered_qos_profiles=offered_qos(t.latched))
                             for t in topics}
        self.counts = dict.fromkeys(self._connections, 0)
        self.last_flush = time.monotonic()

    def write(self, topic: str, timestamp_ns: int, data: bytes | memoryview) -> bool:
        """Write one message of a declared topic at `timestamp_ns` (receive time); False for other topics."""
        connection = self._connections.get(topic)
        if connection is None:
            return False
        self._writer.write(connection, int(timestamp_ns), data)
        self.counts[topic] += 1
        return True

    def flush(self) -> None:
        """Make everything written so far survive a crash (closes the open chunk)."""
        self._storage.flush()
        self.last_flush = time.monotonic()

    def close(self, extra: dict | None = None) -> Path:
        """Finish the bag: summary, footer and metadata.yaml with the custom metadata (+ `extra`)."""
        for key, value in {**self.metadata, **(extra or {})}.items():
            self._writer.set_custom_data(str(key), str(value))
        self._writer.close()
        return self.path


def mcap_metadata_record(name: str, values: dict) -> bytes:
    """An MCAP Metadata record (opcode 0x0C: name, then a string map) as bytes."""
    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<I", len(data)) + data

    pairs = b"".join(string(str(k)) + string(str(v)) for k, v in values.items())
    body = string(name) + struct.pack("<I", len(pairs)) + pairs
    return b"\x0c" + struct.pack("<Q", len(body)) + body


# --------------------------------------------------------------------------------------------------- recovery
def scan_mcap(path: Path) -> tuple[dict, dict, list, dict]:
    """Schemas, channels, messages and sole_r1 metadata of an MCAP file, stopping at a truncated tail."""
    from mcap.exceptions import McapError
    from mcap.records import Channel, Chunk, Message, Metadata, Schema
    from mcap.stream_reader import StreamReader, breakup_chunk

    schemas, channels, messages, metadata = {}, {}, [], {}

    def take(record) -> None:
        if isinstance(record, Schema):
            schemas[record.id] = record
        elif isinstance(record, Channel):
            channels[record.id] = record
        elif isinstance(record, Message):
            messages.append(record)
        elif isinstance(record, Metadata) and record.name == SOLE_R1_METADATA:
            metadata.update(record.metadata)

    with open(path, "rb") as handle:
        reader = StreamReader(handle, emit_chunks=True, record_size_limit=1 << 30)
        try:
            for record in reader.records:
                if isinstance(record, Chunk):
                    # mcap decompresses zstd only with `zstandard`; rosbags' own zstd module is always there.
                    data = zstd.decompress(record.data) if record.compression == "zstd" else record.data
                    plain = dataclasses.replace(record, compression="", data=data)
                    for inner in breakup_chunk(plain):
                        take(inner)
                else:
                    take(record)
        except (McapError, struct.error, ValueError, EOFError, zstd.ZstdError):
            pass  # the truncated tail of a bag whose writer died: everything before it was read
    return schemas, channels, messages, metadata


def recover_bag(src: str | Path, dst: str | Path) -> Path:
    """Write the whole chunks of a bag left open by a crash (no footer, no metadata.yaml) as a complete bag."""
    src, dst = Path(src), Path(dst)
    files = sorted(src.glob("*.mcap")) if src.is_dir() else [src]
    if not files:
        raise BagError(f"{src}: no .mcap file to recover")
    schemas, channels, messages, metadata = scan_mcap(files[0])
    if not messages:
        raise BagError(f"{src}: no whole chunk was written before the recorder stopped: nothing to recover")
    known = {t.name: t for t in TOPICS}
    store = typestore()
    topics = [known.get(c.topic) or BagTopic(c.topic, c.topic, schemas[c.schema_id].name)
              for c in channels.values() if c.topic in known or schemas[c.schema_id].name in store.types]
    writer = EpisodeBagWriter(dst, topics, {**metadata, "recovered": "true"})
    for message in sorted(messages, key=lambda m: m.log_time):
        writer.write(channels[message.channel_id].topic, message.log_time, message.data)
    writer.close({"complete": "false"})
    return dst
