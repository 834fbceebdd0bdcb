"""Scripted experts (privileged: they read simulator state) and variants with known, graded progress.

An expert is any object with `reset()` and `act(env, obs) -> (7,) action` in the contract's normalised action
space. Meta-World experts wrap the suite's own `metaworld.policies`; RoboSuite experts are waypoint scripts
(`sole_r1_sim.experts_robosuite`). Variants turn an expert into data for reward-model evaluation and synthesis:
`noisy(expert, sigma)` (perturbed, usually still succeeds), `stall_after(expert, fraction)` (stops moving part way:
progress plateaus), `random_policy()` and `do_nothing()` (progress stays near 0). `rollout` records the privileged
progress and success at every step next to the frames, so each trajectory carries its ground-truth progress.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Callable, Optional, Protocol

import numpy as np

from sole_r1_sim.contract import ACTION_DIM, ManipulationEnv, Observation


class Expert(Protocol):
    """A policy over the contract's 7-D normalised actions."""

    def reset(self) -> None:
        """Forget per-episode state (call after env.reset)."""

    def act(self, env: ManipulationEnv, obs: Observation) -> np.ndarray:
        """Next action for the env's current state."""


class MetaWorldExpert:
    """Meta-World's scripted policy for one task, mapped into the contract's 7-D action space."""

    def __init__(self, task: str) -> None:
        from metaworld.policies import ENV_POLICY_MAP

        if task not in ENV_POLICY_MAP:
            raise KeyError(f"Meta-World ships no scripted policy for '{task}'")
        self.task = task
        self.policy = ENV_POLICY_MAP[task]()

    def reset(self) -> None:
        """Meta-World policies are stateless."""

    def act(self, env: ManipulationEnv, obs: Observation) -> np.ndarray:
        """Policy action on the privileged state: x-y-z in Meta-World units, grab effort (+1 close)."""
        with warnings.catch_warnings():
            # The policies warn whenever their P-gain saturates; we clip exactly as Meta-World does.
            warnings.simplefilter("ignore", UserWarning)
            raw_action = np.clip(self.policy.get_action(env.state_vector()), -1.0, 1.0)
        action = np.zeros(ACTION_DIM)
        # Meta-World moves raw.action_scale metres per unit; the env's ActionScale may differ from that.
        action[:3] = raw_action[:3] * env.raw.action_scale / env.action_scale.translation
        action[6] = -raw_action[3]  # contract: -1 closes
        return np.clip(action, -1.0, 1.0)


def make_expert(suite: str, task: str) -> Expert:
    """The scripted expert for `task` of `suite` (raises KeyError if there is none)."""
    if suite == "metaworld":
        return MetaWorldExpert(task)
    if suite == "robosuite":
        from sole_r1_sim.experts_robosuite import ROBOSUITE_EXPERTS

        if task not in ROBOSUITE_EXPERTS:
            raise KeyError(f"no scripted RoboSuite expert for '{task}'; have {sorted(ROBOSUITE_EXPERTS)}")
        return ROBOSUITE_EXPERTS[task]()
    raise KeyError(f"no scripted experts for suite '{suite}' here (ManiSkill/LIBERO experts live in their modules)")


# ---------------------------------------------------------------------------------------------- variants
class _FunctionPolicy:
    def __init__(self, act: Callable[[ManipulationEnv, Observation], np.ndarray], reset: Callable[[], None]) -> None:
        self._act, self._reset = act, reset

    def reset(self) -> None:
        self._reset()

    def act(self, env: ManipulationEnv, obs: Observation) -> np.ndarray:
        return self._act(env, obs)


def noisy(expert: Expert, sigma: float, seed: Optional[int] = None) -> Expert:
    """The expert with i.i.d. Gaussian noise of std `sigma` (normalised units) added to every action, clipped."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    rng = np.random.default_rng(seed)

    def act(env, obs):
        return np.clip(expert.act(env, obs) + rng.normal(0.0, sigma, ACTION_DIM), -1.0, 1.0)

    return _FunctionPolicy(act, expert.reset)


def stall_after(expert: Expert, fraction: float, horizon: Optional[int] = None) -> Expert:
    """The expert until `fraction` of the horizon (default: env.max_episode_steps), then no motion.

    The gripper command is held at its last value, so a grasped object is not dropped: progress plateaus.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")
    state = {"step": 0, "gripper": 0.0}

    def reset():
        state.update(step=0, gripper=0.0)
        expert.reset()

    def act(env, obs):
        limit = int(round(fraction * (horizon or env.max_episode_steps)))
        state["step"] += 1
        if state["step"] > limit:
            action = np.zeros(ACTION_DIM)
            action[6] = state["gripper"]
            return action
        action = expert.act(env, obs)
        state["gripper"] = float(action[6])
        return action

    return _FunctionPolicy(act, reset)


def random_policy(seed: Optional[int] = None) -> Expert:
    """Uniform random actions in [-1, 1]^7."""
    rng = np.random.default_rng(seed)
    return _FunctionPolicy(lambda env, obs: rng.uniform(-1.0, 1.0, ACTION_DIM), lambda: None)


def fidget(seed: Optional[int] = None, arm_scale: float = 0.3, block: tuple = (3, 10)) -> Expert:
    """Small random arm motions while the gripper closes and opens in blocks of `block` steps: activity without task
    progress, the counter-example a reward model needs to "the gripper closed, so progress" (docs/training.md)."""
    if not 0.0 <= arm_scale <= 1.0 or not 1 <= block[0] <= block[1]:
        raise ValueError(f"fidget: arm_scale must be in [0, 1] and block a range of >= 1 steps, got {arm_scale}, "
                         f"{block}")
    rng = np.random.default_rng(seed)
    state = {"left": 0, "grip": -1.0}

    def reset():
        state.update(left=0, grip=-1.0)

    def act(env, obs):
        if state["left"] <= 0:
            state["grip"] = -state["grip"]
            state["left"] = int(rng.integers(block[0], block[1] + 1))
        state["left"] -= 1
        action = np.zeros(ACTION_DIM)
        action[:6] = rng.uniform(-arm_scale, arm_scale, 6)
        action[6] = state["grip"]
        return action

    return _FunctionPolicy(act, reset)


def do_nothing() -> Expert:
    """All-zero actions: no motion, gripper left as it is."""
    return _FunctionPolicy(lambda env, obs: np.zeros(ACTION_DIM), lambda: None)


# ---------------------------------------------------------------------------------------------- rollouts
@dataclasses.dataclass
class Trajectory:
    """One episode with its privileged labels, aligned per frame (index 0 = after reset)."""

    shoulder: list
    wrist: list
    actions: list
    progress: list
    success: list
    instruction: str

    @property
    def final_success(self) -> bool:
        """Whether the episode ends solved."""
        return bool(self.success[-1])


def rollout(env: ManipulationEnv, policy: Expert, *, seed: Optional[int] = None, steps: Optional[int] = None,
            stop_on_success: bool = False, keep_frames: bool = True) -> Trajectory:
    """Run one episode of `policy` and record frames, actions, privileged progress and success per step."""
    obs, _ = env.reset(seed=seed)
    policy.reset()
    trajectory = Trajectory([], [], [], [], [], env.instruction)

    def record(observation: Observation) -> None:
        if keep_frames:
            trajectory.shoulder.append(observation.shoulder)
            trajectory.wrist.append(observation.wrist)
        trajectory.progress.append(env.privileged_progress())
        trajectory.success.append(env.true_success())

    record(obs)
    for _ in range(steps or env.max_episode_steps):
        action = policy.act(env, obs)
        obs, _, terminated, truncated, _ = env.step(action)
        trajectory.actions.append(np.asarray(action, dtype=np.float32))
        record(obs)
        if terminated or (stop_on_success and trajectory.success[-1]):
            break
        if truncated and steps is None:
            break
    return trajectory
