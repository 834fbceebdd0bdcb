"""benchmarks/learner_speed.py --peer PATH: the official DrQ-v2 agent timed from a user's checkout.

CI has no drqv2 checkout, so each test writes a stand-in one: a drqv2.py and utils.py with the official API surface
(`DrQV2Agent(obs_shape, action_shape, device, ...)`, `update(replay_iter, step)` pulling `next(replay_iter)` through
`utils.to_torch`, and the official's unused hydra/omegaconf imports) whose agent records what it was given."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

STAND_IN_DRQV2 = '''
import hydra
import torch

import utils

CONSTRUCTED, CONSUMED = [], []


class DrQV2Agent:
    def __init__(self, obs_shape, action_shape, device, lr, feature_dim, hidden_dim, critic_target_tau,
                 num_expl_steps, update_every_steps, stddev_schedule, stddev_clip, use_tb):
        CONSTRUCTED.append(dict(obs_shape=obs_shape, action_shape=action_shape, device=device, lr=lr,
                                feature_dim=feature_dim, hidden_dim=hidden_dim, critic_target_tau=critic_target_tau,
                                num_expl_steps=num_expl_steps, update_every_steps=update_every_steps,
                                stddev_schedule=stddev_schedule, stddev_clip=stddev_clip, use_tb=use_tb))
        self.device, self.update_every_steps = device, update_every_steps

    def update(self, replay_iter, step):
        if step % self.update_every_steps != 0:
            return dict()
        batch = utils.to_torch(next(replay_iter), self.device)
        CONSUMED.append((step, [(tuple(t.shape), t.dtype, t.device.type) for t in batch]))
        return dict()
'''

STAND_IN_UTILS = '''
import torch
from omegaconf import OmegaConf


def to_torch(xs, device):
    return tuple(torch.as_tensor(x, device=device) for x in xs)
'''


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import drqv2_checkout
    import learner_speed
    return learner_speed, drqv2_checkout


def stand_in_checkout(root: Path, drqv2: str = STAND_IN_DRQV2) -> Path:
    root.mkdir(exist_ok=True)
    (root / "drqv2.py").write_text(textwrap.dedent(drqv2))
    (root / "utils.py").write_text(textwrap.dedent(STAND_IN_UTILS))
    return root


def sampled_arrays(batch: int) -> dict:
    """Our replay's Batch.arrays() layout for one camera."""
    rng = np.random.default_rng(0)
    frames = lambda: rng.integers(0, 256, (batch, 9, 84, 84), np.uint8)  # noqa: E731
    proprio = np.zeros((batch, 8), np.float32)
    return {"obs/shoulder": frames(), "next_obs/shoulder": frames(), "proprio": proprio, "next_proprio": proprio,
            "action": rng.uniform(-1, 1, (batch, 7)).astype(np.float32), "reward": np.ones((batch, 1), np.float32),
            "discount": np.full((batch, 1), 0.99, np.float32)}


def test_official_variants_build_the_medium_agent_time_it_and_feed_it_official_batches(bench, tmp_path, monkeypatch):
    learner_speed, drqv2_checkout = bench
    sentinel = object()
    monkeypatch.setitem(sys.modules, "utils", sentinel)   # someone else's top-level 'utils' stays theirs
    checkout = drqv2_checkout.load_checkout(stand_in_checkout(tmp_path / "drqv2"))
    assert sys.modules["utils"] is sentinel and "drqv2" not in sys.modules

    cpu = torch.device("cpu")
    host = drqv2_checkout.official_batch(sampled_arrays(4), "shoulder", cpu)
    runners, _ = drqv2_checkout.official_runners(checkout, host, cpu)
    samples = learner_speed.time_variants(runners, cpu, rounds=1, warmup=1, seconds=0.2, min_updates=3)

    assert set(samples) == {"official", "official_on_dev"}
    assert all(rate > 0 for rates in samples.values() for rate in rates)
    constructed = checkout.drqv2.CONSTRUCTED
    assert len(constructed) == 2
    assert constructed[0] == dict(obs_shape=(9, 84, 84), action_shape=(7,), device="cpu", **drqv2_checkout.MEDIUM)
    consumed = checkout.drqv2.CONSUMED
    assert len(consumed) >= 2 * (1 + 3)                    # warmup + min_updates per variant, each one batch
    assert all(step % 2 == 0 for step, _ in consumed)      # update_every_steps=2: no skipped update is counted
    assert consumed[0][1] == [((4, 9, 84, 84), torch.uint8, "cpu"), ((4, 7), torch.float32, "cpu"),
                              ((4, 1), torch.float32, "cpu"), ((4, 1), torch.float32, "cpu"),
                              ((4, 9, 84, 84), torch.uint8, "cpu")]


def test_main_prints_the_official_agent_beside_ours_and_their_ratio(bench, tmp_path, capsys):
    learner_speed, _ = bench
    peer = stand_in_checkout(tmp_path / "drqv2")
    learner_speed.main(["--peer", str(peer), "--cameras", "1", "--batch", "4", "--episodes", "1", "--seconds", "0.05",
                        "--warmup", "0", "--rounds", "1", "--min-updates", "1",
                        "--variants", "ours,official,official_on_dev"])
    out = capsys.readouterr().out
    for line in ("  official ", "  official_on_dev ", "ours / official = "):
        assert line in out
    assert "not like-for-like" not in out


def test_two_cameras_are_reported_as_not_like_for_like(bench, capsys):
    learner_speed, _ = bench
    learner_speed.print_ratios({"ours": 8.0, "official": 2.0}, cameras=2)
    out = capsys.readouterr().out
    assert "ours / official = 4.00x" in out and "not like-for-like" in out and "--cameras 1" in out


def test_a_path_without_drqv2_py_exits_with_a_clear_error(bench, tmp_path):
    _, drqv2_checkout = bench
    with pytest.raises(SystemExit, match=r"no drqv2\.py .*facebookresearch/drqv2"):
        drqv2_checkout.load_checkout(tmp_path)


def test_official_variants_without_peer_say_what_is_missing(bench):
    learner_speed, _ = bench
    with pytest.raises(SystemExit, match="need --peer PATH"):
        learner_speed.main(["--variants", "official", "--episodes", "1", "--batch", "4"])


def test_a_checkout_whose_import_fails_names_the_package_to_install(bench, tmp_path):
    _, drqv2_checkout = bench
    peer = stand_in_checkout(tmp_path / "drqv2", "import dm_control_not_installed_here\n" + STAND_IN_DRQV2)
    before = sys.modules.get("utils")
    with pytest.raises(SystemExit, match="importing drqv2.py failed.*pip install dm_control_not_installed_here"):
        drqv2_checkout.load_checkout(peer)
    assert "drqv2" not in sys.modules and sys.modules.get("utils") is before
