"""LIBERO checks, run by tests/sim/test_libero.py with .venv-libero/bin/python (LIBERO lives only in that venv).

usage: libero_checks.py CHECK [CHECK ...]   -> prints one line `RESULT <json>` with what each check measured;
the assertions live in test_libero.py. Checks: contract, orientation, consistency, expert, idle.
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

TASK = "libero_object/pick_up_the_alphabet_soup_and_place_it_in_the_basket"
SIZE = (128, 128)


def _spearman(values) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(np.arange(len(values)), np.asarray(values)).correlation)


def check_contract() -> dict:
    """Shapes, dtypes, step flags, instructions vs LIBERO's own language, bad-action errors."""
    import yaml
    from libero.libero import benchmark

    from sole_r1_sim import libero_env as suite
    from sole_r1_sim.registry import config_dir

    with open(config_dir() / "tasks" / "libero.yaml", encoding="utf-8") as handle:
        tasks = yaml.safe_load(handle)["tasks"]
    benchmarks = benchmark.get_benchmark_dict()
    mismatched = []
    for name, entry in tasks.items():
        task = benchmarks[entry["options"]["benchmark"]]().get_task(entry["options"]["index"])
        if task.language != entry["instruction"] or name.split("/", 1)[1] != task.name:
            mismatched.append(name)
    out: dict = {"n_tasks": len(suite.TASKS), "mismatched_instructions": mismatched}
    with suite.make(TASK, image_size=SIZE, seed=0) as env:
        obs, info = env.reset(seed=0)
        out["instruction"], out["info_instruction"] = env.instruction, info["instruction"]
        out["images"] = {role: [list(getattr(obs, role).shape), str(getattr(obs, role).dtype)]
                         for role in ("shoulder", "wrist")}
        out["image_std"] = [float(obs.shoulder.std()), float(obs.wrist.std())]
        out["unique_colours"] = [int(len(np.unique(img.reshape(-1, 3), axis=0))) for img in (obs.shoulder, obs.wrist)]
        out["camera_difference"] = float(np.abs(obs.shoulder.astype(int) - obs.wrist.astype(int)).mean())
        vector = obs.proprio.as_vector()
        out["proprio"] = [list(vector.shape), str(vector.dtype), float(np.linalg.norm(obs.proprio.ee_quaternion)),
                          float(obs.proprio.gripper_opening), len(obs.proprio.joint_positions)]
        step = env.step(np.zeros(7))
        out["step"] = [float(step[1]), bool(step[2]), bool(step[3]), int(step[4]["step"])]
        errors = []
        for bad in (np.full(7, np.nan), np.zeros(5)):
            try:
                env.step(bad)
                errors.append("")
            except ValueError as error:
                errors.append(str(error))
        out["bad_action_errors"] = errors
    return out


def _reference_images(env) -> dict:
    """The same two cameras rendered by mujoco.Renderer, whose images are top-left origin by construction."""
    import mujoco

    model, data = env._env.sim.model._model, env._env.sim.data._data
    option = mujoco.MjvOption()
    option.geomgroup[0] = 0     # robosuite hides collision geoms (group 0)
    images = {}
    with mujoco.Renderer(model, SIZE[0], SIZE[1]) as renderer:
        for role, camera in zip(("shoulder", "wrist"), env.camera_names):
            renderer.update_scene(data, camera=camera, scene_option=option)
            images[role] = renderer.render().copy()
    return images


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(float).reshape(-1), b.astype(float).reshape(-1))[0, 1])


def check_orientation() -> dict:
    """Our images vs an independent top-left render: correlation as delivered and vertically flipped."""
    from sole_r1_sim import libero_env as suite

    out = {}
    with suite.make(TASK, image_size=SIZE, seed=0, tuned=True) as env:
        obs, _ = env.reset(seed=0)
        reference = _reference_images(env)
        for role in ("shoulder", "wrist"):
            ours = getattr(obs, role)
            out[role] = {"as_is": _correlation(ours, reference[role]),
                         "flipped": _correlation(ours[::-1], reference[role])}
    return out


def check_consistency() -> dict:
    """LIBERO's own renderer (tuned=False) and the tuned one agree on the same initial state."""
    from sole_r1_sim import libero_env as suite

    images = {}
    for tuned in (False, True):
        with suite.make(TASK, image_size=SIZE, seed=0, tuned=tuned) as env:
            obs, _ = env.reset(seed=3)
            images[tuned] = obs
    return {role: {"mean_abs_difference": float(np.abs(getattr(images[True], role).astype(int)
                                                        - getattr(images[False], role).astype(int)).mean()),
                   "correlation": _correlation(getattr(images[True], role), getattr(images[False], role))}
            for role in ("shoulder", "wrist")}


def check_expert() -> dict:
    """The scripted pick-and-place expert on the alphabet-soup task: success and progress over time."""
    from sole_r1_sim import libero_env as suite
    from sole_r1_sim.experts_libero import PickPlaceExpert

    expert = PickPlaceExpert()
    with suite.make(TASK, image_size=(64, 64), seed=0) as env:
        obs, _ = env.reset(seed=0)
        expert.reset()
        progress = [env.privileged_progress()]
        for _ in range(env.max_episode_steps):
            obs, *_ = env.step(expert.act(env, obs))
            progress.append(env.privileged_progress())
            if env.true_success():
                break
        return {"success": env.true_success(), "steps": len(progress) - 1, "progress": progress,
                "spearman": _spearman(progress)}


def check_idle() -> dict:
    """Doing nothing: progress stays low and the task is not solved."""
    from sole_r1_sim import libero_env as suite

    with suite.make(TASK, image_size=(64, 64), seed=0) as env:
        env.reset(seed=0)
        progress = []
        for _ in range(30):
            env.step(np.zeros(7))
            progress.append(env.privileged_progress())
        return {"max_progress": max(progress), "success": env.true_success()}


CHECKS = {"contract": check_contract, "orientation": check_orientation, "consistency": check_consistency,
          "expert": check_expert, "idle": check_idle}


def main(names: list[str]) -> int:
    """Run the named checks; print `RESULT <json>`."""
    unknown = [name for name in names if name not in CHECKS]
    if unknown or not names:
        print(f"usage: libero_checks.py CHECK...; unknown {unknown}; known {sorted(CHECKS)}", file=sys.stderr)
        return 2
    results = {name: CHECKS[name]() for name in names}
    print("RESULT " + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
