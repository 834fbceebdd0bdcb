"""sole_r1_sim: simulation suites behind one env contract (no rclpy).

    from sole_r1_sim import make_env, list_tasks
    env = make_env("metaworld", "reach-v3", image_size=(128, 128), seed=0)
    obs, info = env.reset()
"""
import os

# Headless rendering by default; set here, before any submodule imports mujoco, so no other module has to.
os.environ.setdefault("MUJOCO_GL", "egl")

from sole_r1_sim.contract import ACTION_DIM, ActionScale, ManipulationEnv, Observation, Proprio, validate_action  # noqa: E402,E501
from sole_r1_sim.registry import list_tasks, make_env  # noqa: E402
from sole_r1_sim.task import TaskSpec  # noqa: E402

__all__ = [
    "ACTION_DIM",
    "ActionScale",
    "ManipulationEnv",
    "Observation",
    "Proprio",
    "TaskSpec",
    "list_tasks",
    "make_env",
    "validate_action",
]
