"""LIBERO behind the env contract. LIBERO lives only in .venv-libero (`make setup-libero`), so the real checks run
there in a subprocess (tests/sim/libero_checks.py) and are asserted here; a missing .venv-libero is a failure.
"""
import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sole_r1_sim import libero_env as suite

ROOT = Path(__file__).resolve().parents[2]
LIBERO_PYTHON = ROOT / ".venv-libero" / "bin" / "python"
CHECKS = Path(__file__).with_name("libero_checks.py")
TASK = "libero_object/pick_up_the_alphabet_soup_and_place_it_in_the_basket"


def run_checks(*names: str, timeout: int = 600) -> dict:
    """Run libero_checks.py in the LIBERO venv and return its measurements."""
    if not LIBERO_PYTHON.exists():
        pytest.fail(f"{LIBERO_PYTHON} is missing: run `make setup-libero` (tools/setup/setup_libero.sh) first")
    env = dict(os.environ)
    # The ROS wheels' bootstrap in the LIBERO venv must set up *its* library path, not inherit this venv's.
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    env.pop("LD_LIBRARY_PATH", None)
    env["PYTHONPATH"] = str(ROOT / "src")          # this checkout's code, whatever the venv was installed from
    env["SOLE_R1_CONFIG_DIR"] = str(ROOT / "config")
    env.setdefault("MUJOCO_GL", "egl")
    done = subprocess.run([str(LIBERO_PYTHON), str(CHECKS), *names], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, \
        f"libero_checks.py {names} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def quick():
    return run_checks("contract", "orientation")


@pytest.fixture(scope="module")
def episodes():
    return run_checks("consistency", "expert", "idle")


def test_task_names_are_listed_without_importing_libero():
    assert len(suite.TASKS) == 40 and TASK in suite.TASKS
    assert Counter(name.split("/")[0] for name in suite.TASKS) == {
        "libero_object": 10, "libero_spatial": 10, "libero_goal": 10, "libero_10": 10}


def test_building_an_env_without_libero_points_at_make_setup_libero():
    if importlib.util.find_spec("libero") is not None:
        pytest.skip(f"LIBERO is importable in {sys.executable}; this checks the main venv")
    with pytest.raises(ImportError, match="make setup-libero"):
        suite.make(TASK)


def test_unknown_task_is_refused():
    with pytest.raises(KeyError, match="unknown LIBERO task"):
        suite.make("libero_object/no_such_task")


def test_instructions_are_libero_language_for_all_tasks(quick):
    contract = quick["contract"]
    assert contract["n_tasks"] == 40 and contract["mismatched_instructions"] == []
    expected = "pick up the alphabet soup and place it in the basket"
    assert contract["instruction"] == contract["info_instruction"] == expected


def test_reset_and_step_follow_the_contract(quick):
    contract = quick["contract"]
    assert contract["images"] == {"shoulder": [[128, 128, 3], "uint8"], "wrist": [[128, 128, 3], "uint8"]}
    shape, dtype, quaternion_norm, opening, joints = contract["proprio"]
    assert shape == [8] and dtype == "float32" and abs(quaternion_norm - 1) < 1e-6 and joints == 9
    assert opening > 0.8                      # settled with the gripper open
    assert contract["step"] == [0.0, False, False, 1]
    nan_error, shape_error = contract["bad_action_errors"]
    assert "NaN" in nan_error and "7 values" in shape_error


def test_images_are_real_and_the_two_cameras_differ(quick):
    contract = quick["contract"]
    assert min(contract["image_std"]) > 10 and min(contract["unique_colours"]) > 500
    assert contract["camera_difference"] > 20


def test_images_have_a_top_left_origin(quick):
    # Compared with mujoco.Renderer's picture of the same camera (top-left by construction), not its mirror.
    for role, correlation in quick["orientation"].items():
        assert correlation["as_is"] > 0.95, role
        assert correlation["as_is"] - correlation["flipped"] > 0.4, role


@pytest.mark.slow
def test_tuned_rendering_matches_liberos_own_renderer(episodes):
    for role, agreement in episodes["consistency"].items():
        assert agreement["correlation"] > 0.9 and agreement["mean_abs_difference"] < 8, role


@pytest.mark.slow
def test_expert_places_the_soup_in_the_basket_with_rising_progress(episodes):
    expert = episodes["expert"]
    assert expert["success"] and expert["steps"] < 280
    assert expert["progress"][0] < 5 and expert["progress"][-1] == 100.0
    assert expert["spearman"] >= 0.8


@pytest.mark.slow
def test_doing_nothing_keeps_progress_low(episodes):
    assert episodes["idle"]["max_progress"] < 5 and not episodes["idle"]["success"]


def test_a_missing_libero_venv_fails_and_says_how_to_create_it(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "LIBERO_PYTHON", ROOT / ".venv-libero-absent" / "bin" / "python")
    with pytest.raises(pytest.fail.Exception, match="make setup-libero"):
        run_checks("contract")
