"""Replay memory and persistence: one stored frame per camera per step; completed episodes survive `kill -9`;
checkpoints are atomic and an unreadable one says what to do."""
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import torch

from .learner_testlib import fill_episode, tiny_config
from sole_r1_rl.agent import DrQV2Agent
from sole_r1_rl.checkpoint import CheckpointError, TrainingCounters, load_checkpoint, save_checkpoint
from sole_r1_rl.replay import ReplayBuffer

HERE = os.path.dirname(os.path.abspath(__file__))


MEMORY_CHILD = textwrap.dedent("""
    import sys
    import numpy as np, psutil
    sys.path.insert(0, {here!r})
    from learner_testlib import numbered_frame, tiny_config
    from sole_r1_rl.replay import ReplayBuffer
    config = tiny_config(image_size=64, replay_capacity=3000, frame_stack=3, nstep=3)
    process = psutil.Process()
    replay = ReplayBuffer(config, directory={directory!r})
    frames = [numbered_frame(config, 0, t) for t in range(101)]
    before = process.memory_info().rss
    for episode in range(25):
        for t in range(100):
            frames[t]["proprio"][0] = episode
            frames[t + 1]["proprio"][0] = episode
            replay.add(frames[t], np.zeros(7), 0.0, frames[t + 1], truncated=t == 99)
    print(process.memory_info().rss - before)
""")


def test_memory_per_step_is_one_frame_per_camera(tmp_path):
    # Measured in a fresh process: in a long pytest run, memory freed by earlier tests is reused and hides growth.
    script = MEMORY_CHILD.format(here=HERE, directory=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    grown = int(result.stdout.split()[-1])
    one_frame_per_camera = 2 * 3 * 64 * 64
    expected = (2500 + 25) * one_frame_per_camera        # T+1 frames per episode, nothing duplicated
    assert 0.85 * expected < grown < 1.3 * expected, f"replay grew {grown} bytes, one frame/camera/step is {expected}"
    with np.load(tmp_path / "episode_00000000_100.npz") as stored:
        assert stored["frames_shoulder"].shape == (101, 3, 64, 64) and stored["frames_wrist"].shape == (101, 3, 64, 64)
        assert stored["action"].shape == (100, 7) and stored["reward"].shape == (100,)


CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np, torch
    sys.path.insert(0, {here!r})
    torch.set_num_threads(1)
    from learner_testlib import fill_episode, tiny_config
    from sole_r1_rl.agent import DrQV2Agent
    from sole_r1_rl.checkpoint import TrainingCounters, save_checkpoint
    from sole_r1_rl.replay import ReplayBuffer
    config = tiny_config(nstep=3)
    torch.manual_seed(0)
    np.random.seed(0)
    agent = DrQV2Agent(config)
    replay = ReplayBuffer(config, directory={directory!r}, seed=5)
    for episode in range(3):
        fill_episode(replay, config, episode, [float(episode + t) for t in range(6 + episode)])
        print("closed", episode, flush=True)
    for update in range(2):
        agent.update(replay.sample(8), update)
    save_checkpoint({checkpoint!r}, agent, TrainingCounters(env_steps=21, updates=2, episodes=3),
                    {{"replay": replay.rng}})
    print("checkpointed", flush=True)
    fill_episode(replay, config, 3, [9.0] * 5, close=False)
    print("mid-episode", flush=True)
    time.sleep(120)
""")


def _reference_run():
    """What an uninterrupted run does after the checkpoint: its next batch and its agent."""
    config = tiny_config(nstep=3)
    torch.manual_seed(0)
    np.random.seed(0)
    agent = DrQV2Agent(config)
    replay = ReplayBuffer(config, seed=5)
    for episode in range(3):
        fill_episode(replay, config, episode, [float(episode + t) for t in range(6 + episode)])
    for update in range(2):
        agent.update(replay.sample(8), update)
    return agent, replay.sample(8), torch.rand(3)


def test_sigkill_mid_episode_keeps_every_completed_episode_and_resume_continues_the_same_streams(tmp_path):
    directory, checkpoint = str(tmp_path / "replay"), str(tmp_path / "checkpoint.pt")
    script = CHILD.format(here=HERE, directory=directory, checkpoint=checkpoint)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in child.stdout:
            lines.append(line.strip())
            if line.startswith("mid-episode"):
                break
        assert lines[-1] == "mid-episode", lines
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    config = tiny_config(nstep=3)
    torch.manual_seed(123)                      # a different init: everything must come from the checkpoint
    agent = DrQV2Agent(config)
    replay = ReplayBuffer(config, directory=directory, seed=999)
    assert replay.num_episodes == 3 and len(replay) == 6 + 7 + 8   # the in-progress episode 3 is lost
    reference = ReplayBuffer(config)
    for episode in range(3):
        fill_episode(reference, config, episode, [float(episode + t) for t in range(6 + episode)])
    for episode in range(3):
        steps = np.arange(6 + episode)
        loaded, expected = replay.batch_at([episode] * len(steps), steps), reference.batch_at([episode] * len(steps), steps)
        for name, array in expected.arrays().items():
            np.testing.assert_array_equal(loaded.arrays()[name], array, err_msg=name)

    ref_agent, ref_batch, ref_draw = _reference_run()   # before the restore: it reseeds the global RNGs
    counters, _ = load_checkpoint(checkpoint, agent, {"replay": replay.rng})
    assert counters == TrainingCounters(env_steps=21, updates=2, episodes=3)
    assert agent.update_count == 2
    batch = replay.sample(8)
    for name, array in ref_batch.arrays().items():
        np.testing.assert_array_equal(batch.arrays()[name], array, err_msg=f"next batch differs in {name}")
    assert torch.equal(torch.rand(3), ref_draw)   # torch RNG restored too
    for (name, mine), theirs in zip(agent.critic.state_dict().items(), ref_agent.critic.state_dict().values()):
        torch.testing.assert_close(mine, theirs, msg=name)
    assert agent.critic_opt.state_dict()["state"][0]["step"] == ref_agent.critic_opt.state_dict()["state"][0]["step"]


def test_torn_manifest_lines_missing_files_and_temp_files_are_skipped(tmp_path):
    config = tiny_config()
    replay = ReplayBuffer(config, directory=str(tmp_path))
    for episode in range(3):
        fill_episode(replay, config, episode, [1.0] * 4)
    records = [json.loads(line) for line in open(tmp_path / "manifest.jsonl")]
    os.remove(tmp_path / records[1]["file"])
    (tmp_path / "episode_00000009_4.npz.tmp").write_bytes(b"half written")
    with open(tmp_path / "manifest.jsonl", "a") as manifest:
        manifest.write('{"episode": 9, "file": "episode_0000')   # torn by a crash mid-append
    reloaded = ReplayBuffer(config, directory=str(tmp_path))
    assert reloaded.num_episodes == 2 and len(reloaded) == 8
    assert reloaded.store.skipped == {"torn_manifest_lines": 1, "missing_files": 1, "unreadable_files": 0}
    episodes = {int(e) for e in reloaded.sample(64).proprio[:, 0]}
    assert episodes == {0, 2}
    fill_episode(reloaded, config, 3, [1.0] * 4)   # new episodes get fresh ids and files
    assert (tmp_path / "episode_00000003_4.npz").exists()


def test_episode_files_from_another_image_size_are_skipped_not_crashed(tmp_path):
    small = tiny_config(image_size=16)
    fill_episode(ReplayBuffer(small, directory=str(tmp_path)), small, 0, [1.0] * 3)
    big = ReplayBuffer(tiny_config(image_size=24), directory=str(tmp_path))
    assert len(big) == 0 and big.store.skipped["unreadable_files"] == 1


def test_loading_keeps_the_newest_episodes_that_fit(tmp_path):
    config = tiny_config(replay_capacity=1000)
    writer = ReplayBuffer(config, directory=str(tmp_path))
    for episode in range(5):
        fill_episode(writer, config, episode, [1.0] * 9)
    reader = ReplayBuffer(tiny_config(replay_capacity=25), directory=str(tmp_path))
    assert reader.num_episodes == 2
    assert {int(e) for e in reader.sample(32).proprio[:, 0]} == {3, 4}


class KilledMidWrite(Exception):
    """Stands in for SIGKILL during a checkpoint write."""


def test_a_checkpoint_write_killed_midway_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    config = tiny_config()
    agent = DrQV2Agent(config)
    path = str(tmp_path / "ckpt.pt")
    save_checkpoint(path, agent, TrainingCounters(env_steps=1))
    save_checkpoint(path, agent, TrainingCounters(env_steps=2))
    assert sorted(os.listdir(tmp_path)) == ["ckpt.prev.pt", "ckpt.pt"]    # no temp files left behind
    real_save = torch.save

    def dies_halfway(payload, handle):
        buffer = io.BytesIO()
        real_save(payload, buffer)
        handle.write(buffer.getvalue()[:buffer.tell() // 2])
        handle.flush()
        raise KilledMidWrite

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KilledMidWrite):
        save_checkpoint(path, agent, TrainingCounters(env_steps=3))
    monkeypatch.undo()
    counters, _ = load_checkpoint(path, DrQV2Agent(config))   # an in-place write would have torn this file
    assert counters.env_steps == 2
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(str(tmp_path / "missing.pt"), agent)


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_an_unreadable_checkpoint_names_the_file_and_the_previous_one_still_loads(tmp_path, damage):
    agent = DrQV2Agent(tiny_config())
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(str(path), agent, TrainingCounters(env_steps=1))
    save_checkpoint(str(path), agent, TrainingCounters(env_steps=2))
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[:len(data) // 2], "garbage": b"not a checkpoint"}[damage])
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(str(path), agent)
    message = str(error.value)
    assert str(path) in message and "--no-resume" in message and str(tmp_path / "checkpoint.prev.pt") in message
    counters, _ = load_checkpoint(str(tmp_path / "checkpoint.prev.pt"), agent)
    assert counters.env_steps == 1


@pytest.mark.parametrize("compress", [False, True])
def test_compress_replay_writes_deflated_episode_files_that_load_back_equal(tmp_path, compress):
    config = tiny_config(nstep=3)
    writer = ReplayBuffer(config, directory=str(tmp_path), compress=compress)
    for episode in range(2):
        fill_episode(writer, config, episode, [float(episode + t) for t in range(5)])
    files = sorted(tmp_path.glob("episode_*.npz"))
    assert len(files) == 2
    for name in files:
        with zipfile.ZipFile(name) as archive:
            kinds = {member.compress_type for member in archive.infolist()}
        assert kinds == {zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED}, name
    reader = ReplayBuffer(config, directory=str(tmp_path))
    assert reader.num_episodes == 2 and len(reader) == 10
    for episode in range(2):
        steps = np.arange(5)
        loaded, written = reader.batch_at([episode] * 5, steps), writer.batch_at([episode] * 5, steps)
        for name, array in written.arrays().items():
            np.testing.assert_array_equal(loaded.arrays()[name], array, err_msg=name)
