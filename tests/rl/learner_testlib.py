"""Helpers for the learner tests: tiny agent configs and frames that encode which (episode, step) they are."""
import numpy as np

from sole_r1_rl.config import AgentConfig


def tiny_config(**overrides) -> AgentConfig:
    """A DrQ-v2 config small enough for CPU tests (16x16 images, narrow MLPs)."""
    values = dict(image_size=16, hidden_dim=32, feature_dim=16, proprio_latent_dim=8, batch_size=8,
                  replay_capacity=1000, num_expl_steps=0, num_seed_steps=0)
    values.update(overrides)
    return AgentConfig.preset("drqv2", **values)


def numbered_frame(config: AgentConfig, episode: int, t: int) -> dict:
    """A frame whose pixels and proprio encode (episode, t), so tests can tell which frame a sample holds."""
    size = config.image_size
    value = (episode * 37 + t) % 256
    frame = {name: np.full((3, size, size), value, np.uint8) for name in config.cameras}
    proprio = np.zeros(config.proprio_dim, np.float32)
    proprio[0], proprio[1] = episode, t
    frame["proprio"] = proprio
    return frame


def fill_episode(replay, config: AgentConfig, episode: int, rewards, terminal: bool = False, close: bool = True):
    """Add one episode whose step-t transition has reward rewards[t] and action = t / 100 on every dim."""
    for t, reward in enumerate(rewards):
        last = t == len(rewards) - 1
        replay.add(numbered_frame(config, episode, t), np.full(config.action_dim, t / 100.0, np.float32),
                   float(reward), numbered_frame(config, episode, t + 1),
                   terminated=terminal and last and close, truncated=(not terminal) and last and close)



class TinyReachEnv:
    """A numpy-only ManipulationEnv stand-in: a dot moves with the action's first 3 dims towards a goal; images
    draw the dot; privileged progress is 100 * (1 - distance / start distance). Fast enough for loop tests."""

    suite, task_name, instruction, max_episode_steps = "tiny", "reach", "Move the dot to the goal.", 1000

    def __init__(self, image_size: int = 16) -> None:
        from sole_r1_sim.contract import ActionScale
        self.size, self.action_scale = image_size, ActionScale()
        self.goal = np.array([0.5, 0.5, 0.5])
        self.resets = []

    def reset(self, seed=None):
        self.resets.append(seed)
        self.position = np.random.default_rng(seed).uniform(0.0, 0.2, 3)
        self.start_distance = float(np.linalg.norm(self.goal - self.position))
        return self._observe(), {}

    def step(self, action):
        from sole_r1_sim.contract import validate_action
        self.position = np.clip(self.position + 0.05 * validate_action(action)[:3], 0.0, 1.0)
        return self._observe(), 0.0, False, False, {}

    def privileged_progress(self) -> float:
        return float(100.0 * max(0.0, 1.0 - np.linalg.norm(self.goal - self.position) / self.start_distance))

    def true_success(self) -> bool:
        return bool(np.linalg.norm(self.goal - self.position) < 0.05)

    def close(self) -> None:
        pass

    def _observe(self):
        from sole_r1_sim.contract import Observation, Proprio
        image = np.zeros((self.size, self.size, 3), np.uint8)
        y, x = (self.position[:2] * (self.size - 1)).astype(int)
        image[y, x] = 255
        proprio = Proprio(ee_position=self.position.copy(), ee_quaternion=np.array([0.0, 0.0, 0.0, 1.0]),
                          gripper_opening=1.0, joint_positions=np.zeros(2))
        return Observation(shoulder=image, wrist=image[::-1].copy(), proprio=proprio)


def make_tiny_env(index: int, image_size: int = 16) -> TinyReachEnv:
    """Env factory for trainer worker processes (module level, so a spawned process can import it)."""
    return TinyReachEnv(image_size)


class FailingTinyEnv(TinyReachEnv):
    """TinyReachEnv failing at its `fail_at`-th step: it raises, exits its process (as a segfault would) or stops
    answering (a hang)."""

    def __init__(self, fail_at: int, how: str) -> None:
        super().__init__(16)
        self.fail_at, self.how, self.steps = fail_at, how, 0

    def step(self, action):
        self.steps += 1
        if self.steps == self.fail_at:
            if self.how == "exit":
                import os
                os._exit(3)
            if self.how == "hang":
                import time
                time.sleep(3600)
            raise RuntimeError("simulated env failure")
        return super().step(action)


def make_failing_env(index: int, marker_dir: str, how: str = "raise", fail_at: int = 7, once: bool = True):
    """Env factory: env 1 fails at its `fail_at`-th step -- only its first worker when `once` (a marker file
    remembers), every worker otherwise; the other envs are plain TinyReachEnvs."""
    import os

    marker = os.path.join(marker_dir, f"env{index}.failed")
    if index != 1 or (once and os.path.exists(marker)):
        return TinyReachEnv(16)
    open(marker, "w").close()
    return FailingTinyEnv(fail_at, how)


def make_broken_env(index: int):
    """Env factory that cannot build its env."""
    raise OSError(f"no simulator for env {index}")


class TruncatingTinyEnv(TinyReachEnv):
    """TinyReachEnv whose episodes end (truncated) after `length` steps: envs with different lengths interleave."""

    def __init__(self, length: int) -> None:
        super().__init__(16)
        self.length = length

    def reset(self, seed=None):
        self.steps = 0
        return super().reset(seed)

    def step(self, action):
        self.steps += 1
        observation, reward, terminated, _, info = super().step(action)
        return observation, reward, terminated, self.steps >= self.length, info


def make_truncating_env(index: int, lengths: tuple = (15, 7)) -> TruncatingTinyEnv:
    """Env factory: env i's episodes last lengths[i] steps."""
    return TruncatingTinyEnv(lengths[index])
