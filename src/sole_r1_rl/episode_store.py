"""Crash-safe episode files: one .npz per completed episode plus an append-only, fsync'd manifest.

Write order makes `kill -9` at any instant safe: the episode is written to a temporary file, flushed and fsync'd,
renamed into place (atomic on POSIX), the directory fsync'd, and only then a manifest line is appended and
fsync'd. A reader trusts the manifest: a torn last line, a missing or unreadable file are skipped and counted, and
stray temporary files are never read.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Optional

import numpy as np

LOG = logging.getLogger(__name__)
MANIFEST = "manifest.jsonl"


class EpisodeStore:
    """Directory of completed episodes (see module docstring)."""

    def __init__(self, directory: str, compress: bool = False) -> None:
        self.directory = os.path.abspath(directory)
        self.compress = compress
        os.makedirs(self.directory, exist_ok=True)
        self.manifest_path = os.path.join(self.directory, MANIFEST)
        self.skipped: dict[str, int] = {"torn_manifest_lines": 0, "missing_files": 0, "unreadable_files": 0}

    def write(self, episode_id: int, arrays: dict, meta: dict) -> str:
        """Durably store one episode; returns its file name. The manifest line is written last."""
        name = f"episode_{episode_id:08d}_{int(meta['length'])}.npz"
        final = os.path.join(self.directory, name)
        temporary = final + ".tmp"
        with open(temporary, "wb") as handle:
            (np.savez_compressed if self.compress else np.savez)(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        _fsync_directory(self.directory)
        record = {"episode": int(episode_id), "file": name, **{k: _plain(v) for k, v in meta.items()}}
        line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
        fd = os.open(self.manifest_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return name

    def entries(self) -> list[dict]:
        """Manifest records in write order; torn or garbled lines are skipped (counted in `skipped`)."""
        if not os.path.exists(self.manifest_path):
            return []
        records = []
        with open(self.manifest_path, "rb") as handle:
            for raw in handle:
                try:
                    record = json.loads(raw.decode("utf-8"))
                    if not isinstance(record, dict) or "file" not in record or "episode" not in record:
                        raise ValueError("incomplete record")
                except ValueError:
                    self.skipped["torn_manifest_lines"] += 1
                    LOG.warning("replay manifest %s: skipping an unreadable line (%d bytes)",
                                self.manifest_path, len(raw))
                    continue
                records.append(record)
        return records

    def forget(self, records: list[dict], kept: list[dict]) -> None:
        """Rewrite the manifest (atomically) with only the `kept` records, then delete the files of `records`."""
        temporary = self.manifest_path + ".tmp"
        with open(temporary, "wb") as handle:
            handle.write("".join(json.dumps(record, sort_keys=True) + "\n" for record in kept).encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.manifest_path)
        _fsync_directory(self.directory)
        for record in records:
            path = os.path.join(self.directory, os.path.basename(record["file"]))
            if os.path.exists(path):
                os.remove(path)

    def read(self, record: dict) -> Optional[dict]:
        """The arrays of one manifest record, or None (logged, counted) when the file is missing or corrupt."""
        path = os.path.join(self.directory, os.path.basename(record["file"]))
        if not os.path.exists(path):
            self.skipped["missing_files"] += 1
            LOG.warning("replay: episode file %s listed in the manifest is missing; skipped", path)
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError) as error:
            self.skipped["unreadable_files"] += 1
            LOG.warning("replay: cannot read episode file %s (%s); skipped", path, error)
            return None


def _plain(value):
    """JSON-friendly scalar."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _fsync_directory(directory: str) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
