"""Networks of the DrQ-v2 agent: one conv encoder per camera (+ proprio), an actor with scheduled, clipped
exploration noise, and a critic ensemble (twin Q as DrQ-v2, or N members with a random-subset target as REDQ/SERL).

Shapes follow DrQ-v2 (drqv2.py: Encoder, Actor, Critic): the encoder is trained only through the critic loss; actor
and critic each own a trunk Linear -> LayerNorm -> tanh. Proprio joins after the trunk through its own
Linear -> LayerNorm -> tanh embedding, as SERL's EncodingWrapper does (encoding.py:55-69).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from sole_r1_rl.config import AgentConfig


def init_weights(module: nn.Module) -> None:
    """Orthogonal init, zero bias (DrQ-v2 utils.weight_init): ReLU gain for convs, unit gain for Linear."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight.data)
        if module.bias is not None:
            module.bias.data.fill_(0.0)
    elif isinstance(module, nn.Conv2d):
        nn.init.orthogonal_(module.weight.data, nn.init.calculate_gain("relu"))
        if module.bias is not None:
            module.bias.data.fill_(0.0)


class ConvEncoder(nn.Module):
    """DrQ-v2's conv stack for one camera: 4 x (3x3 conv, 32 channels, ReLU), first with stride 2; flattened."""

    def __init__(self, in_channels: int, image_size: int, channels_last: bool = False) -> None:
        super().__init__()
        self.convnet = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, stride=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
        )
        side = (image_size - 3) // 2 + 1 - 6
        self.repr_dim = 32 * side * side
        self.channels_last = channels_last
        self.apply(init_weights)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) images (N, C, H, W) -> features (N, repr_dim)."""
        x = images.float() / 255.0 - 0.5
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.convnet(x).flatten(1)


class MultiCameraEncoder(nn.Module):
    """One ConvEncoder per camera; features concatenated in the configured camera order."""

    def __init__(self, config: AgentConfig) -> None:
        super().__init__()
        channels = 3 * config.frame_stack
        self.cameras = tuple(config.cameras)
        self.encoders = nn.ModuleDict(
            {name: ConvEncoder(channels, config.image_size, config.channels_last) for name in self.cameras})
        self.repr_dim = sum(encoder.repr_dim for encoder in self.encoders.values())

    def forward(self, images: dict) -> torch.Tensor:
        """{camera: (N, 3*frame_stack, H, W)} -> (N, repr_dim)."""
        return torch.cat([self.encoders[name](images[name]) for name in self.cameras], dim=1)


class Trunk(nn.Module):
    """Image features -> Linear/LayerNorm/tanh (feature_dim), concatenated with the proprio embedding."""

    def __init__(self, repr_dim: int, config: AgentConfig) -> None:
        super().__init__()
        self.image = nn.Sequential(nn.Linear(repr_dim, config.feature_dim), nn.LayerNorm(config.feature_dim), nn.Tanh())
        use_proprio = config.proprio_dim > 0 and config.proprio_latent_dim > 0
        self.proprio = (nn.Sequential(nn.Linear(config.proprio_dim, config.proprio_latent_dim),
                                      nn.LayerNorm(config.proprio_latent_dim), nn.Tanh()) if use_proprio else None)
        self.out_dim = config.feature_dim + (config.proprio_latent_dim if use_proprio else 0)

    def forward(self, features: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """(N, repr_dim), (N, proprio_dim) -> (N, out_dim)."""
        h = self.image(features)
        return torch.cat([h, self.proprio(proprio)], dim=-1) if self.proprio is not None else h


def _activation(name: str) -> nn.Module:
    return nn.ReLU(inplace=True) if name == "relu" else nn.Tanh()


def make_mlp(in_dim: int, out_dim: int, config: AgentConfig) -> nn.Sequential:
    """hidden_depth x (Linear, [LayerNorm], activation) then a Linear to out_dim."""
    layers: list[nn.Module] = []
    for _ in range(config.hidden_depth):
        layers.append(nn.Linear(in_dim, config.hidden_dim))
        if config.mlp_layer_norm:
            layers.append(nn.LayerNorm(config.hidden_dim))
        layers.append(_activation(config.mlp_activation))
        in_dim = config.hidden_dim
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class TruncatedNormal:
    """Normal(loc, scale) whose samples are clamped to [low+eps, high-eps] with a straight-through gradient
    (DrQ-v2 utils.TruncatedNormal); `sample(clip=c)` also clips the noise to [-c, c] first. `scale` may be a
    float or a 0-d tensor (a tensor keeps a changing schedule value from retriggering torch.compile)."""

    def __init__(self, loc: torch.Tensor, scale, low: float = -1.0, high: float = 1.0, eps: float = 1e-6):
        self.loc, self.scale, self.low, self.high, self.eps = loc, scale, low, high, eps

    @property
    def mean(self) -> torch.Tensor:
        """The (already tanh-squashed) mean action."""
        return self.loc

    @property
    def stddev(self):
        """The exploration standard deviation."""
        return self.scale

    def sample(self, clip: Optional[float] = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw one action per row: loc + clip(noise) clamped into the action box, gradient flowing to loc."""
        noise = torch.randn(self.loc.shape, dtype=self.loc.dtype, device=self.loc.device, generator=generator)
        noise = noise * self.scale
        if clip is not None:
            noise = noise.clamp(-clip, clip)
        x = self.loc + noise
        clamped = x.clamp(self.low + self.eps, self.high - self.eps)
        return x - x.detach() + clamped.detach()

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Per-dimension log density of the underlying (untruncated) normal."""
        scale = torch.as_tensor(self.scale, dtype=self.loc.dtype, device=self.loc.device)
        return -((value - self.loc) ** 2) / (2 * scale ** 2) - torch.log(scale) - 0.5 * math.log(2 * math.pi)

    def entropy(self) -> torch.Tensor:
        """Per-dimension entropy of the underlying normal."""
        scale = torch.as_tensor(self.scale, dtype=self.loc.dtype, device=self.loc.device)
        return (0.5 + 0.5 * math.log(2 * math.pi) + torch.log(scale)).expand_as(self.loc)


class Actor(nn.Module):
    """Deterministic tanh policy plus scheduled exploration noise: forward(...) -> TruncatedNormal(mu, std)."""

    def __init__(self, repr_dim: int, config: AgentConfig) -> None:
        super().__init__()
        self.trunk = Trunk(repr_dim, config)
        self.policy = make_mlp(self.trunk.out_dim, config.action_dim, config)
        self.apply(init_weights)

    def mean_action(self, features: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """The deterministic action tanh(policy(trunk(...))) in [-1, 1]."""
        return torch.tanh(self.policy(self.trunk(features, proprio)))

    def forward(self, features: torch.Tensor, proprio: torch.Tensor, std) -> TruncatedNormal:
        """Action distribution for encoded observations (std: float or 0-d tensor)."""
        return TruncatedNormal(self.mean_action(features, proprio), std)


class EnsembleLinear(nn.Module):
    """N independent Linear layers applied in one batched matmul: (N, B, in) or (B, in) -> (N, B, out)."""

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, out_dim))
        for member in range(members):  # same orthogonal init as each nn.Linear in DrQ-v2
            w = torch.empty(out_dim, in_dim)
            nn.init.orthogonal_(w)
            self.weight.data[member] = w.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply every member; a 2-D input is shared by all members."""
        if x.ndim == 2:
            x = x.unsqueeze(0).expand(self.weight.shape[0], -1, -1)
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm with a separate scale and offset per ensemble member."""

    def __init__(self, members: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, 1, dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise the last dimension of (N, B, dim)."""
        return F.layer_norm(x, x.shape[-1:]) * self.weight + self.bias


class CriticEnsemble(nn.Module):
    """Q ensemble over a shared trunk: forward(features, proprio, action) -> (num_critics, B)."""

    def __init__(self, repr_dim: int, config: AgentConfig) -> None:
        super().__init__()
        self.trunk = Trunk(repr_dim, config)
        self.num_critics = config.num_critics
        layers: list[nn.Module] = []
        in_dim = self.trunk.out_dim + config.action_dim
        for _ in range(config.hidden_depth):
            layers.append(EnsembleLinear(config.num_critics, in_dim, config.hidden_dim))
            if config.mlp_layer_norm:
                layers.append(EnsembleLayerNorm(config.num_critics, config.hidden_dim))
            layers.append(_activation(config.mlp_activation))
            in_dim = config.hidden_dim
        layers.append(EnsembleLinear(config.num_critics, in_dim, 1))
        self.q = nn.Sequential(*layers)
        self.trunk.apply(init_weights)

    def forward(self, features: torch.Tensor, proprio: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q values of every member for each (observation, action) row."""
        h = torch.cat([self.trunk(features, proprio), action], dim=-1)
        return self.q(h).squeeze(-1)


def target_min(q_values: torch.Tensor, subsample: Optional[int],
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Minimum over the ensemble (N, B) -> (B,): over all members, or (REDQ) over `subsample` members drawn
    without replacement, one draw per batch. SERL draws with replacement (sac.py:152 randint); REDQ's paper and
    we draw distinct members, so a subset of 2 never degenerates to a single critic."""
    members = q_values.shape[0]
    if subsample is None or subsample >= members:
        return q_values.min(dim=0).values
    device = generator.device if generator is not None else q_values.device
    # argsort of uniform noise = a random permutation, and (unlike randperm) capturable in a CUDA graph
    chosen = torch.rand(members, generator=generator, device=device).argsort()[:subsample].to(q_values.device)
    return q_values.index_select(0, chosen).min(dim=0).values
