"""Meta-World v3 (Sawyer, 50 tasks) behind the `ManipulationEnv` contract.

What Meta-World cannot do: its Sawyer is driven by a mocap body that moves the hand in x, y, z with a fixed
downward orientation, so the three rotation components of our 7-D action are ignored (`rotation_axes` all False).
One unit of translation is 1 cm per step (Meta-World's own `action_scale`); the gripper sign is flipped because
Meta-World closes on +1 while the contract closes on -1.
Goals are visible to the scripted experts through the privileged state vector (`state_vector()`), never through
the observation. Meta-World's static cameras are mounted upside down (their up axis points at the floor), so their
images are rotated 180 degrees (`orientation: rot180` in config/tasks/metaworld.yaml).
"""
from __future__ import annotations

import logging
from typing import Optional

import mujoco
import numpy as np

from sole_r1_sim.contract import (ActionScale, ManipulationEnv, Observation, Proprio, step_status,
                                  validate_action)
from sole_r1_sim.progress import MetaWorldProgress
from sole_r1_sim.task import TaskSpec
from sole_r1_sim.render import CameraRig, RenderSettings

LOG = logging.getLogger(__name__)
ARM_JOINTS = tuple(f"right_j{i}" for i in range(7))
GRIPPER_JOINTS = ("r_close", "l_close")
MAX_FINGER_GAP = 0.1  # metres between the claws when fully open (Meta-World's own normalisation)


def _load_metaworld_class(task: str):
    try:
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS, ML1_ARGS_KWARGS
    except ImportError as error:
        raise ImportError("Meta-World is not installed: run `make setup` (it installs metaworld==3.1.1)") from error
    if task not in ALL_V3_ENVIRONMENTS:
        raise KeyError(f"Meta-World has no task '{task}'; see `list_tasks('metaworld')`")
    kwargs = dict(ML1_ARGS_KWARGS[task]["kwargs"])
    kwargs.pop("task_id", None)
    return ALL_V3_ENVIRONMENTS[task], kwargs


class MetaWorldEnv(ManipulationEnv):
    """One Meta-World v3 task with shoulder + wrist cameras, seeded random goals and privileged progress."""

    suite = "metaworld"

    def __init__(self, spec: TaskSpec, *, image_size=(128, 128), seed: Optional[int] = None, tuned: bool = True,
                 translation_scale: float = 0.01) -> None:
        env_class, task_kwargs = _load_metaworld_class(spec.name)
        self.spec = spec
        self.task_name = spec.name
        self.instruction = spec.instruction
        self.max_episode_steps = spec.max_episode_steps
        self.tuned = tuned
        raw = env_class()
        # Same switches as metaworld.MT1 task sampling, but goals drawn from a seeded generator we control.
        raw._partially_observable = False
        if "sawyer_observation_space" in raw.__dict__:
            del raw.sawyer_observation_space  # cached with the goal hidden; step() clips the state to it
        raw._freeze_rand_vec = False
        raw.seeded_rand_vec = True
        raw._set_task_called = True
        raw._set_task_inner(**task_kwargs)
        raw.max_path_length = 10**9  # the contract handles truncation; Meta-World would raise at 500
        self.raw = raw
        self.action_scale = ActionScale(
            translation=translation_scale, rotation=0.0, rotation_axes=(False, False, False)
        )
        settings = RenderSettings(height=image_size[0], width=image_size[1], tuned=tuned)
        self._rig = CameraRig(raw.model, spec.cameras, settings)
        self._progress = MetaWorldProgress(spec.options.get("progress", "object"))
        self._next_seed = seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        self._seeded = False
        self._state = np.zeros(39)
        self._info: dict = {}
        self._steps = 0
        self._arm_qpos = [raw.model.jnt_qposadr[raw.model.joint(name).id] for name in ARM_JOINTS + GRIPPER_JOINTS]

    # ------------------------------------------------------------------ contract
    def reset(self, seed: Optional[int] = None) -> tuple[Observation, dict]:
        """Start an episode; a given seed fixes the goal/object layout (and so the first observation)."""
        if seed is not None or not self._seeded:
            self.raw.seed(int(seed if seed is not None else self._next_seed))
            self._seeded = True
        self._state, _ = self.raw.reset()
        # Some tasks (e.g. window-open/close) set joint positions in reset_model without recomputing positions, so
        # Meta-World's first state, success flag and our first image would show the previous episode's layout.
        mujoco.mj_forward(self.raw.model, self.raw.data)
        current = self.raw._get_curr_obs_combined_no_goal()
        self._state = np.concatenate([current, current, self._state[36:]])
        self.raw._prev_obs = current.copy()
        self._steps = 0
        self._info = self._evaluate(np.zeros(4))
        self._progress.reset(self.raw, self._info)
        return self.observe(), {"instruction": self.instruction}

    def step(self, action: np.ndarray) -> tuple[Observation, float, bool, bool, dict]:
        """Apply a normalised 7-D action (rotation ignored); reward is always 0."""
        translation, _, gripper = self.action_scale.to_physical(validate_action(action))
        raw_action = np.concatenate([translation / self.raw.action_scale, [-gripper]]).astype(np.float32)
        self._state, _, _, _, self._info = self.raw.step(raw_action)
        self._steps += 1
        truncated, info = step_status(self.task_name, self._steps, self.max_episode_steps, self.raw.data.qpos)
        return self.observe(), 0.0, False, truncated, info

    def true_success(self) -> bool:
        """PRIVILEGED: Meta-World's own success flag for the current state."""
        return bool(self._info.get("success", 0.0))

    def privileged_progress(self) -> float:
        """PRIVILEGED: staged progress in [0, 100] (formula in sole_r1_sim.progress.MetaWorldProgress)."""
        return self._progress(self.raw, self._info, self.true_success())

    def close(self) -> None:
        """Free the renderer and the MuJoCo env."""
        self._rig.close()
        self.raw.close()

    # ------------------------------------------------------------------ extras
    def observe(self) -> Observation:
        """Render the current state without stepping."""
        images = self._rig.render(self.raw.data)
        return Observation(shoulder=images["shoulder"], wrist=images["wrist"], proprio=self.proprio())

    def state_vector(self) -> np.ndarray:
        """PRIVILEGED: Meta-World's 39-D state (hand, gripper, objects, previous frame, goal) for scripted experts."""
        return self._state.copy()

    def _evaluate(self, raw_action: np.ndarray) -> dict:
        # Meta-World computes success only inside step(); evaluate the reset state the same way.
        _, info = self.raw.evaluate_state(self._state, raw_action)
        return info

    def proprio(self) -> Proprio:
        """Proprioception of the current state, in the robot base frame (no rendering)."""
        data = self.raw.data
        base = data.body("base")
        base_rot = base.xmat.reshape(3, 3)
        position = base_rot.T @ (np.asarray(self.raw.tcp_center) - base.xpos)
        hand_rot = base_rot.T @ data.body("hand").xmat.reshape(3, 3)
        quat_wxyz = np.zeros(4)
        mujoco.mju_mat2Quat(quat_wxyz, hand_rot.reshape(-1))
        gap = np.linalg.norm(data.body("rightclaw").xpos - data.body("leftclaw").xpos)
        return Proprio(
            ee_position=position.astype(np.float64),
            ee_quaternion=np.roll(quat_wxyz, -1),
            gripper_opening=float(np.clip(gap / MAX_FINGER_GAP, 0.0, 1.0)),
            joint_positions=data.qpos[self._arm_qpos].copy(),
            joint_names=ARM_JOINTS + GRIPPER_JOINTS,
        )
