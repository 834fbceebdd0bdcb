"""ManiSkill 3 behind the env contract: real SAPIEN scenes rendered with (CPU) Vulkan.

One PickCube env is shared by the module (building one costs seconds). Needs mani-skill==3.0.1 (make setup) and a
working Vulkan device (tools/setup/setup_vulkan.sh).
"""
import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation
from scipy.stats import spearmanr

from sole_r1_sim.contract import ManipulationEnv
from sole_r1_sim.experts_maniskill import PickCubeExpert
from sole_r1_sim.maniskill_env import TASKS, ManiSkillAssetsMissing, make
from sole_r1_config import config_dir

SIZE = (128, 128)


@pytest.fixture(scope="module")
def pick_cube():
    env = make("PickCube-v1", image_size=SIZE, seed=0)
    yield env
    env.close()


def _project(env, camera: str, world_point: np.ndarray) -> np.ndarray:
    """Pixel (x, y) of a world point through ManiSkill's own OpenCV-convention camera parameters."""
    params = env._obs["sensor_param"][camera]
    intrinsic, extrinsic = params["intrinsic_cv"][0].numpy(), params["extrinsic_cv"][0].numpy()
    uvw = intrinsic @ (extrinsic @ np.append(world_point, 1.0))
    return uvw[:2] / uvw[2]


def _red_centroid(image: np.ndarray):
    pixels = image.astype(int)
    ys, xs = np.nonzero((pixels[..., 0] > 150) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60))
    return (np.array([xs.mean(), ys.mean()]), len(xs)) if len(xs) else (None, 0)


def test_task_list_and_instructions_come_from_the_yaml(pick_cube):
    with open(config_dir() / "tasks" / "maniskill.yaml", encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    assert TASKS == list(document["tasks"])
    assert {"PickCube-v1", "PushCube-v1"} <= set(TASKS)
    assert isinstance(pick_cube, ManipulationEnv)
    assert pick_cube.instruction == document["tasks"]["PickCube-v1"]["instruction"]


def test_reset_and_step_return_contract_shapes_and_dtypes(pick_cube):
    obs, info = pick_cube.reset(seed=3)
    assert info["instruction"] == pick_cube.instruction
    for image in (obs.shoulder, obs.wrist):
        assert image.shape == SIZE + (3,) and image.dtype == np.uint8 and image.flags["C_CONTIGUOUS"]
    assert obs.proprio.as_vector().shape == (8,) and obs.proprio.as_vector().dtype == np.float32
    assert obs.proprio.joint_positions.shape == (9,) and len(obs.proprio.joint_names) == 9
    assert np.isclose(np.linalg.norm(obs.proprio.ee_quaternion), 1.0, atol=1e-4)
    assert obs.proprio.gripper_opening > 0.9          # ManiSkill resets the Panda with open fingers
    obs, reward, terminated, truncated, info = pick_cube.step(np.zeros(7))
    assert reward == 0.0 and terminated is False and truncated is False and info["step"] == 1
    assert obs.shoulder.shape == SIZE + (3,) and obs.wrist.dtype == np.uint8


def test_same_seed_gives_the_same_first_frame(pick_cube):
    first, _ = pick_cube.reset(seed=5)
    pick_cube.step(np.ones(7))
    again, _ = pick_cube.reset(seed=5)
    other, _ = pick_cube.reset(seed=6)
    assert np.array_equal(first.shoulder, again.shoulder)
    assert not np.array_equal(first.shoulder, other.shoulder)


def test_images_are_real_and_the_two_cameras_differ(pick_cube):
    obs, _ = pick_cube.reset(seed=1)
    for image in (obs.shoulder, obs.wrist):
        assert image.std() > 10 and len(np.unique(image.reshape(-1, 3), axis=0)) > 100
    assert np.abs(obs.shoulder.astype(int) - obs.wrist.astype(int)).mean() > 20


@pytest.mark.parametrize("role,camera", [("shoulder", "base_camera"), ("wrist", "hand_camera")])
def test_images_have_a_top_left_origin(pick_cube, role, camera):
    # The red cube must appear where the camera's own (OpenCV, top-left) projection puts it, not mirrored.
    obs, _ = pick_cube.reset(seed=1)
    image = getattr(obs, role)
    expected = _project(pick_cube, camera, pick_cube.raw.cube.pose.p[0].numpy())
    centroid, count = _red_centroid(image)
    assert count >= 5, f"the red cube is not visible in the {role} image"
    flipped_row = SIZE[0] - 1 - expected[1]
    assert abs(flipped_row - expected[1]) > 20          # the check can tell the two orientations apart
    assert np.linalg.norm(centroid - expected) < 6
    assert abs(centroid[1] - flipped_row) > 15


def test_translation_and_rotation_actions_move_the_tcp_along_base_axes(pick_cube):
    obs, _ = pick_cube.reset(seed=2)
    start_position, start_rotation = obs.proprio.ee_position, Rotation.from_quat(obs.proprio.ee_quaternion)
    action = np.zeros(7)
    action[0], action[5], action[6] = 0.5, 0.5, 1.0     # +x, +yaw (about the base z axis), gripper open
    for _ in range(5):
        obs, *_ = pick_cube.step(action)
    moved = obs.proprio.ee_position - start_position
    turned = (Rotation.from_quat(obs.proprio.ee_quaternion) * start_rotation.inv()).as_rotvec()
    assert moved[0] > 0.03 and abs(moved[1]) < 0.01 and abs(moved[2]) < 0.01
    assert turned[2] > 0.03 and abs(turned[0]) < 0.01 and abs(turned[1]) < 0.01


def test_gripper_action_closes_on_minus_one_and_opens_on_plus_one(pick_cube):
    pick_cube.reset(seed=2)
    close, open_ = np.zeros(7), np.zeros(7)
    close[6], open_[6] = -1.0, 1.0
    for _ in range(8):
        obs, *_ = pick_cube.step(close)
    assert obs.proprio.gripper_opening < 0.1
    for _ in range(8):
        obs, *_ = pick_cube.step(open_)
    assert obs.proprio.gripper_opening > 0.9


def test_bad_actions_raise_clear_errors(pick_cube):
    pick_cube.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        pick_cube.step(np.array([np.nan, 0, 0, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match="7 values"):
        pick_cube.step(np.zeros(6))


def test_episode_truncates_at_max_episode_steps():
    env = make("PickCube-v1", image_size=(32, 32), seed=0, max_episode_steps=3)
    try:
        env.reset()
        flags = [env.step(np.zeros(7))[3] for _ in range(3)]
    finally:
        env.close()
    assert flags == [False, False, True]


def test_expert_solves_pick_cube_and_privileged_progress_rises(pick_cube):
    expert = PickCubeExpert()
    obs, _ = pick_cube.reset(seed=0)
    expert.reset()
    progress = [pick_cube.privileged_progress()]
    for _ in range(pick_cube.max_episode_steps):
        obs, *_ = pick_cube.step(expert.act(pick_cube, obs))
        progress.append(pick_cube.privileged_progress())
        if pick_cube.true_success():
            break
    assert pick_cube.true_success()
    assert progress[0] < 5 and progress[-1] == 100.0
    assert spearmanr(np.arange(len(progress)), progress).correlation >= 0.8


def test_do_nothing_keeps_progress_low_and_fails(pick_cube):
    pick_cube.reset(seed=0)
    progress = []
    for _ in range(20):
        pick_cube.step(np.zeros(7))
        progress.append(pick_cube.privileged_progress())
    assert max(progress) < 10 and not pick_cube.true_success()


def test_push_cube_runs_with_its_own_progress():
    env = make("PushCube-v1", image_size=(64, 64), seed=0)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shoulder.shape == (64, 64, 3) and env.privileged_progress() < 5
        state = env.privileged_state()
        # Move the TCP down behind the cube: the reach part of the progress must grow.
        for _ in range(10):
            behind = state["object_pos"] - np.array([0.05, 0.0, 0.0])
            action = np.zeros(7)
            action[:3] = 1.5 * (behind - env.privileged_state()["tcp_pos"]) / env.action_scale.translation
            env.step(np.clip(action, -1, 1))
        assert env.privileged_progress() > 10
    finally:
        env.close()


def test_task_that_needs_downloads_fails_with_instructions():
    with pytest.raises(ManiSkillAssetsMissing, match="download_asset partnet_mobility_cabinet"):
        make("OpenCabinetDrawer-v1")


def test_unwired_robots_and_unknown_tasks_are_refused():
    with pytest.raises(ValueError, match="wired for robots"):
        make("PickCube-v1", robot="widowx250s")
    with pytest.raises(KeyError, match="unknown ManiSkill task"):
        make("NoSuchTask-v1")


def test_fetch_embodiment_renders_and_moves():
    env = make("PickCube-v1", robot="fetch", image_size=(64, 64), seed=0)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.proprio.joint_names[-2:] == ("r_gripper_finger_joint", "l_gripper_finger_joint")
        assert np.abs(obs.shoulder.astype(int) - obs.wrist.astype(int)).mean() > 20
        action = np.zeros(7)
        action[2] = 1.0
        for _ in range(5):
            moved, *_ = env.step(action)
        assert moved.proprio.ee_position[2] - obs.proprio.ee_position[2] > 0.02
    finally:
        env.close()


def test_tuning_only_hides_the_wrist_camera_mount():
    # Same seed, same state: the tuned picture differs from ManiSkill's default only where the D415 mount was.
    images = {}
    for tuned in (False, True):
        env = make("PickCube-v1", image_size=SIZE, seed=0, tuned=tuned)
        try:
            obs, _ = env.reset(seed=1)
            images[tuned] = obs
        finally:
            env.close()
    for role in ("shoulder", "wrist"):
        changed = np.any(getattr(images[False], role) != getattr(images[True], role), axis=-1)
        assert changed.mean() < 0.03, f"{role}: {changed.mean():.1%} of pixels changed"
