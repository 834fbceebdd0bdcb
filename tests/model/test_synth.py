"""`sole-r1 synth`: dataset rows in the exact query format, official-layout episodes, determinism, resume, holdout."""
import argparse
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

datasets = pytest.importorskip("datasets")
pytest.importorskip("metaworld")

from sole_r1_model.composite import CompositeFrameBuilder  # noqa: E402
from sole_r1_model.examples import COLUMNS, completion_text  # noqa: E402
from sole_r1_model.frames import count_frames  # noqa: E402
from sole_r1_model.parsing import parse_answer  # noqa: E402
from sole_r1_model.prompt import build_user_text  # noqa: E402
from sole_r1_model.synth import SynthConfig, run_synth  # noqa: E402

TRAIN = ("metaworld/coffee-button-v3", "metaworld/plate-slide-v3")
HELD = "metaworld/reach-v3"
# Two equal weights: a task's episodes 0 and 1 always run different policies (van der Corput mix).
SMALL = dict(tasks=TRAIN, holdout_tasks=(HELD,), episodes_per_task=2, image_size=64, key_frames=4,
             policy_mix="expert=1,do_nothing=1", max_steps=70, hold_steps=3, seed=3, quiet=True)


def _digests(root: Path) -> dict:
    """sha256 of every dataset and official-layout file (not markers: they hold timings)."""
    files = [p for sub in ("dataset", "test_videos", "heldout") for p in (root / sub).rglob("*") if p.is_file()]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files)}


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "a"
    result = run_synth(SynthConfig(out=str(out), workers=1, **SMALL))
    return out, result


@pytest.fixture(scope="module")
def dataset(first):
    return datasets.load_from_disk(str(first[0] / "dataset"))


def _markers(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "episodes").rglob("episode_*.json"))]


def test_dataset_loads_with_the_example_columns_and_k_minus_1_rows_per_episode(first, dataset):
    out, result = first
    assert tuple(dataset.column_names) == COLUMNS
    assert result.failed == 0 and result.new_episodes == 6 and result.episodes == 6
    assert len(dataset) == result.examples == 4 * (4 - 1)
    assert sorted(set(dataset["task_name"])) == sorted(t.split("/")[1] for t in TRAIN)
    assert "| metaworld/plate-slide-v3 | 2 | 1 | 6 |" in (out / "dataset" / "README.md").read_text()


def test_rows_round_trip_to_the_rewarder_query_format(dataset):
    height, width = CompositeFrameBuilder().output_size
    for row in dataset:
        image = row["images"][0]
        assert (image.height, image.width) == (height, width) and image.mode == "RGB"
        system, user = row["prompt"]
        assert system["role"] == "system" and user["role"] == "user"
        assert [part["type"] for part in user["content"]] == ["image", "text"]
        assert user["content"][1]["text"] == build_user_text(row["task"], row["previous_progress"])
        text = completion_text(row)
        assert text.startswith("<think>") and "</think><answer>" in text
        assert parse_answer(text, 0).progress == row["progress"]


def test_previous_progress_is_the_previous_key_frame_label(dataset):
    by_episode = {}
    for row in dataset:
        by_episode.setdefault(row["episode"], []).append(row)
    for rows in by_episode.values():
        rows.sort(key=lambda r: r["frame_index"])
        assert rows[0]["previous_progress"] == 0
        for before, after in zip(rows, rows[1:]):
            assert after["previous_progress"] == before["progress"]


def test_official_layout_has_one_label_per_video_frame_and_expert_reaches_100(first):
    out, _ = first
    markers = _markers(out)
    assert {m["policy"] for m in markers} == {"expert", "do_nothing"}
    for marker in markers:
        video = out / marker["video"]
        truth = json.loads((video.parent / video.stem / "data.json").read_text())
        assert set(truth) == {"task description", "ground-truth rewards", "success"}
        labels = truth["ground-truth rewards"]
        assert len(labels) == marker["num_frames"] == count_frames(video)
        assert all(isinstance(v, int) for v in labels)
        assert video.parent.name == ("successful" if truth["success"] else "unsuccessful")
        if marker["policy"] == "expert":
            assert labels[-1] == 100 and truth["success"]
        else:
            assert max(labels) < 20 and not truth["success"]


def test_holdout_task_is_only_under_heldout(first, dataset):
    out, _ = first
    assert "reach-v3" not in set(dataset["task_name"])
    held = list((out / "heldout" / "test_videos" / "metaworld" / "reach-v3").rglob("*.mp4"))
    assert len(held) == 2
    assert not (out / "test_videos" / "metaworld" / "reach-v3").exists()
    assert not list((out / "episodes" / "metaworld" / "reach-v3").glob("*.arrow"))


def test_same_seed_gives_identical_bytes_with_one_or_two_workers(first, tmp_path):
    out, _ = first
    result = run_synth(SynthConfig(out=str(tmp_path / "b"), workers=2, **SMALL))
    assert result.failed == 0
    assert _digests(out) == _digests(tmp_path / "b")


def test_resume_skips_finished_episodes_and_rebuilds_the_same_dataset(first, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(first[0], out)
    before = _digests(out)
    again = run_synth(SynthConfig(out=str(out), workers=1, **SMALL))
    assert again.new_episodes == 0 and again.episodes == 6 and again.examples == first[1].examples
    marker = sorted((out / "episodes" / "metaworld" / "plate-slide-v3").glob("*.json"))[0]
    marker.unlink()
    redone = run_synth(SynthConfig(out=str(out), workers=1, **SMALL))
    assert redone.new_episodes == 1
    assert _digests(out) == before


def test_other_content_settings_in_the_same_folder_are_refused(first, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(first[0], out)
    with pytest.raises(ValueError, match="key_frames"):
        run_synth(SynthConfig(out=str(out), **{**SMALL, "key_frames": 5}))


def test_cli_flags_mirror_the_config_dataclass():
    from sole_r1_model.commands import synth as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["synth", "--out", "x", "--tasks", "metaworld:all", "--noise-sigma", "0.1", "0.2"])
    from sole_r1_config import from_arguments

    config = from_arguments(SynthConfig, args)
    assert config == SynthConfig(out="x", tasks=("metaworld:all",), noise_sigma=(0.1, 0.2))


@pytest.mark.parametrize("mix", ["expert=0", "teleport=1", "expert"])
def test_bad_policy_mix_is_refused(mix):
    with pytest.raises(ValueError, match="policy_mix"):
        SynthConfig(out="x", policy_mix=mix)


def test_a_fidget_episode_works_the_gripper_without_solving_the_task():
    import numpy as np

    from sole_r1_model.synth.rollouts import EpisodePlan, build_policy, record_episode
    from sole_r1_model.synth.tasks import TaskRef
    from sole_r1_sim import make_env

    config = SynthConfig(out="unused", tasks=(HELD,), policy_mix="fidget=1", max_steps=40, quiet=True)
    ref = TaskRef("metaworld", "reach-v3")
    plan = EpisodePlan(ref=ref, index=0, seed=5, policy="fidget", length_fraction=1.0)
    policy = build_policy(plan)
    actions = [policy.act(None, None) for _ in range(40)]
    grips = [a[6] for a in actions]
    assert set(grips) == {-1.0, 1.0} and sum(1 for a, b in zip(grips, grips[1:]) if a != b) >= 3
    assert max(np.abs(a[:6]).max() for a in actions) <= 0.3
    env = make_env("metaworld", "reach-v3", image_size=(32, 32), seed=5)
    try:
        episode = record_episode(env, plan, config)
    finally:
        env.close()
    openings = [s.gripper_opening for s in episode.states]
    assert max(openings) - min(openings) > 0.3      # the gripper visibly closed and opened again
    assert not episode.success and max(episode.privileged) < 100
