"""In-process trainer speed with 1 vs N envs (`--num-envs`), measured in one run.

Each configuration runs `python -m sole_r1_rl.trainer`'s Trainer on Meta-World reach-v3 with the oracle rewarder for
the same number of episodes per env, the policy acting (no random-action phase, so the batched actor forward is
timed) and, by default, no updates -- the env side of the loop alone. `--update-every K` adds one update every K
env steps (all envs counted), as a learning run does. Env steps/s are counted from the moment every env is up (the
workers' start-up is printed separately). A second table times one env step in the learner's process against the
same step through a worker pipe (the cost of moving the frames between processes).

    .venv/bin/python benchmarks/trainer_envs.py --num-envs 1 2                         # CPU
    .venv/bin/python benchmarks/trainer_envs.py --num-envs 1 4 8 15 --device cuda --update-every 1   # GPU box
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def run_trainer(num_envs: int, args) -> dict:
    """One trainer run with `num_envs` envs; returns env steps/s, start-up seconds, updates per env step."""
    from sole_r1_rl.config import AgentConfig
    from sole_r1_rl.run_config import TrainerConfig
    from sole_r1_rl.trainer import Trainer

    steps = num_envs * args.episodes * args.episode_steps
    learn = args.update_every > 0
    agent = AgentConfig.preset(args.preset, image_size=args.image_size, device=args.device, num_expl_steps=0,
                               batch_size=args.batch_size, num_seed_steps=args.seed_steps if learn else steps + 1,
                               update_every_steps=max(args.update_every, 1))
    with tempfile.TemporaryDirectory() as out:
        config = TrainerConfig(suite="metaworld", task=args.task, rewarder="oracle", steps=steps, out=out,
                               max_episode_steps=args.episode_steps, render_size=args.render_size,
                               progress_bar=False, num_envs=num_envs, checkpoint_every=10 ** 9)
        created = time.perf_counter()
        trainer = Trainer(config, agent)
        try:
            counters = trainer.run()
        finally:
            trainer.close()
        total = time.perf_counter() - created
        rate = trainer.env_steps_per_s
    stepping = counters.env_steps / rate
    return {"env_steps": counters.env_steps, "steps_per_s": rate, "startup_s": total - stepping,
            "updates_per_step": counters.updates / counters.env_steps}


def pipe_overhead(args, steps: int = 100, rounds: int = 3) -> tuple[float, float]:
    """Median ms per env step (in this process, through a worker's pipe) over `rounds` interleaved blocks."""
    from sole_r1_rl.env_workers import EnvWorkers, SuiteEnvFactory

    factory = SuiteEnvFactory("metaworld", args.task, args.render_size or args.image_size, 0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 7)).astype(np.float32)
    env, workers = factory(0), EnvWorkers(factory, 1, privileged=True)
    local, piped = [], []
    try:
        env.reset(seed=0)
        workers.send_reset(0, 0)
        workers.receive(0)
        for _ in range(rounds):
            start = time.perf_counter()
            for action in actions:
                env.step(action)
            local.append((time.perf_counter() - start) / steps)
            start = time.perf_counter()
            for action in actions:
                workers.send_step(0, action, query=False, last=False)
                workers.receive(0)
            piped.append((time.perf_counter() - start) / steps)
    finally:
        env.close()
        workers.close()
    return 1000 * float(np.median(local)), 1000 * float(np.median(piped))


def main(argv=None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 2], help="env counts to compare")
    parser.add_argument("--task", default="reach-v3")
    parser.add_argument("--episodes", type=int, default=2, help="episodes per env in each configuration")
    parser.add_argument("--episode-steps", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--render-size", type=int, default=None)
    parser.add_argument("--preset", default="serl")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--update-every", type=int, default=0, help="one update every K env steps (0: none)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed-steps", type=int, default=100, help="no updates before this env step")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of the learner")
    parser.add_argument("--no-pipe", action="store_true", help="skip the pipe overhead table")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"# trainer_envs: metaworld {args.task}, oracle, {args.preset} preset, {args.image_size} px, "
          f"{args.episodes} x {args.episode_steps}-step episodes per env, "
          f"{'updates every %d env steps' % args.update_every if args.update_every else 'no updates'}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, learner on {device}, "
          f"torch threads {args.threads}, MUJOCO_GL={os.environ['MUJOCO_GL']}")
    print("| envs | env steps | env steps/s | x 1 env | start-up s | updates/env step |")
    print("|---|---|---|---|---|---|")
    base = None
    for num_envs in args.num_envs:
        result = run_trainer(num_envs, args)
        base = base or (result["steps_per_s"] if num_envs == 1 else None)
        ratio = f"{result['steps_per_s'] / base:.2f}x" if base else "-"
        print(f"| {num_envs} | {result['env_steps']} | {result['steps_per_s']:.1f} | {ratio} | "
              f"{result['startup_s']:.1f} | {result['updates_per_step']:.2f} |", flush=True)
    if not args.no_pipe:
        local, piped = pipe_overhead(args)
        print(f"\none env step (median of 3 interleaved rounds of 100): {local:.2f} ms in process, {piped:.2f} ms "
              f"through a worker pipe ({piped - local:+.2f} ms for moving the frames and the round trip)")


if __name__ == "__main__":
    main()
