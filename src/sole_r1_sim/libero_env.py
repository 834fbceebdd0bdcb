"""LIBERO tasks (libero_object / spatial / goal / 10) behind the `ManipulationEnv` contract.

LIBERO needs robosuite 1.4 and its own MuJoCo/NumPy, so it lives in a separate venv (`make setup-libero` creates
.venv-libero); its bridge node runs there and joins the ROS graph. This module imports anywhere (the registry lists
`TASKS` from config/tasks/libero.yaml), but building an env imports LIBERO and says what to do when it is missing.

Reset: `seed` picks the benchmark's fixed initial state number `seed % 50` (the layouts LIBERO evaluations use),
then the arm holds still for `settle_steps` control steps while objects come to rest (as LIBERO evaluations do).
Actions: robosuite's OSC_POSE controller, which LIBERO uses; one unit = 0.05 m and 0.5 rad (axis-angle, base axes)
of commanded EE motion per 20 Hz step; the gripper sign is flipped (robosuite closes on +1, the contract on -1).
Rendering: `tuned=False` is LIBERO's own `OffScreenRenderEnv` (robosuite renders both cameras, rebuilds the
simulation at every reset). `tuned=True` keeps one simulation (`hard_reset=False`) and renders the same cameras with
`sole_r1_sim.render.CameraRig` (shadows, reflections and multisampling off, off-screen geoms culled). Both return
images with a top-left origin (MuJoCo reads back bottom-up; we flip).
Privileged progress (`LiberoProgress`): the mean over the task's BDDL goal predicates of a score in [0, 1], times
95 (100 only on true success). A satisfied predicate scores 1. Otherwise: `on`/`in` (object, target) score
0.25 reach + 0.15 held + 0.6 carried, where reach = fraction of the episode's initial gripper-to-object distance
closed, carried = fraction of the initial object-to-target x-y distance closed, held = max(grasped, carried);
`open`/`close` score the fraction of the way of the articulated joint from the middle of its closed range to the
nearest end of its open range (or back); `turnon`/`turnoff` likewise with the turn-on range; any other predicate
scores 0 until it holds.
"""
from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import weakref
from typing import Optional

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from sole_r1_sim.contract import (ActionScale, ManipulationEnv, Observation, Proprio, step_status,
                                  validate_action)

LOG = logging.getLogger(__name__)
SUITE = "libero"
SETUP_HINT = ("LIBERO is installed only in its own venv: run `make setup-libero`, then use "
              ".venv-libero/bin/python (e.g. for the LIBERO bridge node)")


_LIVE_ENVS: "weakref.WeakSet[LiberoEnv]" = weakref.WeakSet()


def _close_live_envs() -> None:
    # Envs still open at exit would free their GL contexts after EGL is torn down, which prints EGLError noise.
    for env in list(_LIVE_ENVS):
        env.close()


def _register_exit_hook() -> None:
    # atexit is last-in first-out, and robosuite and MuJoCo each register an eglTerminate when they make their first
    # GL context: moving our hook to the end after every new env makes it run before any of those.
    atexit.unregister(_close_live_envs)
    atexit.register(_close_live_envs)


def _task_names() -> list[str]:
    from sole_r1_config import config_dir

    with open(config_dir() / "tasks" / f"{SUITE}.yaml", encoding="utf-8") as handle:
        return list((yaml.safe_load(handle) or {}).get("tasks", {}))


TASKS: list[str] = _task_names()


def import_libero():
    """Import LIBERO (headless MuJoCo); raise ImportError pointing at `make setup-libero` when it is missing."""
    try:
        from libero.libero import benchmark, get_libero_path
        from libero.libero.envs.env_wrapper import ControlEnv, OffScreenRenderEnv
    except ImportError as error:
        raise ImportError(f"cannot import LIBERO ({error}): {SETUP_HINT}") from error
    return benchmark, get_libero_path, ControlEnv, OffScreenRenderEnv


@dataclasses.dataclass(frozen=True)
class LiberoConfig:
    """How one LIBERO task is built (instruction and cameras come from config/tasks/libero.yaml)."""

    benchmark: str                            # libero_object | libero_spatial | libero_goal | libero_10
    index: int                                # task number within the benchmark
    image_size: tuple[int, int] = (128, 128)  # (height, width) of both cameras
    tuned: bool = True                        # one persistent sim + the project's tuned renderer
    settle_steps: int = 10                    # still steps after each reset

    def __post_init__(self) -> None:
        if not self.benchmark.startswith("libero_"):
            raise ValueError(f"benchmark must be a LIBERO benchmark name like 'libero_object', got {self.benchmark!r}")
        if self.index < 0:
            raise ValueError(f"task index must be >= 0, got {self.index}")
        height, width = self.image_size
        if not (8 <= height <= 2048 and 8 <= width <= 2048):
            raise ValueError(f"image_size must be within 8..2048 pixels, got {self.image_size}")
        if self.settle_steps < 0:
            raise ValueError(f"settle_steps must be >= 0, got {self.settle_steps}")


class LiberoEnv(ManipulationEnv):
    """One LIBERO task: agentview (shoulder) + eye-in-hand (wrist) cameras, fixed initial states, true success."""

    suite = SUITE
    action_scale = ActionScale(translation=0.05, rotation=0.5)   # robosuite OSC_POSE output limits

    def __init__(self, spec, config: LiberoConfig, seed: Optional[int] = None) -> None:
        benchmark, get_libero_path, control_env, offscreen_env = import_libero()
        suite = benchmark.get_benchmark_dict()[config.benchmark]()
        task = suite.get_task(config.index)
        self.spec = spec
        self.config = config
        self.task_name = spec.name
        self.instruction = task.language
        if spec.instruction != task.language:
            LOG.warning("%s: config instruction %r differs from LIBERO's %r; using LIBERO's",
                        spec.name, spec.instruction, task.language)
        self.max_episode_steps = spec.max_episode_steps
        self._init_states = np.asarray(suite.get_task_init_states(config.index))
        bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
        height, width = config.image_size
        self.camera_names = (spec.cameras[0].name, spec.cameras[1].name)
        # ignore_done: robosuite would raise after its own 1000-step horizon; the contract truncates instead.
        common = dict(bddl_file_name=bddl, camera_heights=height, camera_widths=width, ignore_done=True)
        self._rig = None
        if config.tuned:
            from sole_r1_sim.render import CameraRig, RenderSettings

            self._env = control_env(**common, has_offscreen_renderer=False, use_camera_obs=False, hard_reset=False)
            self._env.reset()
            # robosuite draws visual geoms (group 1) and hides collision geoms (group 0).
            settings = RenderSettings(height=height, width=width, tuned=True, geom_groups=(1, 2))
            self._rig = CameraRig(self._env.sim.model._model, spec.cameras, settings)
        else:
            self._env = offscreen_env(**common, camera_names=list(self.camera_names))
        self._next_seed = seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        self._raw_obs: dict = {}
        self._steps = 0
        self._progress = LiberoProgress(self)
        self._closed = False
        _LIVE_ENVS.add(self)
        _register_exit_hook()

    @property
    def raw(self):
        """The LIBERO problem env (a robosuite env; privileged, for experts and tests)."""
        return self._env.env

    # ------------------------------------------------------------------ contract
    def reset(self, seed: Optional[int] = None) -> tuple[Observation, dict]:
        """Start an episode from LIBERO's initial state number `seed % 50`, then let objects settle."""
        if seed is None:
            seed, self._next_seed = self._next_seed, self._next_seed + 1
        # Resets robosuite's step counter and controller goals (rebuilds the simulation only when not tuned).
        self._env.reset()
        state_index = int(seed) % len(self._init_states)
        self._raw_obs = self._env.set_init_state(self._init_states[state_index])
        still = np.zeros(7)
        still[6] = -1.0   # robosuite: -1 opens the gripper
        for _ in range(self.config.settle_steps):
            self._raw_obs, _, _, _ = self._env.step(still)
        self._steps = 0
        self._progress.reset()
        info = {"instruction": self.instruction, "seed": int(seed), "init_state": state_index}
        return self._observation(), info

    def step(self, action: np.ndarray) -> tuple[Observation, float, bool, bool, dict]:
        """Apply a normalised 7-D action through OSC_POSE; reward is always 0."""
        translation, rotation, gripper = self.action_scale.to_physical(validate_action(action))
        raw = np.concatenate([translation / 0.05, rotation / 0.5, [-gripper]])
        self._raw_obs, _, _, _ = self._env.step(raw)
        self._steps += 1
        truncated, info = step_status(self.task_name, self._steps, self.max_episode_steps, self._env.sim.data.qpos)
        return self._observation(), 0.0, False, truncated, info

    def true_success(self) -> bool:
        """PRIVILEGED: LIBERO's success = all BDDL goal predicates hold."""
        return bool(self._env.check_success())

    def privileged_progress(self) -> float:
        """PRIVILEGED: progress in [0, 100] from the goal predicates (formula in the module docstring)."""
        return 100.0 if self.true_success() else self._progress()

    def close(self) -> None:
        """Free the renderer and the simulation (idempotent); EGL complains at exit if this is skipped."""
        if self._closed:
            return
        self._closed = True
        _LIVE_ENVS.discard(self)
        if self._rig is not None:
            self._rig.close()
        self._env.close()

    # ------------------------------------------------------------------ extras
    def _observation(self) -> Observation:
        if self._rig is not None:
            images = self._rig.render(self._env.sim.data._data)
            shoulder, wrist = images["shoulder"], images["wrist"]
        else:
            # robosuite returns MuJoCo's bottom-up read-back.
            shoulder, wrist = (np.ascontiguousarray(self._raw_obs[f"{name}_image"][::-1]) for name in self.camera_names)
        return Observation(shoulder=shoulder, wrist=wrist, proprio=self.proprio())

    def eef_position(self) -> np.ndarray:
        """PRIVILEGED: gripper site position in the world frame."""
        robot = self.raw.robots[0]
        return np.array(self._env.sim.data.site_xpos[robot.eef_site_id], dtype=np.float64)

    def proprio(self) -> Proprio:
        """Proprioception in the robot base frame: gripper-site pose, finger opening, arm + finger joints."""
        sim, robot = self._env.sim, self.raw.robots[0]
        base_id = sim.model.body_name2id(robot.robot_model.root_body)
        base_pos, base_rot = sim.data.body_xpos[base_id], sim.data.body_xmat[base_id].reshape(3, 3)
        eef_rot = sim.data.site_xmat[robot.eef_site_id].reshape(3, 3)
        quaternion = Rotation.from_matrix(base_rot.T @ eef_rot).as_quat()   # x, y, z, w
        indexes = list(robot._ref_joint_pos_indexes) + list(robot._ref_gripper_joint_pos_indexes)
        qpos = np.array(sim.data.qpos[indexes], dtype=np.float64)
        fingers = qpos[-2:]
        # Panda fingers: joint1 in [0, 0.04], joint2 in [-0.04, 0]; their difference is the gap.
        opening = float(np.clip((fingers[0] - fingers[1]) / 0.08, 0.0, 1.0))
        names = tuple(robot.robot_joints) + tuple(robot.gripper.joints)
        return Proprio(ee_position=base_rot.T @ (self.eef_position() - base_pos), ee_quaternion=quaternion,
                       gripper_opening=opening, joint_positions=qpos, joint_names=names)

    def to_base_vector(self, vector: np.ndarray) -> np.ndarray:
        """A world-frame direction (e.g. a position offset) expressed along the robot base axes."""
        sim = self._env.sim
        base_id = sim.model.body_name2id(self.raw.robots[0].robot_model.root_body)
        return sim.data.body_xmat[base_id].reshape(3, 3).T @ np.asarray(vector, dtype=np.float64)

    def object_position(self, name: str) -> np.ndarray:
        """PRIVILEGED: world position of a BDDL object, fixture or region by name."""
        return np.array(self.raw.object_states_dict[name].get_geom_state()["pos"], dtype=np.float64)

    def object_yaw(self, name: str) -> float:
        """PRIVILEGED: heading (rad, about world z) of a BDDL object's x axis."""
        data = self._env.sim.data
        if name in self.raw.obj_body_id:
            matrix = data.body_xmat[self.raw.obj_body_id[name]].reshape(3, 3)
        else:   # a region: a site
            matrix = data.get_site_xmat(name).reshape(3, 3)
        return float(np.arctan2(matrix[1, 0], matrix[0, 0]))

    def eef_yaw(self) -> float:
        """PRIVILEGED: heading (rad, about world z) of the gripper site's x axis."""
        matrix = self._env.sim.data.site_xmat[self.raw.robots[0].eef_site_id].reshape(3, 3)
        return float(np.arctan2(matrix[1, 0], matrix[0, 0]))

    def is_grasped(self, name: str) -> bool:
        """PRIVILEGED: robosuite's grasp test (both fingers touch the object)."""
        raw = self.raw
        return bool(raw._check_grasp(raw.robots[0].gripper, raw.get_object(name).contact_geoms))

    def goal_predicates(self) -> list[list[str]]:
        """The task's BDDL goal, e.g. [['in', 'alphabet_soup_1', 'basket_1_contain_region']]."""
        return [list(p) for p in self.raw.parsed_problem["goal_state"]]


class LiberoProgress:
    """Privileged progress from the BDDL goal predicates (formula in the module docstring)."""

    def __init__(self, env: LiberoEnv) -> None:
        self.env = env
        self.start: dict[tuple, dict[str, float]] = {}
        self.fallbacks = 0   # predicates scored 0/1 because their continuous score failed

    def reset(self) -> None:
        """Record the episode's initial distances for every goal predicate."""
        self.start = {tuple(p): self._distances(p) for p in self.env.goal_predicates()}

    def __call__(self) -> float:
        scores = [self._safe_score(p) for p in self.env.goal_predicates()]
        return 95.0 * float(np.mean(scores)) if scores else 0.0

    def _safe_score(self, predicate: list[str]) -> float:
        # Progress is logged inside control loops: an unexpected object layout must not stop them.
        try:
            return self.score(predicate)
        except Exception as error:  # noqa: BLE001
            self.fallbacks += 1
            if self.fallbacks == 1:
                LOG.warning("%s: no continuous progress for %s (%s); scoring it 0 until it holds",
                            self.env.task_name, predicate, error)
            return float(bool(self.env.raw._eval_predicate(predicate)))

    def score(self, predicate: list[str]) -> float:
        """Score in [0, 1] of one goal predicate."""
        if self.env.raw._eval_predicate(predicate):
            return 1.0
        name = predicate[0].lower()
        if name in ("on", "in") and len(predicate) == 3:
            now, start = self._distances(predicate), self.start.get(tuple(predicate))
            if not start:
                return 0.0
            reach = _closed_fraction(start["reach"], now["reach"])
            carried = _closed_fraction(start["carry"], now["carry"])
            # Letting go over the target keeps the grasp credit, so releasing does not read as a setback.
            held = max(float(self.env.is_grasped(predicate[1])), carried)
            return 0.25 * reach + 0.15 * held + 0.6 * carried
        if name in ("open", "close", "turnon", "turnoff") and len(predicate) == 2:
            fraction = self._joint_fraction(predicate[1], "turnon" if name.startswith("turn") else "open")
            return fraction if name in ("open", "turnon") else 1.0 - fraction
        return 0.0

    def _distances(self, predicate: list[str]) -> dict[str, float]:
        if predicate[0].lower() not in ("on", "in") or len(predicate) != 3:
            return {}
        obj, target = self.env.object_position(predicate[1]), self.env.object_position(predicate[2])
        return {"reach": float(np.linalg.norm(self.env.eef_position() - obj)),
                "carry": float(np.linalg.norm((target - obj)[:2]))}

    def _joint_fraction(self, name: str, kind: str) -> float:
        # Fraction of the way from the middle of the "off" range to the nearest end of the "on" range.
        raw = self.env.raw
        state = raw.object_states_dict[name]
        owner = raw.get_object(getattr(state, "parent_name", name))
        ranges = owner.object_properties["articulation"]
        on_key, off_key = ("default_open_ranges", "default_close_ranges") if kind == "open" else \
            ("default_turnon_ranges", "default_turnoff_ranges")
        if on_key not in ranges or off_key not in ranges:
            return 0.0
        off = float(np.mean(ranges[off_key]))
        on = min(ranges[on_key], key=lambda value: abs(value - off))
        if state.object_state_type == "site":   # a region of an articulated fixture, e.g. a drawer
            joints = raw.object_sites_dict[name].joints
            qpos = [raw.sim.data.qpos[raw.sim.model.get_joint_qpos_addr(joint)] for joint in joints]
        else:
            qpos = state.get_joint_state()
        if not qpos:
            return 0.0
        return float(np.clip((float(qpos[0]) - off) / (on - off), 0.0, 1.0))


def _closed_fraction(start: float, now: float) -> float:
    return float(np.clip((start - now) / max(start, 1e-6), 0.0, 1.0))


def make(task: str, *, image_size=(128, 128), seed: Optional[int] = None, tuned: bool = True,
         camera_preset: Optional[str] = None, max_episode_steps: Optional[int] = None,
         settle_steps: int = 10) -> LiberoEnv:
    """Build LIBERO `task` ("<benchmark>/<task name>", a key of config/tasks/libero.yaml) in this (LIBERO) venv."""
    from sole_r1_sim.registry import task_spec

    if task not in TASKS:
        raise KeyError(f"unknown LIBERO task '{task}'; see config/tasks/libero.yaml for the {len(TASKS)} task names")
    spec = task_spec(SUITE, task, camera_preset=camera_preset)
    if max_episode_steps is not None:
        spec = dataclasses.replace(spec, max_episode_steps=int(max_episode_steps))
    config = LiberoConfig(benchmark=str(spec.options["benchmark"]), index=int(spec.options["index"]),
                          image_size=tuple(image_size), tuned=tuned, settle_steps=settle_steps)
    return LiberoEnv(spec, config, seed=seed)
