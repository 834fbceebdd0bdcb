"""GPU batch paths (run on a CUDA machine; skipped elsewhere): the on-device frame mirror gives exactly the batches
the host replay gives, picks up new frames across ring wrap-around, and the pinned-prefetch path gives consistent
transitions. Also runnable without pytest: `python tests/rl/test_loader_cuda.py`."""
import os
import sys
import tempfile

import numpy as np
import torch

try:
    import pytest
except ImportError:  # the GPU machine may lack pytest: see __main__ below
    pytest = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from learner_testlib import fill_episode, tiny_config  # noqa: E402
from sole_r1_rl.agent import DrQV2Agent  # noqa: E402
from sole_r1_rl.checkpoint import TrainingCounters, load_checkpoint, save_checkpoint  # noqa: E402
from sole_r1_rl.loader import BatchLoader  # noqa: E402
from sole_r1_rl.replay import ReplayBuffer  # noqa: E402

if pytest is not None:
    pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _replay(capacity=200, episodes=5):
    config = tiny_config(replay_capacity=capacity, device="cuda", frame_stack=3, nstep=3)
    replay = ReplayBuffer(config, seed=1)
    for episode in range(episodes):
        fill_episode(replay, config, episode, [float(episode)] * 30)
    return config, replay


def _assert_same(device_batch, host_batch):
    for name, array in host_batch.arrays().items():
        np.testing.assert_array_equal(device_batch.arrays()[name].cpu().numpy(), array, err_msg=name)


def test_device_mirror_batches_equal_host_batches_across_ring_wraparound():
    config, replay = _replay()
    loader = BatchLoader(replay, 32, "cuda", frames_on_device=True)
    assert loader.mode == "frames_on_device"
    for round_ in range(3):
        state = replay.rng.bit_generator.state
        device_batch = loader.next()
        replay.rng.bit_generator.state = state
        _assert_same(device_batch, replay.sample(32))
        for episode in range(4):   # 124 more frames: the 200-slot ring wraps and evicts old episodes
            fill_episode(replay, config, 10 * (round_ + 1) + episode, [1.0] * 30)


def test_pinned_prefetch_batches_hold_consistent_transitions():
    config, replay = _replay()
    with BatchLoader(replay, 32, "cuda", frames_on_device=False) as loader:
        assert loader.mode == "pinned_prefetch"
        for _ in range(5):
            batch = loader.next()
            episode, t = batch.proprio[:, 0].cpu().numpy(), batch.proprio[:, 1].cpu().numpy()
            newest = batch.obs["shoulder"][:, -1, 0, 0].cpu().numpy()    # last channel = newest frame
            np.testing.assert_array_equal(newest, (episode * 37 + t) % 256)
            np.testing.assert_array_equal(batch.next_proprio[:, 0].cpu().numpy(), episode)


def test_agent_learns_and_checkpoints_on_cuda_with_frames_on_device():
    _agent_learns_and_checkpoints(frames_on_device=True)


def test_agent_learns_and_checkpoints_on_cuda_with_pinned_host_frames():
    _agent_learns_and_checkpoints(frames_on_device=False)


def _agent_learns_and_checkpoints(frames_on_device):
    config, replay = _replay()
    agent = DrQV2Agent(config)
    before = [p.detach().clone() for p in agent.critic.parameters()]
    with BatchLoader(replay, 32, "cuda", frames_on_device=frames_on_device) as loader:
        for step in range(5):
            metrics = agent.update(loader.next(), step)
    assert all(torch.isfinite(v) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.critic.parameters()))
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "ckpt.pt")
        save_checkpoint(path, agent, TrainingCounters(updates=5), {"replay": replay.rng})
        fresh = DrQV2Agent(config)
        counters, _ = load_checkpoint(path, fresh, {"replay": replay.rng})
        assert counters.updates == 5 and fresh.update_count == 5
        for a, b in zip(agent.critic.parameters(), fresh.critic.parameters()):
            assert torch.equal(a, b)
        fresh.update(replay.sample(32), 6)   # optimiser state restored on the right device


def test_cuda_graph_update_takes_exactly_one_adam_step_and_learns_terminal_values():
    for overrides in (dict(), dict(num_critics=10, critic_subsample=2, actor_q="mean", critic_actor_ratio=4)):
        torch.manual_seed(0)
        config = tiny_config(device="cuda", lr=1e-3, batch_size=16, **overrides)
        replay = ReplayBuffer(config, seed=0)
        for episode in range(4):
            fill_episode(replay, config, episode, [0.5], terminal=True)   # the right Q is exactly 0.5
        agent = DrQV2Agent(config)
        assert agent._graphed is not None
        before = [p.detach().clone() for p in agent.critic.parameters()]
        agent.update(replay.sample(16), 0)   # captures (warm-up on a snapshot restored in place), then replays
        moved = max((a - b).abs().max().item() for a, b in zip(agent.critic.parameters(), before))
        # exactly one Adam step happened: its first step moves each weight by at most lr (warm-ups were undone)
        assert 0.5 * config.lr < moved <= 1.001 * config.lr
        for step in range(1, 300):
            metrics = agent.update(replay.sample(16), step)
        assert abs(float(metrics["critic_q"]) - 0.5) < 0.05 and float(metrics["critic_target_q"]) == 0.5


def test_acting_thread_keeps_working_while_the_learner_captures_graphs():
    import threading

    config = tiny_config(device="cuda", batch_size=32, image_size=32)
    replay = ReplayBuffer(config, seed=0)
    for episode in range(5):
        fill_episode(replay, config, episode, [0.1] * 30)
    agent = DrQV2Agent(config)
    sample = replay.sample(1)
    obs = {"shoulder": sample.obs["shoulder"][0], "wrist": sample.obs["wrist"][0], "proprio": sample.proprio[0]}
    stop, acts, errors = threading.Event(), [0], []

    def act_forever():
        while not stop.is_set():
            try:
                agent.act(obs, 10_000)
                acts[0] += 1
            except Exception as error:  # noqa: BLE001 -- collected and asserted below
                errors.append(repr(error))

    thread = threading.Thread(target=act_forever, daemon=True)
    thread.start()
    with BatchLoader(replay, 32, "cuda") as loader:
        for step in range(100):
            agent.update(loader.next(), step)
    stop.set()
    thread.join(5)
    assert agent._graphed is not None and len(agent._graphed.graphs) == 1
    assert acts[0] > 10 and errors == []


if __name__ == "__main__":
    failures = 0
    for name, test in list(globals().items()):
        if name.startswith("test_") and callable(test):
            try:
                test()
                print("PASS", name)
            except Exception as error:  # noqa: BLE001
                failures += 1
                print("FAIL", name, repr(error))
    sys.exit(1 if failures else 0)
