"""Command line of the in-process trainer: TrainerConfig's fields as flags, plus the agent's preset/overrides."""
from __future__ import annotations

import argparse
from typing import Optional

from sole_r1_config import ConfigError, add_arguments, from_arguments, parse_key_values
from sole_r1_rl.config import PRESETS, AgentConfig
from sole_r1_rl.run_config import TrainerConfig


def build_parser() -> argparse.ArgumentParser:
    """Flags derived from TrainerConfig (nested reward settings as --reward.*) and the agent's preset/overrides."""
    parser = argparse.ArgumentParser(
        prog="python -m sole_r1_rl.trainer",
        description="Train a DrQ-v2 agent in-process (no ROS) with a progress rewarder as the only reward.")
    add_arguments(parser, TrainerConfig)
    agent = parser.add_argument_group("agent (AgentConfig)")
    agent.add_argument("--preset", default="drqv2", choices=sorted(PRESETS), help="agent hyperparameter preset")
    agent.add_argument("--agent-config", default=None, help="agent YAML (optional `preset:` + overrides)")
    agent.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one AgentConfig field, e.g. --set batch_size=64 (repeatable)")
    agent.add_argument("--image-size", type=int, default=None, help="shorthand for --set image_size=N")
    agent.add_argument("--device", default=None, help="shorthand for --set device=D (cpu | cuda | cuda:N)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return parser


def parse_args(argv: Optional[list] = None) -> tuple[TrainerConfig, AgentConfig, Optional[int]]:
    """Parse flags into (TrainerConfig, AgentConfig, threads)."""
    args = build_parser().parse_args(argv)
    try:
        overrides = parse_key_values(args.set, "--set")
        if args.image_size is not None:
            overrides["image_size"] = args.image_size
        if args.device is not None:
            overrides["device"] = args.device
        trainer = from_arguments(TrainerConfig, args)
        if trainer.init_policy:   # the policy fixes the network shapes; everything else as given
            from sole_r1_rl.policy import architecture_overrides
            overrides = {**architecture_overrides(trainer.init_policy), **overrides}
        if args.agent_config:
            base = AgentConfig.from_yaml(args.agent_config).to_dict()
            agent = AgentConfig.from_dict({**base, **overrides})
        else:
            agent = AgentConfig.preset(args.preset, **overrides)
    except (ConfigError, ValueError) as error:
        raise SystemExit(f"invalid configuration: {error}") from error
    return trainer, agent, args.threads
