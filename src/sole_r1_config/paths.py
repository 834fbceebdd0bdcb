"""Where the project's folders are: config/ and launch/, node executables, side virtual environments.

Three layouts: a source checkout (editable pip install), a colcon install (share/sole_r1, lib/sole_r1), and a copy
named by environment variables (Docker images, your own config/).
"""
from __future__ import annotations

import os
from pathlib import Path

from typing import Optional

CONFIG_DIR_ENV = "SOLE_R1_CONFIG_DIR"   # a config/ folder of your own (graphs, tasks, rewarders)
VENV_ROOT_ENV = "SOLE_R1_VENV_ROOT"     # folder holding side venvs such as .venv-libero
SOURCE_DIR_FILE = "source_dir"          # written by CMakeLists.txt into share/sole_r1: where the checkout was
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


def models_dir() -> Path:
    """The models/ folder: reward models the project trains and ships (each `models/<name>/rewarder.yaml`)."""
    return share_dir() / "models"


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


def source_root() -> Optional[Path]:
    """The source checkout: the one this code runs from, else the one a colcon install was built from (or None)."""
    if (_SOURCE_ROOT / "config").is_dir():
        return _SOURCE_ROOT
    try:
        recorded = (share_dir() / SOURCE_DIR_FILE).read_text().strip()
    except (OSError, FileNotFoundError):
        return None
    return Path(recorded) if recorded and Path(recorded).is_dir() else None


def installed_executable(name: str) -> Optional[Path]:
    """lib/sole_r1/<name> of a colcon install when this code runs from one (None in a source checkout)."""
    share = share_dir()
    if share.name != "sole_r1" or share.parent.name != "share":
        return None
    script = share.parents[1] / "lib" / "sole_r1" / name
    return script if script.is_file() else None


def venv_python(venv: str) -> Path:
    """The Python of a side virtual environment (e.g. .venv-libero): an absolute path, or a folder name looked up
    in $SOLE_R1_VENV_ROOT and then in the source checkout -- never in the working directory."""
    path = Path(venv).expanduser()
    roots = [Path(os.environ[VENV_ROOT_ENV])] if os.environ.get(VENV_ROOT_ENV) else []
    roots += [root for root in (source_root(),) if root is not None]
    candidates = [path / "bin" / "python"] if path.is_absolute() else [r / path / "bin" / "python" for r in roots]
    for python in candidates:
        if python.is_file():
            return python
    where = ", ".join(str(c.parent.parent) for c in candidates) or "nowhere: no source checkout is known"
    raise FileNotFoundError(f"virtual environment {venv} not found (looked in {where}): create it (e.g. `make "
                            f"setup-libero` in the checkout) or set {VENV_ROOT_ENV} to the folder that holds it")
