"""Task registry: `make_env(suite, task)` and `list_tasks(suite)`, backed by `config/tasks/<suite>.yaml`.

Meta-World and RoboSuite are built here; ManiSkill and LIBERO live in `sole_r1_sim.maniskill_env` /
`sole_r1_sim.libero_env`, imported only when asked for (each exposes `make(task, *, image_size, seed, tuned, **kw)` and
`TASKS`), so a missing optional suite never breaks the others.
The config directory is found by `sole_r1_config.config_dir()` ($SOLE_R1_CONFIG_DIR, the source checkout, or the
installed ROS package's share/sole_r1/config).
"""
from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any, Optional

import yaml

from sole_r1_config.paths import CONFIG_DIR_ENV, config_dir

from sole_r1_sim.contract import ManipulationEnv
from sole_r1_sim.render import CameraSpec
from sole_r1_sim.task import TaskSpec

BUILTIN_SUITES = ("metaworld", "robosuite")
EXTERNAL_SUITES = {"maniskill": "sole_r1_sim.maniskill_env", "libero": "sole_r1_sim.libero_env"}
_TASK_KEYS = {"instruction", "max_episode_steps", "camera_preset", "options"}


@functools.lru_cache(maxsize=None)
def _load_suite_yaml(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    if not isinstance(document.get("tasks"), dict) or not document["tasks"]:
        raise ValueError(f"{path}: expected a non-empty mapping under 'tasks'")
    return document


def _suite_document(suite: str) -> tuple[dict, Path]:
    path = config_dir() / "tasks" / f"{suite}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"task list for suite '{suite}' not found: {path} (set {CONFIG_DIR_ENV} to a config "
                                "directory containing tasks/<suite>.yaml)")
    return _load_suite_yaml(str(path)), path


def task_spec(suite: str, task: str, camera_preset: Optional[str] = None) -> TaskSpec:
    """Read one task's spec from config/tasks/<suite>.yaml; `camera_preset` overrides the task's preset."""
    document, path = _suite_document(suite)
    tasks = document["tasks"]
    if task not in tasks:
        raise KeyError(f"unknown {suite} task '{task}'; known tasks: {sorted(tasks)} (from {path})")
    entry = tasks[task] or {}
    unknown = set(entry) - _TASK_KEYS
    if unknown:
        raise ValueError(f"{path}: task '{task}' has unknown keys {sorted(unknown)}; allowed: {sorted(_TASK_KEYS)}")
    defaults = document.get("defaults", {})
    preset_name = camera_preset or entry.get("camera_preset") or defaults.get("camera_preset", "default")
    presets = document.get("camera_presets", {})
    if preset_name not in presets:
        raise KeyError(f"{path}: camera preset '{preset_name}' not defined; known presets: {sorted(presets)}")
    preset = presets[preset_name]
    cameras = (CameraSpec.from_dict("shoulder", preset["shoulder"]), CameraSpec.from_dict("wrist", preset["wrist"]))
    options = {**defaults.get("options", {}), **entry.get("options", {})}
    return TaskSpec(
        suite=suite,
        name=task,
        instruction=str(entry.get("instruction", "")),
        max_episode_steps=int(entry.get("max_episode_steps", defaults.get("max_episode_steps", 200))),
        cameras=cameras,
        camera_preset=preset_name,
        options=options,
    )


def _external_module(suite: str):
    module_name = EXTERNAL_SUITES[suite]
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(
            f"suite '{suite}' is not available: importing {module_name} failed ({error}). "
            f"See docs/simulation.md for its setup."
        ) from error


def list_tasks(suite: str) -> list[str]:
    """Names of the tasks of `suite` ("metaworld", "robosuite", "maniskill", "libero")."""
    if suite in BUILTIN_SUITES:
        return list(_suite_document(suite)[0]["tasks"])
    if suite in EXTERNAL_SUITES:
        return list(_external_module(suite).TASKS)
    raise ValueError(f"unknown suite '{suite}'; choose one of {list(BUILTIN_SUITES) + list(EXTERNAL_SUITES)}")


def make_env(
    suite: str,
    task: str,
    *,
    image_size: tuple[int, int] = (128, 128),
    seed: Optional[int] = None,
    tuned: bool = True,
    **suite_kwargs: Any,
) -> ManipulationEnv:
    """Build a `ManipulationEnv` for `task` of `suite`; image_size is (H, W); tuned=False keeps suite defaults."""
    if len(tuple(image_size)) != 2:
        raise ValueError(f"image_size must be (height, width), got {image_size!r}")
    image_size = (int(image_size[0]), int(image_size[1]))
    if suite == "metaworld":
        from sole_r1_sim.metaworld_env import MetaWorldEnv

        spec = task_spec(suite, task, suite_kwargs.pop("camera_preset", None))
        return MetaWorldEnv(spec, image_size=image_size, seed=seed, tuned=tuned, **suite_kwargs)
    if suite == "robosuite":
        from sole_r1_sim.robosuite_env import RoboSuiteEnv

        spec = task_spec(suite, task, suite_kwargs.pop("camera_preset", None))
        return RoboSuiteEnv(spec, image_size=image_size, seed=seed, tuned=tuned, **suite_kwargs)
    if suite in EXTERNAL_SUITES:
        return _external_module(suite).make(task, image_size=image_size, seed=seed, tuned=tuned, **suite_kwargs)
    raise ValueError(f"unknown suite '{suite}'; choose one of {list(BUILTIN_SUITES) + list(EXTERNAL_SUITES)}")
