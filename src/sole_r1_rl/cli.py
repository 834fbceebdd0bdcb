"""Command line of the in-process trainer: flags -> (TrainerConfig, AgentConfig)."""
from __future__ import annotations

import argparse
from typing import Optional

import yaml

from sole_r1_rl.config import PRESETS, AgentConfig
from sole_r1_rl.reward import RewardConfig


def build_parser() -> argparse.ArgumentParser:
    """All trainer flags; agent hyperparameters beyond the common ones go through --set key=value."""
    parser = argparse.ArgumentParser(
        prog="python -m sole_r1_rl.trainer",
        description="Train a DrQ-v2 agent in-process (no ROS) with a progress rewarder as the only reward.")
    parser.add_argument("--suite", default="metaworld", help="simulation suite (metaworld, robosuite, ...)")
    parser.add_argument("--task", default="reach-v3", help="task name within the suite")
    parser.add_argument("--rewarder", default="oracle", help="rewarder backend name or YAML (oracle is privileged)")
    parser.add_argument("--steps", type=int, default=10_000, help="total env steps (a resumed run continues)")
    parser.add_argument("--out", default="runs/latest", help="run directory: replay/, checkpoint, CSV, PNG")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: the agent config's)")
    parser.add_argument("--preset", default="drqv2", choices=sorted(PRESETS), help="agent hyperparameter preset")
    parser.add_argument("--agent-config", default=None, help="agent YAML (optional `preset:` + overrides)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one AgentConfig field, e.g. --set batch_size=64 (repeatable)")
    parser.add_argument("--image-size", type=int, default=None, help="agent image size (sets AgentConfig.image_size)")
    parser.add_argument("--render-size", type=int, default=None, help="env render size (default: image size)")
    parser.add_argument("--query-every", type=int, default=10, help="env steps between reward queries")
    parser.add_argument("--reward-mode", default="interpolate", choices=("interpolate", "hold_last"))
    parser.add_argument("--reward-type", default="progress", choices=("progress", "delta"))
    parser.add_argument("--max-episode-steps", type=int, default=None, help="time limit below the env's own")
    parser.add_argument("--checkpoint-every", type=int, default=5_000, help="env steps between checkpoints")
    parser.add_argument("--log-every", type=int, default=100, help="updates between metric log lines")
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in --out")
    parser.add_argument("--compress-replay", action="store_true", help="np.savez_compressed episode files")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def parse_args(argv: Optional[list] = None):
    """Parse flags into (TrainerConfig, AgentConfig, threads)."""
    from sole_r1_rl.trainer import TrainerConfig

    args = build_parser().parse_args(argv)
    overrides = {}
    for item in args.set:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = yaml.safe_load(value)
    if args.image_size is not None:
        overrides["image_size"] = args.image_size
    if args.device is not None:
        overrides["device"] = args.device
    try:
        if args.agent_config:
            base = AgentConfig.from_yaml(args.agent_config).to_dict()
            agent = AgentConfig.from_dict({**base, **overrides})
        else:
            agent = AgentConfig.preset(args.preset, **overrides)
        trainer = TrainerConfig(
            suite=args.suite, task=args.task, rewarder=args.rewarder, steps=args.steps, out=args.out,
            seed=args.seed, query_every=args.query_every, max_episode_steps=args.max_episode_steps,
            render_size=args.render_size, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
            resume=not args.no_resume, compress_replay=args.compress_replay, progress_bar=not args.no_progress,
            reward=RewardConfig(mode=args.reward_mode, reward=args.reward_type))
    except ValueError as error:
        raise SystemExit(f"invalid configuration: {error}") from error
    return trainer, agent, args.threads
