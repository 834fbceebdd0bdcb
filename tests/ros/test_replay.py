"""`sole-r1 replay`: recorded episodes re-scored by other rewarders and compared with the live one and the truth."""
import csv
import json
import shutil

import numpy as np

from sole_r1_ros.cli import main
from sole_r1_ros.logic.bags import read_episode
from sole_r1_ros.logic.replay import recorded_record

from .bag_testlib import write_episode


def test_the_recorded_rewarder_is_read_back_at_the_frames_it_scored(tmp_path):
    source = write_episode(tmp_path / "episode_00004", frames=25)
    record = recorded_record(read_episode(tmp_path / "episode_00004"))
    assert record.model == "oracle" and record.num_frames == 25
    assert record.key_frame_indices == [0, 5, 10, 15, 20]
    assert np.allclose(record.key_progress[1:], source.privileged[[5, 10, 15, 20]], atol=1e-4)


def test_replay_compares_recorded_and_new_rewarders_against_privileged_progress(tmp_path):
    write_episode(tmp_path / "bags" / "episode_00004", frames=25, episode_id=4)
    write_episode(tmp_path / "bags" / "episode_00005", frames=18, episode_id=5, success=False)
    out = tmp_path / "replay"
    assert main(["replay", str(tmp_path / "bags"), "--rewarder", "oracle", "--num-key-frames", "5",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    sections = {s["rewarder"]: s for s in report["sections"]}
    assert set(sections) == {"recorded (oracle)", "oracle"}
    oracle = sections["oracle"]
    assert oracle["num_scored"] == 2 and oracle["pearson_mean"] > 0.999 and oracle["mae_mean"] < 0.01
    assert oracle["auroc_final"] == 1.0  # true success recorded: 100 % vs 40 % at the end
    assert [e["num_calls"] for e in oracle["episodes"]] == [4, 4]
    assert sections["recorded (oracle)"]["pearson_mean"] > 0.95
    assert report["num_successful"] == 1 and report["num_unsuccessful"] == 1
    assert (out / "report.md").is_file() and (out / "report_curves.png").stat().st_size > 10_000
    assert (out / "predictions" / "oracle" / "episode_00004.json").is_file()
    with open(out / "episode_00004_progress.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 25 and set(rows[0]) == {"frame", "stamp_ns", "ground_truth", "recorded (oracle)", "oracle"}
    assert float(rows[-1]["ground_truth"]) == 100.0 and abs(float(rows[-1]["oracle"]) - 100.0) < 1e-3


def test_replay_reads_a_bag_whose_recorder_crashed(tmp_path):
    write_episode(tmp_path / "full" / "episode_00004", frames=40)
    crashed = tmp_path / "bags" / "episode_00004"
    crashed.mkdir(parents=True)
    mcap = next((tmp_path / "full" / "episode_00004").glob("*.mcap"))
    data = mcap.read_bytes()
    (crashed / mcap.name).write_bytes(data[: len(data) * 2 // 3])   # cut mid-file: no footer, no metadata.yaml
    episode = read_episode(crashed, tmp_path / "scratch")
    assert episode.recovered and 5 < episode.num_frames < 40 and episode.metadata["task"] == "Reach the red goal."
    shutil.rmtree(tmp_path / "scratch")
    assert main(["replay", str(tmp_path / "bags"), "--rewarder", "oracle", "--num-key-frames", "3",
                 "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["bags"][0]["recovered"] is True
