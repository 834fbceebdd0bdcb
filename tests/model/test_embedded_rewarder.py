"""The shipped `embedded` rewarder (models/embedded): loads offline by name, stays small, and tracks real progress.

The behavioural check uses official Lift episode 14 (successful). `sole-r1 eval` of this checkpoint on the four
official episodes (docs/results.md) measured on it: Pearson 0.85 with the ground truth, final progress 100 %, no
invalid answer. Greedy decoding makes the answers deterministic for one machine; the thresholds below leave room
for float differences between CPUs and torch builds (a flipped token can shift one key frame by a few percent), while
a model that ignores the images (constant or random answers) fails every one of them.
"""
import json

import numpy as np
import pytest

from sole_r1_model.evaluation.metrics import pearson
from sole_r1_model.frames import read_frames, split_frames
from sole_r1_model.offline import score_video

EPISODE = "robosuite_lift_episode_14_successful_max_reward_100"


@pytest.fixture(scope="module")
def embedded():
    """The `embedded` rewarder on the CPU, as `--rewarder embedded` builds it."""
    from sole_r1_model.rewarders import make_rewarder
    from sole_r1_model.rewarders.config import resolve_spec

    backend, config = resolve_spec("embedded")
    rewarder = make_rewarder({"backend": backend, **vars(config), "device": "cpu"})
    yield rewarder
    rewarder.close()


def test_the_name_embedded_selects_the_shipped_folder_which_fits_the_size_budget(repo_root):
    from sole_r1_model.rewarders.config import resolve_spec

    backend, config = resolve_spec("embedded")
    folder = repo_root / "models" / "embedded"
    assert backend == "sole_r1" and config.model == str(folder.resolve())
    assert config.temperature == 0 and config.constrain_format          # deterministic, never malformed
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size <= 15 * 2**20, f"models/embedded is {size / 2**20:.1f} MiB; the budget is 15 MiB"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja",
                 "preprocessor_config.json", "README.md"):
        assert (folder / name).is_file(), name


def test_progress_rises_with_the_ground_truth_on_an_official_lift_episode(embedded, official_lift):
    external, wrist = split_frames(read_frames(official_lift / "videos" / f"{EPISODE}.mp4").frames)
    truth = json.loads((official_lift / "ground_truth" / f"{EPISODE}.json").read_text())
    record = score_video(embedded, external, wrist, task=truth["task description"], progress=False)
    rewards = np.asarray(record.rewards, dtype=float)
    assert all(record.key_valid)
    assert pearson(rewards, truth["ground-truth rewards"]) >= 0.6
    assert rewards[-1] >= 90.0                          # the cube ends lifted: the model calls it (near) done
    assert rewards[-5:].mean() - rewards[:5].mean() >= 50.0
    traces = [t for t in record.reasoning_traces if t.strip()]
    assert all(t.startswith("<think>") and "</think><answer>" in t for t in traces)
    assert any("cube" in t for t in traces)             # it reasons about the object of the task


def test_a_blank_scene_is_not_called_progress(embedded):
    from sole_r1_model.rewarder import ProgressQuery

    grey = np.full((256, 256, 3), 128, dtype=np.uint8)
    query = ProgressQuery(task="Pick up the cube from the table.", external=(grey, grey, grey),
                          wrist=(grey, grey, grey), previous_progress=0.0, query_index=1)
    result = embedded.score([query])[0]
    assert result.valid and result.progress <= 20.0     # nothing happened between identical frames
