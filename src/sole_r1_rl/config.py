"""`AgentConfig`: every learner hyperparameter in one typed, validated dataclass, with the published presets.

Presets (`AgentConfig.preset("drqv2" | "serl", **overrides)`) copy the published defaults; each value's comment names
its source file and line in the anchor repositories (read at facebookresearch/drqv2@c0c650b and
rail-berkeley/serl@cd5f7e7). Where SERL has no equivalent (it trains a SAC actor with a learned temperature, we keep
DrQ-v2's scheduled-noise actor) the comment says which DrQ-v2 value stands in.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

import yaml

from sole_r1_config import from_mapping
from sole_r1_rl.schedule import parse_schedule

CAMERAS = ("shoulder", "wrist")


@dataclasses.dataclass
class AgentConfig:
    """DrQ-v2 agent, replay and update-rate settings (see module docstring for the presets' sources)."""

    preset: str = "drqv2"                 # name of the preset these values started from (informational)
    # -- observations and actions
    cameras: tuple = CAMERAS              # one conv encoder per camera, in this order
    image_size: int = 84                  # square H = W of every camera image fed to the encoders
    frame_stack: int = 3                  # frames per camera stacked on channels (built at sample time, stored once)
    proprio_dim: int = 8                  # Proprio.as_vector(): EE position (3), quaternion (4), gripper opening (1)
    proprio_latent_dim: int = 64          # proprio -> Linear+LayerNorm+tanh of this size; 0 = ignore proprio
    action_dim: int = 7
    # -- networks
    feature_dim: int = 50                 # trunk output (Linear+LayerNorm+tanh of the concatenated conv features)
    hidden_dim: int = 1024                # width of the actor / critic MLPs
    hidden_depth: int = 2                 # hidden layers in the actor / critic MLPs
    mlp_activation: str = "relu"          # "relu" | "tanh"
    mlp_layer_norm: bool = False          # LayerNorm after each hidden Linear
    num_critics: int = 2                  # critic ensemble size (2 = DrQ-v2 twin Q)
    critic_subsample: Optional[int] = None  # REDQ: target = min over a random subset of this size; None = all
    actor_q: str = "min"                  # how the actor reduces the ensemble: "min" (DrQ-v2) | "mean" (SAC/REDQ)
    # -- optimisation
    lr: float = 1e-4
    critic_target_tau: float = 0.01
    discount: float = 0.99
    nstep: int = 3
    batch_size: int = 256
    stddev_schedule: str = "linear(1.0,0.1,500000)"
    stddev_clip: float = 0.3
    critic_actor_ratio: int = 1           # critic updates per actor update
    aug_pad: int = 4                      # random shift augmentation padding (pixels)
    # -- data collection and update rate (in env steps = control steps)
    update_every_steps: int = 2           # run `updates_per_trigger` updates every this many env steps
    updates_per_trigger: int = 1
    num_expl_steps: int = 2000            # uniform random actions before this step
    num_seed_steps: int = 2000            # no updates before this step
    replay_capacity: int = 1_000_000      # transitions (frames) kept in memory
    policy_warmup_updates: int = 0        # after loading a policy: updates that fit only the critic head (encoder
                                          # and actor frozen), so a new critic cannot unlearn the policy first
    # -- compute
    device: str = "cpu"
    fused_optimizer: bool = True          # fused Adam kernels on CUDA (ignored on CPU)
    tf32: bool = True                     # TF32 matmuls/convs on Ampere+ GPUs
    channels_last: bool = False           # NHWC conv layout (often faster on GPUs with cuDNN)
    amp: str = "none"                     # "bf16": autocast the update's forward passes to bfloat16 (CUDA only)
    compile: bool = False                 # torch.compile the loss computations (then no CUDA graph)
    cuda_graph: bool = True               # replay the whole update as a CUDA graph (CUDA only)

    def __post_init__(self) -> None:
        self.cameras = tuple(self.cameras)
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"cameras must be a non-empty list of distinct names, got {self.cameras}")
        _require(self.image_size >= 16, "image_size must be >= 16 (the conv stack shrinks it by 9 pixels)")
        for name in ("frame_stack", "action_dim", "feature_dim", "hidden_dim", "hidden_depth", "num_critics",
                     "nstep", "batch_size", "critic_actor_ratio", "update_every_steps", "updates_per_trigger",
                     "replay_capacity"):
            _require(isinstance(getattr(self, name), int) and getattr(self, name) >= 1, f"{name} must be an int >= 1")
        for name in ("proprio_dim", "proprio_latent_dim", "aug_pad", "num_expl_steps", "num_seed_steps",
                     "policy_warmup_updates"):
            _require(isinstance(getattr(self, name), int) and getattr(self, name) >= 0, f"{name} must be an int >= 0")
        _require(self.mlp_activation in ("relu", "tanh"), "mlp_activation must be 'relu' or 'tanh'")
        _require(self.actor_q in ("min", "mean"), "actor_q must be 'min' or 'mean'")
        if self.critic_subsample is not None:
            _require(1 <= self.critic_subsample <= self.num_critics,
                     f"critic_subsample must be in [1, num_critics={self.num_critics}] or null")
        _require(0.0 < self.lr < 1.0, "lr must be in (0, 1)")
        _require(0.0 < self.critic_target_tau <= 1.0, "critic_target_tau must be in (0, 1]")
        _require(0.0 <= self.discount <= 1.0, "discount must be in [0, 1]")
        _require(self.stddev_clip > 0.0, "stddev_clip must be > 0")
        parse_schedule(self.stddev_schedule)  # raises with the accepted forms
        _require(self.device == "cpu" or self.device.startswith("cuda"), "device must be 'cpu', 'cuda' or 'cuda:N'")
        _require(self.amp in ("none", "bf16"), "amp must be 'none' or 'bf16'")

    # -- presets and files
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "AgentConfig":
        """The named published preset ('drqv2' or 'serl'), with `overrides` applied."""
        if name not in PRESETS:
            raise ValueError(f"unknown agent preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls.from_dict({**PRESETS[name], **overrides, "preset": name})

    @classmethod
    def from_dict(cls, data: dict) -> "AgentConfig":
        """Build from a dict; an unknown key is an error naming the key and listing the valid ones."""
        return from_mapping(cls, data, "agent config")

    @classmethod
    def from_yaml(cls, path: str) -> "AgentConfig":
        """Load a YAML file: optional `preset: <name>` plus any overrides (a top-level `agent:` section is accepted)."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"agent config {path!r} not found")
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of agent settings, got {type(data).__name__}")
        data = data.get("agent", data)
        name = data.pop("preset", None)
        return cls.preset(name, **data) if name else cls.from_dict(data)

    def to_dict(self) -> dict:
        """Plain dict (lists for tuples) suitable for YAML."""
        data = dataclasses.asdict(self)
        data["cameras"] = list(self.cameras)
        return data

    def to_yaml(self, path: str) -> None:
        """Write every setting to `path` (loadable with `from_yaml`)."""
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(self.to_dict(), handle, sort_keys=False)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"AgentConfig: {message}")


# Published defaults. "drqv2@..." lines refer to facebookresearch/drqv2 (commit c0c650b), "serl@..." to
# rail-berkeley/serl (commit cd5f7e7); paths relative to each repository.
PRESETS: dict[str, dict] = {
    "drqv2": dict(
        image_size=84,              # drqv2@dmc.py:206 render_kwargs height=84, width=84
        frame_stack=3,              # drqv2@cfgs/config.yaml:7 frame_stack: 3
        feature_dim=50,             # drqv2@cfgs/config.yaml:32 feature_dim: 50
        hidden_dim=1024,            # drqv2@cfgs/config.yaml:44 hidden_dim: 1024
        hidden_depth=2,             # drqv2@drqv2.py:77-81 / 103-106 two hidden Linear layers
        mlp_activation="relu",      # drqv2@drqv2.py:78 nn.ReLU
        mlp_layer_norm=False,       # drqv2@drqv2.py:77-81 no LayerNorm inside the MLPs
        num_critics=2,              # drqv2@drqv2.py:103-111 Q1, Q2
        critic_subsample=None,      # drqv2@drqv2.py:185 target_V = min(target_Q1, target_Q2)
        actor_q="min",              # drqv2@drqv2.py:214 Q = min(Q1, Q2)
        lr=1e-4,                    # drqv2@cfgs/config.yaml:31 lr: 1e-4
        critic_target_tau=0.01,     # drqv2@cfgs/config.yaml:40 critic_target_tau: 0.01
        discount=0.99,              # drqv2@cfgs/config.yaml:9 discount: 0.99
        nstep=3,                    # drqv2@cfgs/config.yaml:20 nstep: 3
        batch_size=256,             # drqv2@cfgs/config.yaml:21 batch_size: 256
        stddev_schedule="linear(1.0,0.1,500000)",  # drqv2@cfgs/task/medium.yaml:2 (the PERFORMANCE.md baseline)
        stddev_clip=0.3,            # drqv2@cfgs/config.yaml:47 stddev_clip: 0.3
        critic_actor_ratio=1,       # drqv2@drqv2.py:251-256 one critic and one actor step per update
        aug_pad=4,                  # drqv2@drqv2.py:153 RandomShiftsAug(pad=4)
        update_every_steps=2,       # drqv2@cfgs/config.yaml:41 update_every_steps: 2
        updates_per_trigger=1,      # drqv2@drqv2.py:230-236 one batch per update call
        num_expl_steps=2000,        # drqv2@cfgs/config.yaml:43 num_expl_steps: 2000 (agent steps)
        num_seed_steps=2000,        # drqv2@cfgs/config.yaml:11 num_seed_frames 4000 / action_repeat 2 (:8)
        replay_capacity=1_000_000,  # drqv2@cfgs/config.yaml:18 replay_buffer_size: 1000000
        proprio_latent_dim=64,      # not in DrQ-v2 (pixels only); SERL's proprio embedding, serl@encoding.py:22
    ),
    "serl": dict(
        image_size=128,             # serl@serl_robot_infra/franka_env/envs/franka_env.py:146 shape=(128, 128, 3)
        frame_stack=1,              # serl@examples/async_drq_sim/async_drq_sim.py:332 ChunkingWrapper(obs_horizon=1)
        feature_dim=256,            # serl@serl_launcher/serl_launcher/agents/continuous/drq.py:147 bottleneck_dim=256
        hidden_dim=256,             # serl@serl_launcher/serl_launcher/utils/launcher.py:103,108 hidden_dims [256, 256]
        hidden_depth=2,             # serl@.../utils/launcher.py:103,108 two hidden layers
        mlp_activation="tanh",      # serl@.../utils/launcher.py:101,106 activations=nn.tanh
        mlp_layer_norm=True,        # serl@.../utils/launcher.py:102,107 use_layer_norm=True
        num_critics=10,             # serl@.../utils/launcher.py:113 critic_ensemble_size=10 (REDQ)
        critic_subsample=2,         # serl@.../utils/launcher.py:114 critic_subsample_size=2
        actor_q="mean",             # serl@.../agents/continuous/sac.py:208 predicted_qs.mean(axis=0)
        lr=3e-4,                    # serl@.../agents/continuous/drq.py:35-43 learning_rate 3e-4
        critic_target_tau=0.005,    # serl@.../agents/continuous/drq.py:46 soft_target_update_rate 0.005
        discount=0.96,              # serl@.../utils/launcher.py:85 make_drq_agent(discount=0.96)
        nstep=1,                    # serl: one-step targets, serl@.../agents/continuous/sac.py:164-167
        batch_size=256,             # serl@examples/async_drq_sim/async_drq_sim.py:47 batch_size 256
        stddev_schedule="linear(1.0,0.1,100000)",  # not in SERL (SAC temperature): drqv2@cfgs/task/easy.yaml:2
        stddev_clip=0.3,            # not in SERL: drqv2@cfgs/config.yaml:47
        critic_actor_ratio=4,       # serl@examples/async_drq_sim/async_drq_sim.py:48 critic_actor_ratio 4
        aug_pad=4,                  # serl@.../agents/continuous/drq.py:249 batched_random_crop(padding=4)
        update_every_steps=1,       # SERL's learner is asynchronous; one update per 10 Hz control step here
        updates_per_trigger=1,
        num_expl_steps=300,         # serl@examples/async_drq_sim/async_drq_sim.py:53 random_steps 300
        num_seed_steps=300,         # serl@examples/async_drq_sim/async_drq_sim.py:54 training_starts 300
        replay_capacity=200_000,    # serl@examples/async_drq_sim/async_drq_sim.py:51 replay_buffer_capacity 200000
        proprio_latent_dim=64,      # serl@serl_launcher/serl_launcher/common/encoding.py:22 proprio_latent_dim 64
    ),
}
