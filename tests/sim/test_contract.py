"""Suite-independent behaviour: registry, config loading, render specs, progress formulas, expert variants."""
import sys
import types

import numpy as np
import pytest

from sole_r1_sim import ACTION_DIM, ManipulationEnv, list_tasks, make_env, registry
from sole_r1_sim.experts import do_nothing, noisy, random_policy, stall_after
from sole_r1_sim.progress import closing, raising, staged_progress
from sole_r1_sim.render import CameraSpec, FreeCameraPose, RenderSettings, orient


# ---------------------------------------------------------------------------------------------- registry
def test_metaworld_task_list_is_all_50_v3_tasks_with_instructions():
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    tasks = list_tasks("metaworld")
    assert sorted(tasks) == sorted(ALL_V3_ENVIRONMENTS)
    assert len(tasks) == 50
    for task in tasks:
        assert registry.task_spec("metaworld", task).instruction.endswith(".")


def test_robosuite_task_list_has_the_required_tasks():
    assert {"Lift", "Stack", "Door", "PickPlaceCan", "NutAssemblySquare"} <= set(list_tasks("robosuite"))


def test_unknown_suite_and_task_give_errors_that_name_the_choices():
    with pytest.raises(ValueError, match="metaworld"):
        make_env("gazebo", "reach")
    with pytest.raises(KeyError, match="reach-v3"):
        make_env("metaworld", "reach-v2")


def test_config_dir_override_reads_another_task_file(tmp_path, monkeypatch):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "metaworld.yaml").write_text(
        "camera_presets:\n  default: {shoulder: corner, wrist: gripperPOV}\n"
        "tasks:\n  reach-v3: {instruction: Touch the red dot., max_episode_steps: 7}\n"
    )
    monkeypatch.setenv(registry.CONFIG_DIR_ENV, str(tmp_path))
    spec = registry.task_spec("metaworld", "reach-v3")
    assert list_tasks("metaworld") == ["reach-v3"]
    assert spec.instruction == "Touch the red dot."
    assert spec.max_episode_steps == 7
    assert spec.cameras[0].name == "corner" and spec.cameras[1].name == "gripperPOV"


def test_wrong_task_key_in_config_is_rejected_with_the_allowed_keys(tmp_path, monkeypatch):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "metaworld.yaml").write_text(
        "camera_presets:\n  default: {shoulder: corner, wrist: gripperPOV}\n"
        "tasks:\n  reach-v3: {instruction: Reach., max_steps: 7}\n"
    )
    monkeypatch.setenv(registry.CONFIG_DIR_ENV, str(tmp_path))
    with pytest.raises(ValueError, match="max_steps.*allowed"):
        registry.task_spec("metaworld", "reach-v3")


def test_missing_config_dir_says_which_variable_to_set(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.CONFIG_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=registry.CONFIG_DIR_ENV):
        list_tasks("robosuite")


def test_external_suites_are_imported_lazily_and_dispatched(monkeypatch):
    calls = {}

    class _Env(ManipulationEnv):
        def reset(self, seed=None):
            return None, {}

        def step(self, action):
            return None, 0.0, False, False, {}

        def true_success(self):
            return False

        def privileged_progress(self):
            return 0.0

    def make(task, *, image_size, seed, tuned, **kwargs):
        calls.update(task=task, image_size=image_size, seed=seed, tuned=tuned, **kwargs)
        return _Env()

    fake = types.ModuleType("sole_r1_sim.maniskill_env")
    fake.TASKS = ["PickCube-v1"]
    fake.make = make
    monkeypatch.setitem(sys.modules, "sole_r1_sim.maniskill_env", fake)
    assert list_tasks("maniskill") == ["PickCube-v1"]
    env = make_env("maniskill", "PickCube-v1", image_size=(96, 80), seed=3, tuned=False, robot="panda")
    assert isinstance(env, ManipulationEnv)
    assert calls == {"task": "PickCube-v1", "image_size": (96, 80), "seed": 3, "tuned": False, "robot": "panda"}


def test_unimportable_external_suite_raises_import_error_naming_the_suite(monkeypatch):
    monkeypatch.setitem(sys.modules, "sole_r1_sim.libero_env", None)  # makes the import fail
    with pytest.raises(ImportError, match="libero"):
        list_tasks("libero")


# ---------------------------------------------------------------------------------------------- render specs
def test_camera_spec_needs_exactly_one_of_name_or_free_camera():
    with pytest.raises(ValueError):
        CameraSpec("shoulder")
    with pytest.raises(ValueError):
        CameraSpec("shoulder", name="corner", free=FreeCameraPose((0, 0, 0), 1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="orientation"):
        CameraSpec("shoulder", name="corner", orientation="upside-down")
    with pytest.raises(ValueError, match="unknown keys"):
        CameraSpec.from_dict("shoulder", {"name": "corner", "fov": 45})


def test_orientation_fixes_move_the_top_left_pixel_where_expected():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert np.array_equal(orient(image, "rot180")[0, 0], image[1, 2])
    assert np.array_equal(orient(image, "flipud")[0, 0], image[1, 0])
    assert np.array_equal(orient(image, "fliplr")[0, 0], image[0, 2])
    assert orient(image, "rot180").flags["C_CONTIGUOUS"]


def test_render_settings_reject_absurd_sizes():
    with pytest.raises(ValueError, match="image size"):
        RenderSettings(height=0, width=128)


# ---------------------------------------------------------------------------------------------- progress
def test_closing_and_raising_fractions():
    assert closing(0.05, 0.20) == pytest.approx(0.75)
    assert closing(0.30, 0.20) == 0.0          # moved away: no credit, no negative credit
    assert closing(0.10, 0.001) == 1.0         # started there
    assert raising(0.90, 0.80, 0.84) == 1.0
    assert raising(0.82, 0.80, 0.84) == pytest.approx(0.5)


def test_staged_progress_later_stage_implies_earlier_and_only_success_reaches_100():
    # grasp lost (stage 2 = 0) but the object is at the goal (stage 3 = 1): earlier stages count as done.
    assert staged_progress([0.3, 0.2, 0.5], [0.0, 0.0, 1.0], success=False) == 95.0
    assert staged_progress([0.3, 0.2, 0.5], [0.5, 0.0, 0.0], success=False) == pytest.approx(15.0)
    assert staged_progress([0.3, 0.2, 0.5], [1.0, 1.0, 0.5], success=False) == pytest.approx(75.0)
    assert staged_progress([0.3, 0.2, 0.5], [0.0, 0.0, 0.0], success=True) == 100.0
    with pytest.raises(ValueError):
        staged_progress([1.0], [0.1, 0.2], success=False)


# ---------------------------------------------------------------------------------------------- expert variants
class _CountingExpert:
    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1

    def act(self, env, obs):
        return np.array([0.5, -0.5, 0.25, 0.0, 0.0, 0.0, -1.0])


class _StubEnv:
    max_episode_steps = 10


def test_stall_after_stops_moving_but_keeps_the_gripper_closed():
    policy = stall_after(_CountingExpert(), fraction=0.3)
    policy.reset()
    actions = [policy.act(_StubEnv(), None) for _ in range(10)]
    assert all(np.allclose(a[:3], [0.5, -0.5, 0.25]) for a in actions[:3])
    assert all(np.allclose(a[:6], 0.0) and a[6] == -1.0 for a in actions[3:])
    policy.reset()
    assert np.allclose(policy.act(_StubEnv(), None)[:3], [0.5, -0.5, 0.25])


def test_noisy_perturbs_within_bounds_and_zero_sigma_is_the_expert():
    expert = _CountingExpert()
    assert np.allclose(noisy(expert, 0.0, seed=1).act(None, None), expert.act(None, None))
    actions = np.array([noisy(expert, 0.5, seed=s).act(None, None) for s in range(20)])
    assert np.all(np.abs(actions) <= 1.0) and actions[:, 0].std() > 0.1
    with pytest.raises(ValueError):
        noisy(expert, -1.0)


def test_random_and_do_nothing_policies_have_the_contract_shape():
    random_action = random_policy(seed=0).act(None, None)
    assert random_action.shape == (ACTION_DIM,) and np.all(np.abs(random_action) <= 1.0)
    assert np.array_equal(do_nothing().act(None, None), np.zeros(ACTION_DIM))
