"""ManiSkill 3 tasks (SAPIEN physics, Vulkan rendering) behind the `ManipulationEnv` contract.

Tasks, instructions and camera presets live in config/tasks/maniskill.yaml. Wired embodiments: the Panda with a
wrist camera (`panda_wristcam`: shoulder = the task's `base_camera`, wrist = `hand_camera`) and Fetch (`fetch`:
wrist = `fetch_hand`; its base and body are held still). WidowX (`widowx250s`, `widowxai*`) needs robot models that
ManiSkill downloads on first use, so it is refused with the download instructions, like every task or robot whose
assets are not on disk: nothing is downloaded at run time (ManiSkill would otherwise stop and ask on stdin).

Actions: the contract's 7-D action drives ManiSkill's `pd_ee_delta_pose` controller (a new EE target = current pose
+ delta, translation along the robot-base axes, rotation about them). `action_scale` is that controller's own range:
0.1 m and 0.1 rad commanded per step at |a| = 1; the PD loop covers ~40 % of a commanded step within one 50 ms
control period, so motion lags the command. The contract's axis-angle rotation is converted to the XYZ Euler
angles ManiSkill expects, and its sign is flipped because ManiSkill 3.0.1 scales the normalised rotation by the
controller's (negative) lower bound.
Tuning (`tuned=True`): the Panda's wrist-camera mount (a RealSense D415 mesh of 1.3 M vertices) is hidden from the
cameras. It is not visible in the wrist view and a few pixels in the shoulder view, and a CPU rasteriser spends most
of each frame on it. Physics and every other pixel are unchanged.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Optional

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from sole_r1_sim.contract import (ActionScale, ManipulationEnv, Observation, Proprio, step_status,
                                  validate_action)

LOG = logging.getLogger(__name__)
SUITE = "maniskill"
GRASP_RADIUS = 0.05  # metres between TCP and object centre within which a grasp can be real
CONFIG_HINT = "run `make setup` (it installs mani-skill==3.0.1) and tools/setup/setup_vulkan.sh"


@dataclasses.dataclass(frozen=True)
class RobotRig:
    """What the contract needs to know about one ManiSkill embodiment."""

    gripper_joints: tuple[str, ...]
    heavy_visual_links: tuple[str, ...] = ()   # hidden from the cameras in tuned mode


ROBOTS = {
    "panda_wristcam": RobotRig(gripper_joints=("panda_finger_joint1", "panda_finger_joint2"),
                               heavy_visual_links=("camera_link",)),
    "fetch": RobotRig(gripper_joints=("r_gripper_finger_joint", "l_gripper_finger_joint")),
}


def _task_names() -> list[str]:
    from sole_r1_config import config_dir

    path = config_dir() / "tasks" / f"{SUITE}.yaml"
    with open(path, encoding="utf-8") as handle:
        return list((yaml.safe_load(handle) or {}).get("tasks", {}))


TASKS: list[str] = _task_names()


class ManiSkillAssetsMissing(RuntimeError):
    """A ManiSkill task or robot needs downloaded assets that are not on this machine."""


def missing_assets(env_id: str, robot: str) -> list[str]:
    """ManiSkill asset ids (download groups) that `env_id` with `robot` needs and that are not all on disk."""
    from mani_skill.agents.registration import REGISTERED_AGENTS
    from mani_skill.utils import assets
    from mani_skill.utils.registration import REGISTERED_ENVS

    groups = list(REGISTERED_ENVS[env_id].asset_download_ids or [])
    if robot in REGISTERED_AGENTS:
        groups += list(REGISTERED_AGENTS[robot].asset_download_ids or [])
    missing = []
    for group in groups:
        sources = (assets.expand_data_group_into_individual_data_source_ids(group)
                   if group in assets.DATA_GROUPS else [group])
        if any(s in assets.DATA_SOURCES and not assets.is_data_source_downloaded(s) for s in sources):
            missing.append(group)
    return missing


@dataclasses.dataclass(frozen=True)
class ManiSkillConfig:
    """How one ManiSkill task is built (task text and cameras come from config/tasks/maniskill.yaml)."""

    env_id: str                               # ManiSkill env id, e.g. "PickCube-v1"
    robot: str = "panda_wristcam"             # embodiment (a key of ROBOTS)
    image_size: tuple[int, int] = (128, 128)  # (height, width) of both cameras
    tuned: bool = True                        # hide heavy, near-invisible meshes from the cameras
    render_backend: str = "auto"              # "auto": the GPU when torch sees CUDA, else the CPU (lavapipe)

    def __post_init__(self) -> None:
        if self.robot not in ROBOTS:
            raise ValueError(
                f"robot '{self.robot}' is not wired for ManiSkill; choose one of {sorted(ROBOTS)} (WidowX needs "
                f"downloaded models: see docs/simulation.md)"
            )
        height, width = self.image_size
        if not (8 <= height <= 2048 and 8 <= width <= 2048):
            raise ValueError(f"image_size must be within 8..2048 pixels, got {self.image_size}")
        if self.render_backend not in ("auto", "cpu", "gpu"):
            raise ValueError(f"render_backend must be auto, cpu or gpu, got {self.render_backend!r}")


def _np(tensor) -> np.ndarray:
    """First (only) env of a batched ManiSkill tensor as float64 numpy."""
    return tensor[0].detach().cpu().numpy().astype(np.float64)


def _xyzw(quat_wxyz: np.ndarray) -> np.ndarray:
    return np.asarray(quat_wxyz, dtype=np.float64)[[1, 2, 3, 0]]


class ManiSkillEnv(ManipulationEnv):
    """One ManiSkill 3 task with shoulder + wrist cameras, seeded resets and privileged progress."""

    suite = SUITE

    def __init__(self, spec, config: ManiSkillConfig, seed: Optional[int] = None) -> None:
        try:
            import gymnasium as gym
            import mani_skill.envs  # noqa: F401  (registers the envs)
            import torch
        except ImportError as error:
            raise ImportError(f"ManiSkill is not importable ({error}): {CONFIG_HINT}") from error
        missing = missing_assets(config.env_id, config.robot)
        if missing:
            commands = "; ".join(f"python -m mani_skill.utils.download_asset {group}" for group in missing)
            raise ManiSkillAssetsMissing(
                f"ManiSkill {config.env_id} with robot {config.robot} needs downloaded assets that are not on this "
                f"machine ({', '.join(missing)}), and nothing is downloaded at run time. On a machine with network "
                f"access run `{commands}`, then copy ~/.maniskill here (or point MS_ASSET_DIR at a copy). "
                f"Tasks that need no download: PickCube-v1, PushCube-v1 (robots panda_wristcam, fetch)."
            )
        self.spec = spec
        self.config = config
        self.task_name = spec.name
        self.instruction = spec.instruction
        self.max_episode_steps = spec.max_episode_steps
        self.options = dict(spec.options)
        self.rig = ROBOTS[config.robot]
        self.camera_names = (spec.cameras[0].name, spec.cameras[1].name)
        backend = config.render_backend
        if backend == "auto":
            backend = "gpu" if torch.cuda.is_available() else "cpu"
        height, width = config.image_size
        try:
            self._env = gym.make(
                config.env_id, robot_uids=config.robot, obs_mode="rgb", control_mode="pd_ee_delta_pose",
                sensor_configs=dict(width=width, height=height), num_envs=1, sim_backend="cpu",
                render_backend=backend,
            ).unwrapped  # no TimeLimit: the contract truncates at max_episode_steps itself
        except RuntimeError as error:
            if "rendering device" in str(error) or "vulkan" in str(error).lower():
                raise RuntimeError(f"ManiSkill found no working Vulkan device ({error}): {CONFIG_HINT}") from error
            raise
        arm = self._env.agent.controller.controllers["arm"].config
        # Inverse of ManiSkill 3.0.1's PDEEPoseController._clip_and_scale_action (see module docstring).
        self._pos_limit = float(np.max(np.abs(arm.pos_upper)))
        self._rot_factor = float(np.max(arm.rot_lower)) if np.ndim(arm.rot_lower) else float(arm.rot_lower)
        self.action_scale = ActionScale(translation=self._pos_limit, rotation=abs(self._rot_factor))
        self._action_mapping = self._env.agent.controller.action_mapping
        self._action_dim = int(self._env.single_action_space.shape[0])
        self._next_seed = seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        self._steps = 0
        self._obs: dict = {}
        self._info: dict = {}
        self._progress = make_progress(self.options.get("progress", "pick_place"), self)
        self._closed = False

    # ------------------------------------------------------------------ contract
    def reset(self, seed: Optional[int] = None) -> tuple[Observation, dict]:
        """Start an episode; a given seed fixes the object/goal layout (and so the first observation)."""
        if seed is None:
            seed, self._next_seed = self._next_seed, self._next_seed + 1
        self._obs, self._info = self._env.reset(seed=int(seed))
        self._prepare_visuals()
        # Re-render: visibility changes apply from the next picture, and reset() already took one.
        self._obs = self._env.get_obs(self._info)
        self._steps = 0
        self._progress.reset()
        return self._observation(), {"instruction": self.instruction, "seed": int(seed)}

    def step(self, action: np.ndarray) -> tuple[Observation, float, bool, bool, dict]:
        """Apply a normalised 7-D action (EE delta + gripper); reward is always 0."""
        translation, rotation, gripper = self.action_scale.to_physical(validate_action(action))
        raw = np.zeros(self._action_dim, dtype=np.float32)
        start, _ = self._action_mapping["arm"]
        raw[start:start + 3] = np.clip(translation / self._pos_limit, -1.0, 1.0)
        raw[start + 3:start + 6] = Rotation.from_rotvec(rotation).as_euler("XYZ") / self._rot_factor
        raw[self._action_mapping["gripper"][0]] = gripper   # same sign convention: -1 closes, +1 opens
        self._obs, _, _, _, self._info = self._env.step(raw)
        self._steps += 1
        truncated, info = step_status(self.task_name, self._steps, self.max_episode_steps, _np(self._env.agent.robot.get_qpos()))
        return self._observation(), 0.0, False, truncated, info

    def true_success(self) -> bool:
        """PRIVILEGED: ManiSkill's own success flag (task `evaluate()`) for the current state."""
        return bool(self._info["success"][0]) if "success" in self._info else False

    def privileged_progress(self) -> float:
        """PRIVILEGED: staged progress in [0, 100] (see `make_progress`)."""
        return 100.0 if self.true_success() else self._progress()

    def close(self) -> None:
        """Free the SAPIEN scene and renderer (idempotent)."""
        if not self._closed:
            self._closed = True
            self._env.close()

    # ------------------------------------------------------------------ extras
    @property
    def raw(self):
        """The underlying ManiSkill BaseEnv (privileged; for experts and tests)."""
        return self._env

    def to_base(self, pose) -> tuple[np.ndarray, np.ndarray]:
        """A ManiSkill world pose as (position, quaternion xyzw) in the robot base frame."""
        relative = self._env.agent.robot.pose.inv() * pose
        return _np(relative.p), _xyzw(_np(relative.q))

    def privileged_state(self) -> dict[str, Any]:
        """PRIVILEGED: TCP, task object and goal poses in the robot base frame, and whether the object is grasped."""
        state: dict[str, Any] = {}
        state["tcp_pos"], state["tcp_quat"] = self.to_base(self._env.agent.tcp.pose)
        if "object" in self.options:
            obj = getattr(self._env, self.options["object"])
            state["object_pos"], state["object_quat"] = self.to_base(obj.pose)
            # ManiSkill's grasp test reads the last physics step's contacts, which after reset() still describe the
            # previous episode: only believe it with the object between the fingers.
            near = np.linalg.norm(state["tcp_pos"] - state["object_pos"]) < GRASP_RADIUS
            state["grasped"] = bool(near and self._env.agent.is_grasping(obj)[0])
        if "goal" in self.options:
            state["goal_pos"], _ = self.to_base(getattr(self._env, self.options["goal"]).pose)
        return state

    def proprio(self) -> Proprio:
        """Proprioception in the robot base frame: TCP pose, gripper opening, all active joints."""
        position, quaternion = self.to_base(self._env.agent.tcp.pose)
        robot = self._env.agent.robot
        qpos = _np(robot.get_qpos())
        limits = _np(robot.get_qlimits())
        names = tuple(joint.name for joint in robot.active_joints)
        fingers = [names.index(name) for name in self.rig.gripper_joints]
        span = np.maximum(limits[fingers, 1] - limits[fingers, 0], 1e-9)
        opening = float(np.clip(np.mean((qpos[fingers] - limits[fingers, 0]) / span), 0.0, 1.0))
        return Proprio(ee_position=position, ee_quaternion=quaternion, gripper_opening=opening,
                       joint_positions=qpos, joint_names=names)

    def _observation(self) -> Observation:
        sensors = self._obs["sensor_data"]
        # SAPIEN cameras already deliver row 0 = top of the picture.
        shoulder, wrist = (np.ascontiguousarray(sensors[name]["rgb"][0].cpu().numpy()[..., :3])
                           for name in self.camera_names)
        return Observation(shoulder=shoulder, wrist=wrist, proprio=self.proprio())

    def _prepare_visuals(self) -> None:
        import sapien

        if self.options.get("show_goal") and "goal" in self.options:
            goal = getattr(self._env, self.options["goal"])
            if goal in self._env._hidden_objects:
                self._env._hidden_objects.remove(goal)
            goal.show_visual()
        if self.config.tuned:
            for entity in self._env.scene.sub_scenes[0].entities:
                if entity.name in self.rig.heavy_visual_links:
                    body = entity.find_component_by_type(sapien.render.RenderBodyComponent)
                    if body is not None:
                        body.visibility = 0.0


# ---------------------------------------------------------------------- privileged progress
class _Progress:
    """Staged progress below 100 (100 is reserved for true success); distances are normalised per episode."""

    def __init__(self, env: ManiSkillEnv) -> None:
        self.env = env
        self.start: dict[str, float] = {}

    def reset(self) -> None:
        """Record the episode's starting distances."""
        self.start = self.distances()

    def distances(self, state: Optional[dict] = None) -> dict[str, float]:
        """Task distances of the current state (from `state` = env.privileged_state() when given)."""
        raise NotImplementedError

    def __call__(self) -> float:
        raise NotImplementedError

    def _closer(self, key: str, now: dict[str, float], target: float = 0.0) -> float:
        # Fraction of the way from the episode's starting distance to `target` (0: no closer, 1: there).
        span = max(self.start[key] - target, 1e-6)
        return float(np.clip((self.start[key] - now[key]) / span, 0.0, 1.0))


class PickPlaceProgress(_Progress):
    """95 * (0.3 reach + 0.2 grasped + 0.5 grasped * carried): reach = TCP-to-object distance closed, carried =
    object-to-goal distance closed down to the task's goal threshold."""

    def distances(self, state: Optional[dict] = None) -> dict[str, float]:
        state = state or self.env.privileged_state()
        return {"reach": float(np.linalg.norm(state["tcp_pos"] - state["object_pos"])),
                "carry": float(np.linalg.norm(state["object_pos"] - state["goal_pos"]))}

    def __call__(self) -> float:
        state = self.env.privileged_state()
        now, grasped = self.distances(state), float(state["grasped"])
        carried = self._closer("carry", now, target=float(getattr(self.env.raw, "goal_thresh", 0.025)))
        return 95.0 * (0.3 * self._closer("reach", now) + 0.2 * grasped + 0.5 * grasped * carried)


class PushProgress(_Progress):
    """95 * (0.3 reach + 0.7 pushed): reach = TCP-to-behind-the-object distance closed (behind = opposite the goal),
    pushed = object-to-goal distance (x-y) closed down to the goal radius."""

    def distances(self, state: Optional[dict] = None) -> dict[str, float]:
        state = state or self.env.privileged_state()
        to_goal = state["goal_pos"][:2] - state["object_pos"][:2]
        direction = to_goal / max(np.linalg.norm(to_goal), 1e-6)
        behind = state["object_pos"].copy()
        behind[:2] -= direction * (float(getattr(self.env.raw, "cube_half_size", 0.02)) + 0.02)
        return {"reach": float(np.linalg.norm(state["tcp_pos"] - behind)), "push": float(np.linalg.norm(to_goal))}

    def __call__(self) -> float:
        now = self.distances()
        pushed = self._closer("push", now, target=float(getattr(self.env.raw, "goal_radius", 0.1)))
        return 95.0 * (0.3 * self._closer("reach", now) + 0.7 * pushed)


class ArticulationProgress(_Progress):
    """95 * fraction of the handle joint's way from its lower limit to the task's target opening."""

    def distances(self, state: Optional[dict] = None) -> dict[str, float]:
        return {}

    def __call__(self) -> float:
        raw = self.env.raw
        qpos = float(_np(raw.handle_link.joint.qpos).reshape(-1)[0])
        lower = float(_np(raw.handle_link.joint.limits).reshape(-1)[0])
        target = float(_np(raw.target_qpos).reshape(-1)[0])
        return 95.0 * float(np.clip((qpos - lower) / max(target - lower, 1e-6), 0.0, 1.0))


PROGRESS = {"pick_place": PickPlaceProgress, "push": PushProgress, "articulation": ArticulationProgress}


def make_progress(family: str, env: ManiSkillEnv) -> _Progress:
    """The privileged progress function of a family in PROGRESS."""
    if family not in PROGRESS:
        raise ValueError(f"unknown ManiSkill progress family '{family}'; choose one of {sorted(PROGRESS)}")
    return PROGRESS[family](env)


def make(task: str, *, image_size=(128, 128), seed: Optional[int] = None, tuned: bool = True,
         robot: Optional[str] = None, camera_preset: Optional[str] = None, render_backend: str = "auto",
         max_episode_steps: Optional[int] = None) -> ManiSkillEnv:
    """Build ManiSkill `task` (a key of config/tasks/maniskill.yaml) for `robot` (default: the task's first)."""
    from sole_r1_sim.registry import task_spec

    if task not in TASKS:
        raise KeyError(f"unknown ManiSkill task '{task}'; known tasks: {TASKS} (config/tasks/maniskill.yaml)")
    options = task_spec(SUITE, task).options
    robots = list(options.get("robots", ["panda_wristcam"]))
    robot = robot or robots[0]
    if robot not in robots:
        raise ValueError(f"ManiSkill {task} is wired for robots {robots}, not '{robot}'")
    preset = camera_preset or options.get("camera_presets", {}).get(robot, robot)
    spec = task_spec(SUITE, task, camera_preset=preset)
    if max_episode_steps is not None:
        spec = dataclasses.replace(spec, max_episode_steps=int(max_episode_steps))
    config = ManiSkillConfig(env_id=task, robot=robot, image_size=tuple(image_size), tuned=tuned,
                             render_backend=render_backend)
    return ManiSkillEnv(spec, config, seed=seed)
