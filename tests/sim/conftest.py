"""Shared setup for simulation tests: headless EGL rendering, small images, quiet RoboSuite logs."""
import logging
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports mujoco

import numpy as np
import pytest

logging.getLogger("robosuite_logs").setLevel(logging.ERROR)

IMAGE_SIZE = (64, 64)


def spearman(values) -> float:
    """Spearman rank correlation of `values` with time (ties get average ranks)."""
    from scipy.stats import spearmanr

    return float(spearmanr(np.arange(len(values)), np.asarray(values)).correlation)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
