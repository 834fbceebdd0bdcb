"""Learner update speed: our DrQ-v2 agent fed from the replay vs a bare update loop of the same networks.

    python benchmarks/learner_speed.py                  # CPU, PERFORMANCE.md's baseline config
    python benchmarks/learner_speed.py --device cuda    # GPU fast path (pinned prefetch, fused Adam, TF32)
    python benchmarks/learner_speed.py --device cuda --compile --channels-last
    python benchmarks/learner_speed.py --device cuda --cameras 1 --peer ~/drqv2   # + the official agent, same run

Config = PERFORMANCE.md's baseline (official DrQ-v2 `medium`: lr 1e-4, feature_dim 50, hidden_dim 1024, tau 0.01,
stddev 'linear(1.0,0.1,500000)', clip 0.3, batch 256). Observation mapping: the official agent sees one 9x84x84
tensor (3 stacked RGB frames of one camera). We see two cameras, each with 3 stacked 84x84 RGB frames, so each
camera's encoder input is exactly the official 9x84x84 and `--cameras 2` (default) does twice the official conv
work; `--cameras 1` is the official observation shape exactly: the like-for-like comparison with the official agent.
Plus an 8-D proprio vector and 7-D actions (the official baseline used action_shape=(7,)).

Variants (each timed for >= --seconds after --warmup updates):
  bare         hand-written update of the same networks on one fixed host batch copied to the device every
               update (as the official loop is fed), no replay, no metrics: the reference.
  ours         the full learner path: ReplayBuffer sampling (n-step, frame stacks, episode bounds) ->
               BatchLoader -> DrQV2Agent.update. On CUDA the replay's frames are mirrored on the GPU and only
               indices/targets travel per batch. Target: >= 0.8 x bare.
  ours_host    CUDA only: the same with frames gathered on the host into pinned memory by a prefetch thread.
  ours_on_dev  DrQV2Agent.update on a batch already on the device (no sampling, no copy).
With --peer PATH (a checkout of facebookresearch/drqv2, see drqv2_checkout.py), the official agent in its medium
config on one 9x84x84 camera of the same sampled batch:
  official         its DrQV2Agent.update(replay_iter, step) fed host batches as its replay DataLoader yields them.
  official_on_dev  the same fed batches already on the device.
On CUDA our agent replays each update as a CUDA graph (`--no-cuda-graph` to compare with eager updates); the bare
loop is always eager, like the official one.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import drqv2_checkout  # noqa: E402

from sole_r1_rl.agent import DrQV2Agent  # noqa: E402
from sole_r1_rl.augment import RandomShiftsAug  # noqa: E402
from sole_r1_rl.config import AgentConfig  # noqa: E402
from sole_r1_rl.loader import BatchLoader  # noqa: E402
from sole_r1_rl.networks import Actor, CriticEnsemble, MultiCameraEncoder  # noqa: E402
from sole_r1_rl.replay import ReplayBuffer  # noqa: E402
from sole_r1_rl.schedule import parse_schedule  # noqa: E402


def build_config(args) -> AgentConfig:
    """PERFORMANCE.md's baseline settings on our observation layout."""
    cameras = ("shoulder", "wrist")[:args.cameras]
    return AgentConfig.preset("drqv2", cameras=cameras, image_size=84, frame_stack=3, batch_size=args.batch,
                              device=args.device, compile=args.compile, channels_last=args.channels_last, amp=args.amp,
                              cuda_graph=not args.no_cuda_graph,
                              replay_capacity=args.episodes * 101 + 1)


def fill_replay(config: AgentConfig, episodes: int, seed: int = 0) -> ReplayBuffer:
    """Random uint8 episodes of 100 steps (content does not matter for speed, layout does)."""
    rng = np.random.default_rng(seed)
    replay = ReplayBuffer(config, seed=seed)
    size = config.image_size
    for episode in range(episodes):
        frame = lambda t: {**{n: rng.integers(0, 256, (3, size, size), np.uint8) for n in config.cameras},  # noqa
                           "proprio": np.array([episode, t, 0, 0, 0, 0, 1, 1], np.float32)}
        previous = frame(0)
        for t in range(100):
            current = frame(t + 1)
            replay.add(previous, rng.uniform(-1, 1, 7), float(rng.random()), current, truncated=t == 99)
            previous = current
    return replay


class BareLoop:
    """The official update's structure (drqv2.py:230-262) over our networks, with nothing else around it."""

    def __init__(self, config: AgentConfig, host_batch: dict) -> None:
        self.config, self.device = config, torch.device(config.device)
        self.encoder = MultiCameraEncoder(config).to(self.device)
        self.actor = Actor(self.encoder.repr_dim, config).to(self.device)
        self.critic = CriticEnsemble(self.encoder.repr_dim, config).to(self.device)
        self.target = CriticEnsemble(self.encoder.repr_dim, config).to(self.device)
        self.target.load_state_dict(self.critic.state_dict())
        fused = {"fused": True} if self.device.type == "cuda" and config.fused_optimizer else {}
        self.opts = [torch.optim.Adam(m.parameters(), lr=config.lr, **fused)
                     for m in (self.encoder, self.actor, self.critic)]
        self.aug = RandomShiftsAug(config.aug_pad)
        self.schedule = parse_schedule(config.stddev_schedule)
        self.host = host_batch

    def update(self, step: int) -> None:
        """One critic + actor update on the fixed host batch (copied to the device like the official loop)."""
        b = {k: v.to(self.device) for k, v in self.host.items()}
        cams, n, std, clip = self.config.cameras, b["reward"].shape[0], self.schedule(step), self.config.stddev_clip
        obs = self.encoder({c: self.aug(b[f"obs/{c}"]) for c in cams})
        with torch.no_grad():
            nxt = self.encoder({c: self.aug(b[f"next_obs/{c}"]) for c in cams})
            action = self.actor(nxt, b["next_proprio"], std).sample(clip=clip)
            target = b["reward"][:, 0] + b["discount"][:, 0] * self.target(nxt, b["next_proprio"], action).min(0).values
        q = self.critic(obs, b["proprio"], b["action"])
        critic_loss = F.mse_loss(q, target.expand_as(q), reduction="none").mean(1).sum()
        for opt in self.opts:
            opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.opts[0].step()
        self.opts[2].step()
        obs = obs.detach()
        actor_loss = -self.critic(obs, b["proprio"], self.actor(obs, b["proprio"], std).sample(clip=clip)).min(0).values.mean()
        self.opts[1].zero_grad(set_to_none=True)
        actor_loss.backward()
        self.opts[1].step()
        with torch.no_grad():
            torch._foreach_lerp_(list(self.target.parameters()), list(self.critic.parameters()),
                                 self.config.critic_target_tau)


def measure(update, device: torch.device, warmup: int, seconds: float, min_updates: int) -> float:
    """Updates per second after `warmup` updates, timed for at least `seconds` and `min_updates`."""
    for step in range(warmup):
        update(step)
    _sync(device)
    start, count = time.perf_counter(), 0
    while count < min_updates or time.perf_counter() - start < seconds:
        update(warmup + count)
        count += 1
        if count % 8 == 0 or device.type == "cpu":
            _sync(device)
    _sync(device)
    return count / (time.perf_counter() - start)


def our_runners(variants, config: AgentConfig, replay: ReplayBuffer, host: dict, batch_size: int) -> tuple:
    """variant -> update(step) for the bare loop and our variants, and the loaders to close afterwards."""
    runners, loaders = {}, []
    for variant in variants:
        torch.manual_seed(0)
        if variant == "bare":
            runners[variant] = BareLoop(config, host).update
        elif variant in ("ours", "ours_host"):
            agent = DrQV2Agent(config)
            on_device = None if variant == "ours" else False
            loader = BatchLoader(replay, batch_size, config.device, frames_on_device=on_device)
            loaders.append(loader)
            runners[variant] = lambda step, agent=agent, loader=loader: agent.update(loader.next(), step)
        elif variant == "ours_on_dev":
            agent = DrQV2Agent(config)
            batch = agent.to_device(replay.sample(batch_size))
            runners[variant] = lambda step, agent=agent, batch=batch: agent.update(batch, step)
        else:
            raise SystemExit(f"unknown variant {variant!r}")
    return runners, loaders


def time_variants(runners: dict, device: torch.device, rounds: int, warmup: int, seconds: float,
                  min_updates: int) -> dict:
    """variant -> updates/s of each round. Rounds interleave the variants, so load from other processes hits them
    alike; the official variants run under the official train.py's torch flags."""
    samples = {variant: [] for variant in runners}
    for round_ in range(rounds):
        for variant, run in runners.items():
            official = variant in drqv2_checkout.VARIANTS
            with drqv2_checkout.official_backend_flags(device) if official else contextlib.nullcontext():
                samples[variant].append(measure(run, device, warmup if round_ == 0 else 0, seconds, min_updates))
    return samples


def print_ratios(results: dict, cameras: int) -> None:
    """ours / bare, and ours / the official agent when it ran."""
    if "bare" in results and "ours" in results:
        ratio = results["ours"] / results["bare"]
        print(f"  ours / bare = {ratio:.2f} (target >= 0.8: {'OK' if ratio >= 0.8 else 'BELOW'})")
    for ours, official in (("ours", "official"), ("ours_on_dev", "official_on_dev")):
        if ours in results and official in results:
            ratio = results[ours] / results[official]
            print(f"  {ours} / {official} = {ratio:.2f}x (issue 17 goal on a GPU: ours >= 4x official)")
    if cameras != 1 and any(variant in results for variant in drqv2_checkout.VARIANTS):
        print("  note: not like-for-like: ours encodes 2 cameras, the official agent 1 (9x84x84); "
              "use --cameras 1 to compare")


def profile(config: AgentConfig, replay: ReplayBuffer, batch_size: int) -> None:
    """Top device kernels of 10 agent updates on a device-resident batch."""
    agent = DrQV2Agent(config)
    batch = agent.to_device(replay.sample(batch_size))
    for step in range(5):
        agent.update(batch, step)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.device(config.device).type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for step in range(10):
            agent.update(batch, step)
        _sync(torch.device(config.device))
    averages = prof.key_averages()
    for key in (("self_device_time_total", "self_cuda_time_total") if len(activities) == 2 else ("self_cpu_time_total",)):
        try:
            print(averages.table(sort_by=key, row_limit=25, max_name_column_width=70))
            break
        except (AttributeError, KeyError, ValueError):
            continue


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> None:
    """Run the variants and print updates/s and the ours/bare ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cameras", type=int, default=2, choices=(1, 2))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--episodes", type=int, default=20, help="replay size in 100-step episodes")
    parser.add_argument("--warmup", type=int, default=None, help="default: 1 on CPU, 20 on CUDA")
    parser.add_argument("--seconds", type=float, default=None, help="default: 20 on CPU, 10 on CUDA")
    parser.add_argument("--min-updates", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default: 3 on CPU, 1 on CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the agent's loss computations")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--no-cuda-graph", action="store_true", help="eager updates (no CUDA-graph replay)")
    parser.add_argument("--amp", default="none", choices=("none", "bf16"), help="bf16 autocast of the update")
    parser.add_argument("--profile", action="store_true", help="print the top CUDA kernels of ours_on_dev")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--variants", default=None,
                        help="default: bare,ours,ours_on_dev (+ official,official_on_dev with --peer)")
    parser.add_argument("--peer", default=None, metavar="PATH",
                        help="a checkout of facebookresearch/drqv2: time its agent in the same run")
    args = parser.parse_args(argv)
    args.variants = args.variants or "bare,ours,ours_on_dev" + (",official,official_on_dev" if args.peer else "")
    variants = args.variants.split(",")
    official = [variant for variant in variants if variant in drqv2_checkout.VARIANTS]
    if official and not args.peer:
        raise SystemExit(f"variants {official} need --peer PATH: a checkout of facebookresearch/drqv2")
    checkout = drqv2_checkout.load_checkout(args.peer) if official else None   # a wrong PATH fails before the work
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    warmup = args.warmup if args.warmup is not None else (20 if device.type == "cuda" else 1)
    seconds = args.seconds if args.seconds is not None else (10.0 if device.type == "cuda" else 20.0)
    args.rounds = args.rounds or (1 if device.type == "cuda" else 3)
    config = build_config(args)
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU x{torch.get_num_threads()} threads"
    print(f"learner_speed: {hardware}, torch {torch.__version__}, batch {args.batch}, {args.cameras} camera(s) x "
          f"9x84x84 (+8-D proprio, 7-D action), compile={args.compile}, channels_last={args.channels_last}, "
          f"amp={args.amp}, cuda_graph={not args.no_cuda_graph}")
    torch.manual_seed(0)
    replay = fill_replay(config, args.episodes)
    arrays = replay.sample(args.batch).arrays()
    host = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    runners, loaders = our_runners([v for v in variants if v not in official], config, replay, host, args.batch)
    notes = []
    if official:
        print(f"official DrQ-v2 from {checkout.path}: medium config {drqv2_checkout.MEDIUM}, obs 9x84x84 "
              f"(camera {config.cameras[0]!r})")
        batch = drqv2_checkout.official_batch(arrays, config.cameras[0], device)
        official_runs, notes = drqv2_checkout.official_runners(checkout, batch, device, official)
        runners.update(official_runs)
    samples = time_variants(runners, device, args.rounds, warmup, seconds, args.min_updates)
    for loader in loaders:
        loader.close()
    results = {variant: float(np.median(values)) for variant, values in samples.items()}
    for variant, rate in results.items():
        spread = ", ".join(f"{v:.2f}" for v in samples[variant])
        print(f"  {variant:<16} {rate:8.2f} updates/s   (rounds: {spread})", flush=True)
    if args.profile:
        profile(config, replay, args.batch)
    print_ratios(results, args.cameras)
    for note in notes:
        print(f"  note: {note}")


if __name__ == "__main__":
    main()
