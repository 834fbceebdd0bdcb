"""Add per-frame columns to a LeRobot dataset in place, in the dataset's own layout, no file ever half-written.

What changes (format.py describes the v2.x and v3.0 layouts):
- every data parquet file gets the columns (its row groups, compression and schema metadata kept);
- meta/info.json `features` gets one entry per column: dtype, shape [1], names null;
- numeric columns get stats wherever the layout keeps them: meta/stats.json (when present), the per-episode
  `stats/<feature>/<stat>` columns of meta/episodes/*.parquet (v3.0) or meta/episodes_stats.jsonl (v2.1), with
  the quantiles (q01, ...) the dataset's other stats have. String columns get none, as LeRobot computes none.
Each new file is first written beside its original (`<name>.sole-r1-tmp`); only when every one is written are
they renamed over the originals, data first and info.json last. An interruption before then leaves the dataset
as it was (the next run deletes the leftovers); the renames themselves take milliseconds.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from sole_r1_model.lerobot_dataset import format as fmt

log = logging.getLogger(__name__)

TMP_SUFFIX = ".sole-r1-tmp"
COLUMN_DTYPES = ("float32", "string")


@dataclasses.dataclass
class FrameColumn:
    """A column to add: its name, dtype (float32 or string) and values per episode, indexed by frame_index."""

    name: str
    dtype: str
    values: dict                    # episode_index -> per-frame values (len == episode length)

    def __post_init__(self) -> None:
        if self.dtype not in COLUMN_DTYPES:
            raise ValueError(f"column {self.name!r}: dtype must be one of {COLUMN_DTYPES}, got {self.dtype!r}")

    @property
    def feature(self) -> dict:
        """The meta/info.json entry of this column."""
        return {"dtype": self.dtype, "shape": [1], "names": None}

    @property
    def numeric(self) -> bool:
        """True when LeRobot keeps stats for it."""
        return self.dtype != "string"


def check_new_columns(info: dict, names: Sequence[str], overwrite: bool = False) -> None:
    """ValueError when a name is taken (by LeRobot's own features, a camera, or -- without overwrite -- any)."""
    features = info["features"]
    for name in names:
        feature = features.get(name)
        if name in fmt.DEFAULT_FEATURES or (feature and feature.get("dtype") in fmt.CAMERA_DTYPES):
            raise ValueError(f"column {name!r} would replace the dataset's own feature {name!r}; choose another name")
        if feature is not None and not overwrite:
            raise ValueError(f"the dataset already has a feature {name!r}; pass --overwrite to replace it")


def add_frame_columns(root: str | Path, columns: Sequence[FrameColumn], overwrite: bool = False) -> None:
    """Write `columns` into the dataset at `root` (module docstring); ValueError before writing on bad input."""
    root = Path(root)
    info = fmt.read_info(root)
    episodes = fmt.list_episodes(root, info)
    check_new_columns(info, [c.name for c in columns], overwrite)
    for column in columns:
        for episode in episodes:
            count = len(column.values.get(episode.index, ()))
            if count != episode.length:
                raise ValueError(f"column {column.name!r}: {count} values for episode {episode.index} "
                                 f"of {episode.length} frames")
    remove_leftovers(root)
    pending: list[Path] = []
    try:
        for data_file in dict.fromkeys(e.data_file for e in episodes):
            pending.append(_write_data_file(root / data_file, columns))
        pending += _write_stats(root, info, [c for c in columns if c.numeric])
        features = {k: v for k, v in info["features"].items() if k not in fmt.DEFAULT_FEATURES}
        features.update({c.name: c.feature for c in columns})
        info["features"] = {**features, **{k: v for k, v in info["features"].items() if k in fmt.DEFAULT_FEATURES}}
        pending.append(_write_text(root / fmt.INFO_PATH, json.dumps(info, indent=4) + "\n"))
        for tmp in pending:  # on disk before any rename: a power cut cannot leave a renamed empty file
            with open(tmp, "rb+") as stream:
                os.fsync(stream.fileno())
        for tmp in pending:  # info.json last: a dataset never announces columns its files do not hold
            os.replace(tmp, tmp.with_name(tmp.name[: -len(TMP_SUFFIX)]))
        pending = []
    finally:
        for tmp in pending:
            tmp.unlink(missing_ok=True)


def remove_leftovers(root: Path) -> None:
    """Delete the temporary files of an interrupted run (never renamed, so never part of the dataset)."""
    for folder in ("meta", "data"):
        for path in (root / folder).rglob(f"*{TMP_SUFFIX}"):
            log.info("removing %s, left by an interrupted run", path)
            path.unlink()


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + TMP_SUFFIX)


def _write_text(path: Path, text: str) -> Path:
    """Write `text` to the temporary sibling of `path`; returns that sibling."""
    tmp = _tmp(path)
    tmp.write_text(text)
    return tmp


def _write_data_file(path: Path, columns: Sequence[FrameColumn]) -> Path:
    """One data parquet file with the columns added (replaced), row group by row group; returns the temp file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    compression = "snappy"
    if source.metadata.num_row_groups and source.metadata.num_columns:
        compression = source.metadata.row_group(0).column(0).compression.lower().replace("uncompressed", "none")
    metadata = _hf_metadata(source.schema_arrow.metadata or {}, columns)
    tmp, writer = _tmp(path), None
    try:
        for group in range(source.metadata.num_row_groups):
            table = source.read_row_group(group)
            episodes = table.column("episode_index").to_numpy()
            frames = table.column("frame_index").to_numpy()
            for column in columns:
                if column.name in table.column_names:
                    table = table.drop_columns([column.name])
                table = table.append_column(column.name, _values(column, episodes, frames, path))
            table = table.replace_schema_metadata(metadata)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression=compression)
            writer.write_table(table)
        if writer is None:  # a file without rows: still add the (empty) columns
            table = source.read().replace_schema_metadata(metadata)
            for column in columns:
                if column.name in table.column_names:
                    table = table.drop_columns([column.name])
                table = table.append_column(column.name, pa.array([], _arrow_type(column)))
            pq.write_table(table, tmp, compression=compression)
    finally:
        if writer is not None:
            writer.close()
    return tmp


def _arrow_type(column: FrameColumn):
    import pyarrow as pa

    return pa.float32() if column.dtype == "float32" else pa.string()


def _values(column: FrameColumn, episodes: np.ndarray, frames: np.ndarray, path: Path):
    """The column's values for these rows, looked up by (episode_index, frame_index)."""
    import pyarrow as pa

    out = np.zeros(len(episodes), np.float32) if column.numeric else np.empty(len(episodes), object)
    for episode in np.unique(episodes):
        rows = np.nonzero(episodes == episode)[0]
        if int(episode) not in column.values:
            raise ValueError(f"{path}: rows of episode {episode}, which the episode index does not list")
        values = column.values[int(episode)]
        wanted = frames[rows]
        if wanted.min() < 0 or wanted.max() >= len(values):
            raise ValueError(f"{path}: episode {episode} has frame_index {wanted.max()}, "
                             f"but the episode index gives it {len(values)} frames")
        out[rows] = np.asarray(values, dtype=out.dtype)[wanted]
    return pa.array(out if column.numeric else out.tolist(), _arrow_type(column))


def _hf_metadata(metadata: dict, columns: Sequence[FrameColumn]) -> dict:
    """Schema metadata with the columns in the `huggingface` features, when the file carries them (datasets)."""
    metadata = dict(metadata)
    raw = metadata.get(b"huggingface")
    if raw is None:
        return metadata
    try:
        hf = json.loads(raw)
        features = hf["info"]["features"]
    except (ValueError, KeyError, TypeError):
        return metadata
    if isinstance(features, dict):
        for column in columns:
            features[column.name] = {"dtype": column.dtype, "_type": "Value"}
        metadata[b"huggingface"] = json.dumps(hf).encode()
    return metadata


def _write_stats(root: Path, info: dict, columns: Sequence[FrameColumn]) -> list[Path]:
    """Temp files of the stats the layout keeps, with the numeric columns' stats added."""
    if not columns:
        return []
    written = []
    stats_path = root / fmt.STATS_PATH
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else None
    episode_stats_path = root / fmt.LEGACY_EPISODES_STATS_PATH
    legacy_rows = fmt.read_jsonl(episode_stats_path) if fmt.is_legacy(info) and episode_stats_path.is_file() else None
    quantiles = fmt.quantile_keys(stats or {}) or fmt.quantile_keys((legacy_rows or [{}])[0].get("stats", {}))
    per_episode = {c.name: {e: fmt.feature_stats(np.asarray(v, np.float64), quantiles) for e, v in c.values.items()}
                   for c in columns}
    if stats is not None:
        for column in columns:
            everything = np.concatenate([np.asarray(v, np.float64) for v in column.values.values()])
            stats[column.name] = fmt.feature_stats(everything, quantiles)
        written.append(_write_text(stats_path, json.dumps(stats, indent=4) + "\n"))
    if legacy_rows is not None:
        for row in legacy_rows:
            row.setdefault("stats", {}).update({name: by_episode[int(row["episode_index"])]
                                                for name, by_episode in per_episode.items()})
        written.append(_write_text(episode_stats_path, "".join(json.dumps(r) + "\n" for r in legacy_rows)))
    if not fmt.is_legacy(info):
        written += [_write_episodes_file(path, per_episode, quantiles)
                    for path in sorted((root / "meta" / "episodes").glob("*/*.parquet"))]
    return written


def _write_episodes_file(path: Path, per_episode: dict, quantiles: Sequence[str]) -> Path:
    """A v3.0 episodes parquet file with `stats/<column>/<stat>` columns added (replaced); returns the temp file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    episodes = [int(e) for e in table.column("episode_index").to_pylist()]
    for name, by_episode in per_episode.items():
        for stat in ("min", "max", "mean", "std", *quantiles, "count"):
            key = f"stats/{name}/{stat}"
            if key in table.column_names:
                table = table.drop_columns([key])
            kind = pa.int64() if stat == "count" else pa.float64()
            table = table.append_column(key, pa.array([by_episode[e][stat] for e in episodes], pa.list_(kind)))
    tmp = _tmp(path)
    pq.write_table(table, tmp)
    return tmp
