"""Episodes for synthesis: which policy each episode runs (seeded), and recording frames, states and labels.

Policies (weights in SynthConfig.policy_mix), built from sole_r1_sim.experts:
- expert: the scripted expert; noisy: the expert plus Gaussian action noise (sigma drawn per episode);
- stall: the expert until the privileged progress reaches a threshold drawn per episode, then no motion with the
  gripper held (a plateau below success, as `experts.stall_after`, but triggered by progress so that fast experts
  stall too); derail: the same switch, then uniform random actions (the object is dropped: progress regresses);
- random: uniform random actions; do_nothing: zero actions; fidget: small random arm motions while the gripper
  closes and opens in blocks (gripper activity that is not progress).
Episodes of expert and noisy end `hold_steps` after the first success; the others end at a length drawn per
episode (stall/derail: some time after the switch), always within the task's horizon.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Optional

import numpy as np

from sole_r1_model.synth.config import SynthConfig
from sole_r1_model.synth.state import StateReader, StateSummary
from sole_r1_model.synth.tasks import TaskRef, make_task_expert
from sole_r1_sim.contract import ACTION_DIM
from sole_r1_sim.experts import do_nothing, fidget, noisy, random_policy



def van_der_corput(index: int) -> float:
    """The base-2 van der Corput number of `index`: 0, 0.5, 0.25, 0.75, 0.125, ... (evenly filling [0, 1))."""
    value, scale = 0.0, 0.5
    while index:
        value += scale * (index & 1)
        index >>= 1
        scale /= 2
    return value


def derive_seed(*parts) -> int:
    """A 31-bit seed from any parts, stable across processes and Python runs (unlike hash())."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def env_seed(config: SynthConfig, ref: TaskRef) -> int:
    """Seed an env of `ref` is built with: every worker builds the same model (e.g. RoboSuite's cube size)."""
    return derive_seed(config.seed, ref.suite, ref.task, "env")


@dataclasses.dataclass(frozen=True)
class EpisodePlan:
    """Everything that decides one episode, derived from (seed, suite, task, index) and the config."""

    ref: TaskRef
    index: int
    seed: int
    policy: str
    sigma: float = 0.0           # noisy: action noise std
    threshold: float = 100.0     # stall/derail: privileged progress (%) at which the expert stops
    length_fraction: float = 1.0  # non-expert policies: episode length as a fraction of the horizon
    heldout: bool = False

    @property
    def name(self) -> str:
        """`episode_007`: the episode's file name inside its task folder."""
        return f"episode_{self.index:03d}"


def plan_episode(config: SynthConfig, ref: TaskRef, index: int, heldout: bool = False) -> EpisodePlan:
    """The plan of episode `index` of `ref`: policy from a per-task low-discrepancy sequence, seeded parameters."""
    weights = config.policy_weights()
    seed = derive_seed(config.seed, ref.suite, ref.task, index)
    # A van der Corput sequence shifted per task: the first 2^k episodes of a task split the mix evenly (episodes
    # 0 and 1 lie half the mix apart), and episode i's policy does not depend on how many episodes are asked for,
    # so resuming with more episodes keeps the old ones.
    offset = derive_seed(config.seed, ref.suite, ref.task, "mix") / 2**31
    u = (offset + van_der_corput(index)) % 1.0
    cumulative = np.cumsum(list(weights.values())) / sum(weights.values())
    policy = list(weights)[min(int(np.searchsorted(cumulative, u, side="right")), len(weights) - 1)]
    rng = np.random.default_rng([seed, 1])
    return EpisodePlan(ref=ref, index=index, seed=seed, policy=policy,
                       sigma=float(rng.uniform(*config.noise_sigma)),
                       threshold=float(rng.uniform(*config.stall_progress)),
                       length_fraction=float(rng.uniform(0.4, 1.0)), heldout=heldout)


class SwitchAtProgress:
    """The expert until the env's privileged progress reaches `threshold`, then `after` (None: hold still)."""

    def __init__(self, expert, threshold: float, after=None) -> None:
        self.expert, self.threshold, self.after = expert, threshold, after
        self.switch_step: Optional[int] = None
        self._step, self._gripper = 0, 0.0

    def reset(self) -> None:
        """Start again with the expert."""
        self.expert.reset()
        if self.after is not None:
            self.after.reset()
        self.switch_step, self._step, self._gripper = None, 0, 0.0

    def act(self, env, obs) -> np.ndarray:
        """Expert action before the switch, the `after` action (or a still, gripper-held action) after it."""
        self._step += 1
        if self.switch_step is None and env.privileged_progress() >= self.threshold:
            self.switch_step = self._step
        if self.switch_step is None:
            action = np.asarray(self.expert.act(env, obs), dtype=np.float64)
            self._gripper = float(action[6])
            return action
        if self.after is not None:
            return self.after.act(env, obs)
        action = np.zeros(ACTION_DIM)
        action[6] = self._gripper  # keep the grip: a held object stays held, so progress plateaus
        return action


def build_policy(plan: EpisodePlan):
    """The policy object of a plan (fresh expert state, seeded noise)."""
    noise_seed = derive_seed(plan.seed, "policy")
    if plan.policy == "random":
        return random_policy(seed=noise_seed)
    if plan.policy == "do_nothing":
        return do_nothing()
    if plan.policy == "fidget":
        return fidget(seed=noise_seed)
    expert = make_task_expert(plan.ref.suite, plan.ref.task)
    if plan.policy == "noisy":
        return noisy(expert, plan.sigma, seed=noise_seed)
    if plan.policy == "stall":
        return SwitchAtProgress(expert, plan.threshold)
    if plan.policy == "derail":
        return SwitchAtProgress(expert, plan.threshold, random_policy(seed=noise_seed))
    return expert


@dataclasses.dataclass
class Episode:
    """One recorded episode: frames, per-frame state summaries and privileged labels (index 0 = after reset)."""

    plan: EpisodePlan
    instruction: str
    shoulder: list
    wrist: list
    states: list            # StateSummary per frame
    steps: int = 0

    @property
    def num_frames(self) -> int:
        """Frames recorded (steps + 1)."""
        return len(self.states)

    @property
    def success(self) -> bool:
        """Whether the final frame is solved (the official success label is about the final state)."""
        return bool(self.states[-1].success)

    @property
    def privileged(self) -> list:
        """Privileged progress per frame."""
        return [s.progress for s in self.states]


def horizon(config: SynthConfig, env) -> int:
    """Longest episode, in steps: the task's limit, capped by config.max_steps."""
    return min(env.max_episode_steps, config.max_steps) if config.max_steps else env.max_episode_steps


def record_episode(env, plan: EpisodePlan, config: SynthConfig) -> Episode:
    """Run one planned episode on `env` and record what the dataset needs."""
    policy = build_policy(plan)
    obs, _ = env.reset(seed=plan.seed)
    policy.reset()
    reader = StateReader(env)
    episode = Episode(plan, env.instruction, [obs.shoulder], [obs.wrist], [reader.reset()])
    limit = horizon(config, env)
    follows_expert = plan.policy in ("expert", "noisy", "stall", "derail")
    planned = limit if follows_expert else max(2, round(plan.length_fraction * limit))
    solved_at: Optional[int] = None
    switched = False
    for step in range(1, limit + 1):
        obs, _, terminated, truncated, _ = env.step(policy.act(env, obs))
        state: StateSummary = reader.read()
        episode.shoulder.append(obs.shoulder)
        episode.wrist.append(obs.wrist)
        episode.states.append(state)
        episode.steps = step
        if state.success and solved_at is None:
            solved_at = step
        switch = getattr(policy, "switch_step", None)
        if switch is not None and not switched:
            # After a stall/derail the episode runs on for a while, so the plateau or regression shows.
            switched = True
            planned = min(limit, switch + max(10, round(0.5 * plan.length_fraction * limit)))
        if terminated or truncated or step >= planned:
            break
        if solved_at is not None and step - solved_at >= config.hold_steps:
            break
    return episode


def labels_for(episode: Episode, label: str) -> list[int]:
    """Per-frame integer progress labels: privileged, or time-normalised for successful episodes (label='time')."""
    privileged = [int(round(p)) for p in episode.privileged]
    if label == "privileged" or not episode.success:
        return privileged
    first = next(i for i, s in enumerate(episode.states) if s.success)
    # Monotone in time up to the first success, then 100 (the paper's convention for demonstrations).
    return [100 if i >= first else int(round(100.0 * i / max(first, 1))) for i in range(episode.num_frames)]
