"""Where the project's config/ and launch/ folders are, in a source checkout or an installed ROS package."""
from __future__ import annotations

import os
from pathlib import Path

CONFIG_DIR_ENV = "SOLE_R1_CONFIG_DIR"   # a config/ folder of your own (graphs, tasks, rewarders)
_SOURCE_ROOT = Path(__file__).resolve().parents[2]  # src/sole_r1_config/paths.py -> repo root (editable install)


def share_dir() -> Path:
    """Folder holding config/ and launch/: $SOLE_R1_SHARE_DIR, the source checkout, or share/sole_r1."""
    override = os.environ.get("SOLE_R1_SHARE_DIR")
    if override:
        return Path(override)
    if (_SOURCE_ROOT / "config").is_dir():
        return _SOURCE_ROOT
    try:  # installed with colcon: launch/ and config/ live in share/sole_r1
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("sole_r1"))
    except Exception as exc:  # noqa: BLE001
        raise FileNotFoundError(
            "cannot find sole_r1's config/ folder: set SOLE_R1_SHARE_DIR to the repository root") from exc


def config_dir() -> Path:
    """The config/ folder (graphs, tasks, rewarders, rviz)."""
    return Path(os.environ.get(CONFIG_DIR_ENV) or share_dir() / "config")


def resolve_config_path(name: str, subdir: str = "") -> Path:
    """A config file given as a path, or as a name relative to config/<subdir> (with or without .yaml)."""
    candidate = Path(name).expanduser()
    if candidate.is_file():
        return candidate.resolve()
    base = config_dir() / subdir
    for path in (base / name, base / f"{name}.yaml"):
        if path.is_file():
            return path
    available = sorted(p.stem for p in base.glob("*.yaml")) if base.is_dir() else []
    raise FileNotFoundError(f"no config '{name}' (looked for a file, and in {base}); available: {available}")
