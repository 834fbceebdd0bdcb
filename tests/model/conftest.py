"""Fixtures of the model tests: the tiny Qwen3-VL (built once, cached on disk), a rewarder on it, real frames."""
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_CACHE = REPO_ROOT / "build" / "test-cache"
LIFT_VIDEO = (REPO_ROOT.parent / "shared" / "data" / "sole_r1_official_lift" / "videos" /
              "robosuite_lift_episode_14_successful_max_reward_100.mp4")


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    """The tiny random Qwen3-VL checkpoint under build/test-cache (built on first use, then reused)."""
    from sole_r1_model.tiny import build_tiny_qwen3vl

    return build_tiny_qwen3vl(TEST_CACHE / "tiny-qwen3vl")


@pytest.fixture(scope="session")
def tiny_rewarder(tiny_model_path):
    """The `sole_r1` backend on the tiny model: CPU, float32, short completions."""
    from sole_r1_model.rewarders.config import HFRewarderConfig
    from sole_r1_model.rewarders.hf import HFRewarder

    rewarder = HFRewarder(HFRewarderConfig(model=str(tiny_model_path), device="cpu", dtype="float32",
                                           max_new_tokens=16, seed=0))
    yield rewarder
    rewarder.close()


@pytest.fixture(scope="session")
def lift_frames() -> list[tuple[np.ndarray, np.ndarray]]:
    """The first 4 frames of an official Lift video as (external, wrist) RGB pairs, downscaled to 192x192."""
    capture = cv2.VideoCapture(str(LIFT_VIDEO))
    frames = []
    while len(frames) < 4:
        ok, bgr = capture.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        half = rgb.shape[1] // 2  # left half external, right half wrist
        frames.append(tuple(cv2.resize(view, (192, 192), interpolation=cv2.INTER_AREA)
                            for view in (rgb[:, :half], rgb[:, half:])))
    capture.release()
    if len(frames) < 4:
        pytest.fail(f"cannot read 4 frames from {LIFT_VIDEO}")
    return frames


@pytest.fixture
def make_query(lift_frames):
    """Factory of ProgressQuery objects on real frames: make_query(task, previous=0, wrist=True, t=1)."""
    from sole_r1_model.rewarder import ProgressQuery

    def make(task="Pick up the cube from the table", previous=0.0, wrist=True, t=1, **extra):
        first, prev, cur = lift_frames[0], lift_frames[t - 1], lift_frames[t]
        return ProgressQuery(task=task, external=(first[0], prev[0], cur[0]),
                             wrist=(first[1], prev[1], cur[1]) if wrist else None,
                             previous_progress=previous, query_index=t, **extra)

    return make


@pytest.fixture
def one_torch_thread():
    """Train on one CPU thread: with other processes busy, two spinning OpenMP threads ran ~10x slower here."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mini_dataset(tmp_path_factory):
    """Folder of an 8-row dataset (save_to_disk), like the ones `sole-r1 synth` writes."""
    from tests.model.train_testlib import write_dataset

    return write_dataset(tmp_path_factory.mktemp("data") / "mini")
