"""`sole-r1 export --format lerobot`: recorded bags become a LeRobot v3.0 dataset that reads back frame for frame."""
import json

import numpy as np
import pandas as pd

from sole_r1_ros.cli import main
from sole_r1_model.lerobot_dataset.format import read_dataset

from .bag_testlib import write_episode


def test_export_reads_back_with_the_recorded_frames_and_values(tmp_path):
    sources = [write_episode(tmp_path / "bags" / "episode_00004", frames=25, episode_id=4),
               write_episode(tmp_path / "bags" / "episode_00005", frames=18, episode_id=5, success=False,
                             task="Open the drawer.")]
    assert main(["export", str(tmp_path / "bags"), "--format", "lerobot", "--out", str(tmp_path / "ds")]) == 0

    ds = read_dataset(tmp_path / "ds")   # our reader, written from the v3.0 format definition
    info = ds.info
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10
    assert info["total_episodes"] == 2 and info["total_frames"] == 43 and ds.tasks == ["Reach the red goal.",
                                                                                       "Open the drawer."]
    assert info["features"]["observation.images.shoulder"]["shape"] == [32, 40, 3]
    assert info["features"]["observation.state"]["shape"] == [8] and info["features"]["action"]["shape"] == [7]
    assert list(ds.frames["index"]) == list(range(43))
    tasks = pd.read_parquet(tmp_path / "ds" / "meta" / "tasks.parquet")
    assert tasks.index.name == "task" and list(tasks["task_index"]) == [0, 1]
    stats = json.loads((tmp_path / "ds" / "meta" / "stats.json").read_text())
    assert np.array(stats["observation.images.wrist"]["mean"]).shape == (3, 1, 1)

    for episode_index, source in enumerate(sources):
        rows = ds.episode(episode_index)
        n = len(source.shoulder)
        assert len(rows) == n and list(rows["frame_index"]) == list(range(n))
        assert np.allclose(rows["timestamp"], np.arange(n) / 10.0)
        assert rows["task_index"].iloc[0] == episode_index and rows["next.done"].tolist() == [False] * (n - 1) + [True]
        state = np.stack(rows["observation.state"].to_numpy())
        assert np.allclose(state[:, :3], source.positions, atol=1e-6)
        assert np.allclose(state[:, 3:7], [1.0, 0.0, 0.0, 0.0]) and np.allclose(state[:, 7], source.gripper, atol=1e-6)
        assert np.allclose(np.stack(rows["action"].to_numpy()), source.actions, atol=1e-6)
        assert not rows["action.missing"].any()
        assert np.allclose(rows["progress.privileged"], source.privileged, atol=1e-4)
        perceived = rows["progress.perceived"].to_numpy()
        assert np.all(perceived[:5] == 0) and np.isclose(perceived[5], source.privileged[5], atol=1e-4)
        for key, recorded in (("observation.images.shoulder", source.shoulder),
                              ("observation.images.wrist", source.wrist)):
            video = ds.video_frames(episode_index, key).astype(int)
            recorded = np.stack(recorded).astype(int)
            assert video.shape == recorded.shape, key
            error = np.abs(video - recorded).mean(axis=(1, 2, 3))
            assert error.max() < 6.0, f"{key}: H.264 keeps each frame close ({error.max():.1f} levels)"
            # ... and in its place: every decoded frame is nearest to its own recorded frame.
            nearest = [int(np.argmin(np.abs(frame - recorded).mean(axis=(1, 2, 3)))) for frame in video]
            assert nearest == list(range(n)), key


def test_export_refuses_an_existing_dataset(tmp_path, capsys):
    write_episode(tmp_path / "bags" / "episode_00001", frames=5)
    assert main(["export", str(tmp_path / "bags"), "--out", str(tmp_path / "ds")]) == 0
    assert main(["export", str(tmp_path / "bags"), "--out", str(tmp_path / "ds")]) == 2
    assert "already holds a dataset" in capsys.readouterr().err
