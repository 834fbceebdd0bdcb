"""Settings of one in-process training run (the agent's own settings are AgentConfig's, in config.py)."""
from __future__ import annotations

import dataclasses
from typing import Optional

from sole_r1_config import param
from sole_r1_rl.reward import RewardConfig


@dataclasses.dataclass
class TrainerConfig:
    """Run settings of `python -m sole_r1_rl.trainer`; its flags are derived from these fields."""

    suite: str = param("metaworld", "simulation suite (metaworld, robosuite, maniskill, libero)")
    task: str = param("reach-v3", "task name within the suite")
    rewarder: str = param("oracle", "rewarder spec: backend name, config/rewarders name or YAML (oracle is "
                                    "privileged)")
    steps: int = param(10_000, "env steps to reach (a resumed run continues up to this)", low=1)
    out: str = param("runs/latest", "run directory: replay/, checkpoint, CSV, PNG")
    seed: int = param(0, "seed of env, agent and replay sampling")
    query_every: int = param(10, "env steps between reward queries (10 Hz control, ~1 Hz reward)", low=1)
    max_episode_steps: Optional[int] = param(None, "time limit shorter than the env's (truncation, bootstrapped)",
                                             low=1)
    render_size: Optional[int] = param(None, "env image size (default: the agent's; larger is resized for it)",
                                       low=8)
    time_limit_s: float = param(0.0, "wall-clock budget (s): each env stops at its first episode end after it, "
                                     "then checkpoint and exit (0: none); the run resumes from OUT like any other",
                                low=0.0)
    checkpoint_every: int = param(5_000, "env steps between checkpoints (taken at episode ends)", low=1)
    num_envs: int = param(1, "envs stepped in parallel worker processes feeding the one learner (1: the env runs "
                             "in the learner's process)", low=1)
    env_restarts: int = param(3, "env worker failures (exception, exit, timeout) tolerated per run: each drops "
                                 "its episode and restarts the worker; one more stops the run", low=0)
    env_timeout_s: float = param(300.0, "seconds an env worker may take to reset or step (to build its env: at "
                                        "least 180) before it counts as failed", low=0.1)
    log_every: int = param(100, "updates between metric rows", low=1)
    resume: bool = param(True, "continue from OUT/checkpoint.pt when it exists")
    init_policy: str = param("", "start a new run from a policy (folder or name under models/, e.g. "
                                 "policy-reach-v3): its encoder + actor and network shapes; ignored on resume")
    compress_replay: bool = param(False, "np.savez_compressed episode files")
    progress_bar: bool = param(True, "show a progress bar")
    reward: RewardConfig = param(RewardConfig, "how progress estimates become rewards (reward.* settings)")

    def __post_init__(self) -> None:
        for name in ("steps", "query_every", "checkpoint_every", "log_every", "num_envs"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainerConfig.{name} must be >= 1")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError("TrainerConfig.max_episode_steps must be >= 1 or None")
        if self.env_restarts < 0 or not self.env_timeout_s > 0:
            raise ValueError("TrainerConfig.env_restarts must be >= 0 and env_timeout_s > 0")
