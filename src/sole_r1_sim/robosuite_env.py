"""RoboSuite 1.5 (Panda, OSC_POSE) behind the `ManipulationEnv` contract.

Control: the BASIC composite controller with OSC_POSE for the arm, deltas in the robot base frame. A unit action
moves the end effector 5 cm and rotates it 0.5 rad (axis-angle) per control step -- the controller's own
`output_max`; the gripper sign is flipped (RoboSuite closes on +1, the contract on -1).
RoboSuite's cameras are rendered by our `CameraRig` (RoboSuite's own off-screen renderer is switched off), so free
cameras such as the `official_lift` preset work. `tuned=True` also sets `hard_reset=False`: the default rebuilds the
whole MuJoCo model (and every render context) at each reset.
What RoboSuite cannot do here: no environment reward is used (the contract's reward is 0), `info` carries no success
(use `true_success()`, i.e. RoboSuite's `_check_success()`), and the Panda gripper is binary-ish (it moves its
fingers at a fixed speed towards the commanded side).
"""
from __future__ import annotations

import logging
from typing import Optional

import mujoco
import numpy as np

from sole_r1_sim import progress as progress_formulas
from sole_r1_sim.contract import (ActionScale, ManipulationEnv, Observation, Proprio, step_status,
                                  validate_action)
from sole_r1_sim.task import TaskSpec
from sole_r1_sim.render import CameraRig, RenderSettings

LOG = logging.getLogger(__name__)
FINGER_TRAVEL = 0.08  # metres between Panda fingers when fully open (two joints of 0.04 each)
VISUAL_GEOM_GROUPS = (1, 2)  # RoboSuite keeps collision meshes in group 0 and never draws them


def _import_robosuite():
    try:
        import robosuite
        from robosuite.controllers import load_composite_controller_config
    except ImportError as error:
        raise ImportError("RoboSuite is not installed: run `make setup` (it installs robosuite==1.5.2)") from error
    return robosuite, load_composite_controller_config


def _make_progress(family: str, env):
    """Progress formula object for a RoboSuite task family (formulas in sole_r1_sim.progress)."""
    if family == "lift":
        return progress_formulas.LiftProgress()
    if family == "door":
        return progress_formulas.DoorProgress()
    if family == "stack":
        return progress_formulas.StackProgress()
    if family == "pick_place":
        name = env.obj_to_use
        model = env.objects[[o.name for o in env.objects].index(name)]
        bin_id = env.object_to_id[name.lower()]
        return progress_formulas.TransportProgress(name, model, lambda e: e.target_bin_placements[bin_id])
    if family == "nut_assembly":
        name = env.obj_to_use
        model = env.nuts[[n.name for n in env.nuts].index(name)]
        peg = env.peg1_body_id if env.nut_to_id[name.lower().replace("nut", "")] == 0 else env.peg2_body_id
        return progress_formulas.TransportProgress(name, model, lambda e: e.sim.data.body_xpos[peg])
    raise ValueError(f"unknown RoboSuite progress family {family!r}; use lift, door, stack, pick_place or nut_assembly")


class RoboSuiteEnv(ManipulationEnv):
    """One RoboSuite manipulation task with shoulder + wrist cameras rendered by a reusable `CameraRig`."""

    suite = "robosuite"

    def __init__(self, spec: TaskSpec, *, image_size=(128, 128), seed: Optional[int] = None, tuned: bool = True,
                 robot: str = "Panda", control_freq: int = 20, **robosuite_kwargs) -> None:
        robosuite, load_controller = _import_robosuite()
        self.spec = spec
        self.task_name = spec.name
        self.instruction = spec.instruction
        self.max_episode_steps = spec.max_episode_steps
        self.tuned = tuned
        options = dict(spec.options)
        env_name = options.pop("env_name", spec.name)
        self._family = options.pop("progress", "lift")
        controller = load_controller(controller="BASIC", robot=robot)
        # BASIC lists controllers for every body part any robot has; keep the single arm's, which also stops
        # RoboSuite from warning about each missing part on every construction.
        controller["body_parts"] = {"right": controller["body_parts"]["right"]}
        self.raw = robosuite.make(
            env_name,
            robots=robot,
            controller_configs=controller,
            has_renderer=False,
            has_offscreen_renderer=False,   # we render with our own CameraRig
            use_camera_obs=False,
            use_object_obs=True,
            reward_shaping=False,
            control_freq=control_freq,
            horizon=10**9,
            ignore_done=True,               # the contract handles truncation
            hard_reset=not tuned,
            seed=seed,
            **{**options.get("env_kwargs", {}), **robosuite_kwargs},
        )
        arm = self.raw.robots[0].part_controllers["right"]
        self.action_scale = ActionScale(
            translation=float(arm.output_max[0]), rotation=float(arm.output_max[3]), rotation_axes=(True, True, True)
        )
        self._controller_max = np.asarray(arm.output_max, dtype=np.float64)
        self._settings = RenderSettings(height=image_size[0], width=image_size[1], tuned=tuned,
                                        geom_groups=VISUAL_GEOM_GROUPS)
        self._rig: Optional[CameraRig] = None
        self._next_seed = seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        self._seeded = False
        self._obs: dict = {}
        self._steps = 0
        self._progress = None

    # ------------------------------------------------------------------ contract
    def reset(self, seed: Optional[int] = None) -> tuple[Observation, dict]:
        """Start an episode; a given seed fixes object placement and robot start noise (and so the first image)."""
        if seed is not None or not self._seeded:
            # Re-seed the generator in place: the placement sampler and the robots hold references to it.
            fresh = np.random.default_rng(int(seed if seed is not None else self._next_seed))
            self.raw.rng.bit_generator.state = fresh.bit_generator.state
            self._seeded = True
        self._obs = self.raw.reset()
        if self._rig is None or self._rig.model is not self.raw.sim.model._model:
            # First reset, or a hard reset rebuilt the MuJoCo model (suite default when tuned=False).
            if self._rig is not None:
                self._rig.close()
            self._rig = CameraRig(self.raw.sim.model._model, self.spec.cameras, self._settings)
        self._steps = 0
        self._progress = _make_progress(self._family, self.raw)
        self._progress.reset(self.raw)
        return self.observe(), {"instruction": self.instruction}

    def step(self, action: np.ndarray) -> tuple[Observation, float, bool, bool, dict]:
        """Apply a normalised 7-D action (OSC_POSE deltas in the base frame); reward is always 0."""
        if self._rig is None:
            raise RuntimeError("call reset() before step()")
        translation, rotation, gripper = self.action_scale.to_physical(validate_action(action))
        raw_action = np.concatenate([np.concatenate([translation, rotation]) / self._controller_max, [-gripper]])
        self._obs, _, _, _ = self.raw.step(raw_action)
        self._steps += 1
        truncated, info = step_status(self.task_name, self._steps, self.max_episode_steps, self.raw.sim.data.qpos)
        return self.observe(), 0.0, False, truncated, info

    def true_success(self) -> bool:
        """PRIVILEGED: RoboSuite's `_check_success()` for the current state."""
        return bool(self.raw._check_success())

    def privileged_progress(self) -> float:
        """PRIVILEGED: staged progress in [0, 100] (formulas in sole_r1_sim.progress)."""
        if self._progress is None:
            raise RuntimeError("call reset() before privileged_progress()")
        return self._progress(self.raw, self.true_success())

    def close(self) -> None:
        """Free the renderer and the RoboSuite env."""
        if self._rig is not None:
            self._rig.close()
        self.raw.close()

    # ------------------------------------------------------------------ extras
    def observe(self) -> Observation:
        """Render the current state without stepping."""
        images = self._rig.render(self.raw.sim.data._data)
        return Observation(shoulder=images["shoulder"], wrist=images["wrist"], proprio=self.proprio())

    def object_state(self) -> dict:
        """PRIVILEGED: RoboSuite's observation dict (object poses etc.) for scripted experts."""
        return dict(self._obs)

    def proprio(self) -> Proprio:
        """Proprioception of the current state, in the robot base frame (no rendering)."""
        robot = self.raw.robots[0]
        data = self.raw.sim.data._data
        base = data.body(robot.robot_model.root_body)
        base_rot = base.xmat.reshape(3, 3)
        site = robot.eef_site_id["right"]
        position = base_rot.T @ (data.site_xpos[site] - base.xpos)
        quat_wxyz = np.zeros(4)
        mujoco.mju_mat2Quat(quat_wxyz, (base_rot.T @ data.site_xmat[site].reshape(3, 3)).reshape(-1))
        arm_qpos = data.qpos[robot._ref_joint_pos_indexes]
        gripper_qpos = data.qpos[robot._ref_gripper_joint_pos_indexes["right"]]
        opening = (gripper_qpos[0] - gripper_qpos[1]) / FINGER_TRAVEL if len(gripper_qpos) == 2 else 0.0
        return Proprio(
            ee_position=position,
            ee_quaternion=np.roll(quat_wxyz, -1),
            gripper_opening=float(np.clip(opening, 0.0, 1.0)),
            joint_positions=np.concatenate([arm_qpos, gripper_qpos]),
            joint_names=tuple(robot.robot_joints) + tuple(robot.gripper_joints["right"]),
        )
