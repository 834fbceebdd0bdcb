"""The sim graph with record:=true: each episode lands in its own bag that holds what the graph published, and
`sole-r1 replay` re-scores it; video_source plays a bag back as the camera topics."""
import json
import subprocess
import sys

import numpy as np
import pytest
from sensor_msgs.msg import Image

from sole_r1_ros.cli import main
from sole_r1_ros.logic.bag_files import TOPICS
from sole_r1_ros.logic.bags import find_bags, read_episode
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.images import image_to_numpy

from .bag_testlib import write_episode

LEARNER = "image_size=64 batch_size=16 num_seed_steps=1000 num_expl_steps=1000"


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@pytest.mark.slow
def test_sim_episodes_are_recorded_read_back_and_replayed(ros, launch_graph, tmp_path):
    published = ros.collect(Image, conv.SHOULDER_IMAGE, conv.RELIABLE_QOS)
    run_dir = tmp_path / "run"
    graph = launch_graph("sim_metaworld", record="true", rewarder="oracle", mode="lockstep", image_size=64,
                         episode_steps=12, total_steps=24, reward_every=4, progress_threshold=101.0,
                         run_dir=str(run_dir), agent_overrides=LEARNER)
    code = graph.process.wait(300)
    log = graph.log()
    assert code == 0, log[-3000:]
    assert "bag closed" in log, log[-3000:]

    episodes = [read_episode(path) for path in find_bags([run_dir / "bags"])]
    # The bridge's own first episode is cut short by the episode manager's first reset; then two of 12 steps.
    full = [e for e in episodes if e.num_frames >= 13]
    summary = [(e.name, e.metadata.get("end_reason"), e.num_frames) for e in episodes]
    assert len(full) == 2 and full[0].metadata["end_reason"] == "time_limit", summary
    # The graph stops as soon as the manager publishes the last ENDED: the recorder may be stopped first.
    assert full[1].metadata["end_reason"] in ("time_limit", "shutdown"), summary
    frames_seen = {_stamp(m): m for _, m in published}
    for episode in full:
        assert not episode.recovered and episode.metadata["complete"] == "true"
        assert episode.metadata["rewarder"] == "oracle" and episode.metadata["task_name"] == "reach-v3"
        assert episode.metadata["config_hash"] and episode.metadata["git_revision"] != ""
        assert "task=reach-v3" in episode.metadata["run_config"]
        assert set(episode.counts) == {t.name for t in TOPICS}
        assert all(episode.counts[t.name] > 0 for t in TOPICS), episode.counts   # every topic, e-stop included
        shoulder, wrist = episode.camera_stamps["shoulder"], episode.camera_stamps["wrist"]
        assert len(wrist) == episode.counts[conv.WRIST_IMAGE]
        common = min(len(shoulder), len(wrist))
        # A stop can fall between the two images of the last frame pair; otherwise both cameras are complete.
        allowed = 1 if episode.metadata["end_reason"] == "shutdown" else 0
        assert 13 <= common and abs(len(shoulder) - len(wrist)) <= allowed, episode.counts
        assert np.all(np.diff(shoulder) > 0), "frames in order"
        assert np.array_equal(shoulder[:common], wrist[:common]), "the bridge stamps both cameras alike"
        # No frame of the episode lost: every frame the test saw between the first and last recorded one is there.
        seen = sorted(s for s in frames_seen if shoulder[0] <= s <= shoulder[-1])
        assert seen == list(shoulder)
        for index, frame in episode.iter_frames("shoulder"):
            assert np.array_equal(frame, image_to_numpy(frames_seen[int(shoulder[index])], "rgb8"))
        # Bag time (receive time) runs forward on every topic, as `ros2 bag play` replays it.
        for role, messages in episode.messages.items():
            assert all(a[0] <= b[0] for a, b in zip(messages, messages[1:])), role
        truth = episode.privileged_progress()
        assert truth is not None and len(truth) == len(shoulder) and episode.true_success is not None

    out = tmp_path / "replay"
    assert main(["replay", *(str(e.path) for e in full), "--rewarder", "oracle", "--num-key-frames", "4",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    sections = {s["rewarder"]: s for s in report["sections"]}
    assert set(sections) == {"recorded (oracle)", "oracle"}, list(sections)
    assert sections["oracle"]["num_scored"] == 2 and sections["oracle"]["mae_mean"] < 0.5
    assert (out / "report_curves.png").is_file() and (out / "report.md").is_file()
    assert len(list(out.glob("*_progress.csv"))) == 2


def test_video_source_plays_a_bag_as_the_camera_topics(ros, tmp_path):
    source = write_episode(tmp_path / "episode_00004", frames=12)
    shoulder = ros.collect(Image, conv.SHOULDER_IMAGE, conv.RELIABLE_QOS)
    wrist = ros.collect(Image, conv.WRIST_IMAGE, conv.RELIABLE_QOS)
    # Looping: the test needs no guess of when discovery completes, it checks a whole pass in order.
    process = subprocess.Popen([sys.executable, "-m", "sole_r1_ros.nodes.video_source", "--ros-args",
                                "-p", f"bag:={tmp_path / 'episode_00004'}", "-p", "loop:=true", "-p", "rate:=20.0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        ros.wait_for(lambda: process.poll() is not None or len(wrist) >= 30, 60, "two passes over the bag")
    finally:
        process.terminate()
        log = process.communicate(timeout=20)[0].decode(errors="replace")
    assert len(wrist) >= 30, log
    for received, recorded in ((shoulder, source.shoulder), (wrist, source.wrist)):
        frames = [image_to_numpy(msg, "rgb8") for _, msg in received[:24]]
        first = next(k for k, frame in enumerate(recorded) if np.array_equal(frame, frames[0]))
        for i, frame in enumerate(frames):   # every frame, in recorded order, wrapping at the end of the bag
            assert np.array_equal(frame, recorded[(first + i) % 12]), i
