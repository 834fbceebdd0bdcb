"""Test-session setup shared by every test folder: ROS isolation and paths.

Each pytest process (each xdist worker, each concurrent session) gets its own ROS_DOMAIN_ID, and discovery stays
on this host, so tests never see each other's nodes -- set before anything imports rclpy.
"""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
OFFICIAL_LIFT = SHARED_DATA / "sole_r1_official_lift"


def _domain_id() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    # 1..100: ids above ~120 collide with ephemeral ports on Linux; the pid spreads concurrent sessions apart.
    return 1 + (os.getpid() * 7 + index * 13) % 100


os.environ["ROS_DOMAIN_ID"] = str(_domain_id())
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def official_lift() -> Path:
    """The official SOLE-R1 Lift records (../shared/data/sole_r1_official_lift)."""
    if not OFFICIAL_LIFT.is_dir():
        pytest.fail(f"test data missing: {OFFICIAL_LIFT} (the shared/ folder must sit beside the repository)")
    return OFFICIAL_LIFT
