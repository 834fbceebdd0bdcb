"""`DrQV2Agent`: DrQ-v2's actor-critic update (facebookresearch/drqv2 drqv2.py) over several cameras + proprio,
with a critic ensemble (twin-Q min, or REDQ random-subset min as SERL) and SERL's critic/actor update ratio.

One `update(batch, step)` = one critic step (+ target soft update) and, every `critic_actor_ratio`-th update, one
actor step -- SERL's learner loop (async_drq_sim.py:266-292) in the smallest unit. Metrics come back as detached
0-d tensors: converting them (`float(v)`) is the only device sync, so do it only when logging.

GPU fast path: uint8 batches (frames mirrored on the GPU or pinned + non_blocking, see loader.py), augmentation on
the device before the float conversion, fused Adam, TF32, no host syncs (metrics stay tensors, the noise schedule
is an in-place device scalar), one `torch._foreach_lerp_` for the target update, and optional channels_last,
bf16 autocast and torch.compile of the loss computations. On CUDA the whole update is replayed as a CUDA graph
(cuda_graph.py): the update is dispatch-bound otherwise.
"""
from __future__ import annotations

import copy
import logging

import numpy as np
import torch
import torch.nn.functional as F

from sole_r1_rl.augment import RandomShiftsAug
from sole_r1_rl.config import AgentConfig
from sole_r1_rl.cuda_graph import GraphedUpdate
from sole_r1_rl.networks import Actor, CriticEnsemble, MultiCameraEncoder, target_min
from sole_r1_rl.obs import PROPRIO
from sole_r1_rl.replay import Batch
from sole_r1_rl.schedule import parse_schedule

LOG = logging.getLogger(__name__)


class DrQV2Agent:
    """Encoder + actor + critic ensemble + target critic, their optimisers, and the update rule."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.device = _device(config.device)
        if self.device.type == "cuda" and config.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        self.encoder = MultiCameraEncoder(config).to(self.device)
        self.actor = Actor(self.encoder.repr_dim, config).to(self.device)
        self.critic = CriticEnsemble(self.encoder.repr_dim, config).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        cuda = self.device.type == "cuda"
        graphs = cuda and config.cuda_graph and not config.compile
        fused = {"fused": True} if cuda and config.fused_optimizer else {}
        if graphs:
            fused["capturable"] = True   # Adam's step counter on the device, as graph replay requires
        self.encoder_opt = torch.optim.Adam(self.encoder.parameters(), lr=config.lr, **fused)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.lr, **fused)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.lr, **fused)
        self.aug = RandomShiftsAug(config.aug_pad)
        self.stddev_schedule = parse_schedule(config.stddev_schedule)
        self.update_count = 0
        # the schedule value lives in a device tensor updated in place: no host sync, no recompiles
        self._std = torch.ones((), device=self.device)
        self._critic_loss = self._critic_loss_eager
        self._actor_loss = self._actor_loss_eager
        if config.compile:
            self._critic_loss = torch.compile(self._critic_loss_eager)
            self._actor_loss = torch.compile(self._actor_loss_eager)
        # bf16 autocast only on CUDA (CPU bf16 convs are slower than fp32 here)
        self._autocast = config.amp == "bf16" and self.device.type == "cuda"
        self._online_params = list(self.critic.parameters())
        self._target_params = list(self.critic_target.parameters())
        self._graphed = GraphedUpdate(self) if graphs else None
        # acting noise on CUDA comes from its own generator: while a graph is captured the default CUDA generator
        # refuses use from other threads (the learner node acts while its learner thread captures)
        self._act_generator = None
        if cuda:
            self._act_generator = torch.Generator(device=self.device)
            self._act_generator.manual_seed(int(torch.randint(0, 2 ** 62, (1,)).item()))

    # -- acting
    @torch.no_grad()
    def act(self, obs: dict, step: int, eval_mode: bool = False) -> np.ndarray:
        """Action in [-1, 1] for one stacked observation {camera: (3*S, H, W) uint8, 'proprio': (P,)}.
        Training mode: uniform random before `num_expl_steps`, then mean + scheduled noise (no clip, as DrQ-v2)."""
        batch = {key: np.asarray(value)[None] for key, value in obs.items()}
        return self.act_batch(batch, step, eval_mode)[0]

    @torch.no_grad()
    def act_batch(self, obs: dict, step: int, eval_mode: bool = False) -> np.ndarray:
        """(N, action_dim) actions for N stacked observations {camera: (N, 3*S, H, W) uint8, 'proprio': (N, P)}
        in one forward pass (several envs); row i is what `act` gives for observation i."""
        rows = len(obs[PROPRIO])
        if not eval_mode and step < self.config.num_expl_steps:
            return torch.rand(rows, self.config.action_dim).mul_(2.0).sub_(1.0).numpy()
        images = {name: torch.as_tensor(obs[name], device=self.device) for name in self.config.cameras}
        proprio = torch.as_tensor(np.asarray(obs[PROPRIO], np.float32), device=self.device)
        if not torch.isfinite(proprio).all():
            bad = sorted({int(row) for row in torch.nonzero(~torch.isfinite(proprio))[:, 0]})
            raise ValueError(f"act: proprio of row(s) {bad} contains NaN or inf: {obs[PROPRIO]}")
        features = self.encoder(images)
        dist = self.actor(features, proprio, self.stddev_schedule(step))
        action = dist.mean if eval_mode else dist.sample(clip=None, generator=self._act_generator)
        return action.float().cpu().numpy()

    # -- learning
    def update(self, batch: Batch, step: int) -> dict:
        """One critic step (+ one actor step every `critic_actor_ratio` updates) and a target update."""
        batch = self.to_device(batch)
        self._std.fill_(self.stddev_schedule(step))
        if self.update_count < self.config.policy_warmup_updates:   # eager: a few hundred updates at most
            metrics = self._step(batch, with_actor=False, set_to_none=True, train_encoder=False)
            self.update_count += 1
            return metrics
        with_actor = self.update_count % self.config.critic_actor_ratio == 0
        if self._graphed is not None:
            try:
                metrics = self._graphed.run(batch, with_actor)
            except RuntimeError as error:   # capture unsupported here: keep learning, eagerly
                LOG.warning("CUDA-graph update failed (%s); falling back to eager updates", error)
                self._graphed = None
                metrics = self._step(batch, with_actor, set_to_none=True)
        else:
            metrics = self._step(batch, with_actor, set_to_none=True)
        self.update_count += 1
        return metrics

    def _step(self, batch: Batch, with_actor: bool, set_to_none: bool, train_encoder: bool = True) -> dict:
        """The update's tensor work (captured as-is by GraphedUpdate): critic, optional actor, target.
        `train_encoder=False` (a loaded policy's critic warm-up) leaves the encoder as it is."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._autocast):
            critic_loss, features, metrics = self._critic_loss(batch, self._std)
        self.encoder_opt.zero_grad(set_to_none=set_to_none)
        self.critic_opt.zero_grad(set_to_none=set_to_none)
        critic_loss.backward()
        self.critic_opt.step()
        if train_encoder:
            self.encoder_opt.step()
        if with_actor:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._autocast):
                actor_loss, actor_metrics = self._actor_loss(features.detach(), batch.proprio, self._std)
            self.actor_opt.zero_grad(set_to_none=set_to_none)
            actor_loss.backward()
            self.actor_opt.step()
            metrics.update(actor_metrics)
        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._online_params, self.config.critic_target_tau)
        return metrics

    def _critic_loss_eager(self, batch: Batch, std: torch.Tensor):
        # augment obs and next obs in one call per camera (independent shifts per sample, as two calls would)
        size = batch.reward.shape[0]
        both = {name: self.aug(torch.cat([batch.obs[name], batch.next_obs[name]])) for name in self.config.cameras}
        features = self.encoder({name: images[:size] for name, images in both.items()})
        with torch.no_grad():
            next_features = self.encoder({name: images[size:] for name, images in both.items()})
            next_action = self.actor(next_features, batch.next_proprio, std).sample(clip=self.config.stddev_clip)
            target_q = self.critic_target(next_features, batch.next_proprio, next_action)
            target_v = target_min(target_q, self.config.critic_subsample)
            target = batch.reward.squeeze(-1) + batch.discount.squeeze(-1) * target_v
        q = self.critic(features, batch.proprio, batch.action)
        # sum over members of each member's MSE, as DrQ-v2 (drqv2.py:189) sums its two critics
        loss = F.mse_loss(q, target.unsqueeze(0).expand_as(q), reduction="none").mean(dim=1).sum()
        metrics = {"critic_loss": loss.detach(), "critic_q": q.detach().mean(), "critic_target_q": target.mean(),
                   "batch_reward": batch.reward.mean()}
        return loss, features, metrics

    def _actor_loss_eager(self, features: torch.Tensor, proprio: torch.Tensor, std: torch.Tensor):
        dist = self.actor(features, proprio, std)
        action = dist.sample(clip=self.config.stddev_clip)
        q = self.critic(features, proprio, action)
        q = q.min(dim=0).values if self.config.actor_q == "min" else q.mean(dim=0)
        loss = -q.mean()
        metrics = {"actor_loss": loss.detach(), "actor_logprob": dist.log_prob(action).sum(-1).mean().detach(),
                   "actor_stddev": std.detach().clone()}
        return loss, metrics

    def to_device(self, batch: Batch) -> Batch:
        """The batch as tensors on the agent's device (numpy arrays are wrapped without a copy first)."""
        move = lambda x: torch.as_tensor(x).to(self.device, non_blocking=True)  # noqa: E731
        return Batch(obs={k: move(v) for k, v in batch.obs.items()}, proprio=move(batch.proprio),
                     action=move(batch.action), reward=move(batch.reward), discount=move(batch.discount),
                     next_obs={k: move(v) for k, v in batch.next_obs.items()}, next_proprio=move(batch.next_proprio))

    # -- state
    def state_dict(self) -> dict:
        """Networks, target, optimisers, update counter and the config they were built from."""
        return {"config": self.config.to_dict(), "update_count": self.update_count,
                **{name: getattr(self, name).state_dict() for name in _STATE}}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()` output; a config with different shapes is an error that names the difference."""
        saved = state.get("config", {})
        for key in ("cameras", "image_size", "frame_stack", "proprio_dim", "action_dim", "feature_dim",
                    "hidden_dim", "hidden_depth", "num_critics", "proprio_latent_dim", "mlp_layer_norm"):
            mine = self.config.to_dict()[key]
            if key in saved and saved[key] != mine:
                raise ValueError(f"checkpoint was trained with {key}={saved[key]!r}, this agent has {mine!r}: "
                                 "load it with the same agent config")
        # optimisers keep the loaded tensors themselves: copy, so two live agents never share Adam moments
        self.load_parts({name: copy.deepcopy(state[name]) if name.endswith("_opt") else state[name]
                         for name in _STATE})
        self.update_count = int(state.get("update_count", 0))

    def load_parts(self, states: dict) -> None:
        """Load the state dicts of some parts ({"encoder": ..., "actor": ...}; names of `_STATE`), e.g. a shipped
        policy's; a captured CUDA-graph update is rebuilt with the new tensors."""
        unknown = set(states) - set(_STATE)
        if unknown:
            raise KeyError(f"unknown agent part(s) {sorted(unknown)}; parts are {list(_STATE)}")
        for name, value in states.items():
            getattr(self, name).load_state_dict(value)
        if self._graphed is not None:
            self._graphed.invalidate()


_STATE = ("encoder", "actor", "critic", "critic_target", "encoder_opt", "actor_opt", "critic_opt")


def _device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available: use --device cpu")
    return device

