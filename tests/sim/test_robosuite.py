"""RoboSuite behind the contract: observations, orientation, official camera layout, seeding, experts, progress."""
import glob
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

from .conftest import IMAGE_SIZE, spearman
from sole_r1_sim import make_env
from sole_r1_sim.experts import do_nothing, make_expert, rollout

OFFICIAL_VIDEOS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sole_r1_official_lift" / "videos"


@pytest.fixture(scope="module")
def lift_env():
    env = make_env("robosuite", "Lift", image_size=IMAGE_SIZE, seed=0)
    yield env
    env.close()


def test_reset_and_step_return_contract_shapes_and_dtypes(lift_env):
    obs, info = lift_env.reset(seed=0)
    assert info["instruction"] == lift_env.instruction == "Pick up the cube from the table."
    for image in (obs.shoulder, obs.wrist):
        assert image.shape == (*IMAGE_SIZE, 3) and image.dtype == np.uint8
    obs, reward, terminated, truncated, info = lift_env.step(np.zeros(7))
    assert reward == 0.0 and terminated is False and truncated is False and info["step"] == 1
    proprio = obs.proprio
    assert proprio.ee_position.shape == (3,) and np.linalg.norm(proprio.ee_quaternion) == pytest.approx(1.0, abs=1e-6)
    assert 0.0 <= proprio.gripper_opening <= 1.0
    assert proprio.joint_positions.shape == (9,) and len(proprio.joint_names) == 9
    assert lift_env.action_scale.translation == pytest.approx(0.05)
    assert lift_env.action_scale.rotation == pytest.approx(0.5)


def test_images_are_not_blank_and_the_two_cameras_differ(lift_env):
    obs, _ = lift_env.reset(seed=0)
    assert obs.shoulder.std() > 10 and obs.wrist.std() > 10
    assert np.abs(obs.shoulder.astype(int) - obs.wrist).mean() > 10


def test_shoulder_image_has_the_table_at_the_bottom(lift_env):
    obs, _ = lift_env.reset(seed=0)
    before = obs.shoulder.astype(int)
    model = lift_env.raw.sim.model._model
    table = model.body("table").id
    saved = (model.geom_rgba.copy(), model.geom_matid.copy())
    try:
        for geom in range(model.ngeom):
            if model.geom_bodyid[geom] == table:
                model.geom_matid[geom] = -1
                model.geom_rgba[geom, :3] = (0.0, 1.0, 0.0)
        after = lift_env.observe().shoulder.astype(int)
    finally:
        model.geom_rgba[:], model.geom_matid[:] = saved
    changed = np.abs(after - before).sum(axis=2) > 60
    height = IMAGE_SIZE[0]
    assert changed.sum() > 0.05 * changed.size
    assert np.nonzero(changed)[0].mean() > 0.6 * height
    assert changed[: height // 4].mean() < 0.01          # top quarter: wall and robot, no table


def _grey_32(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float64)
    return cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).ravel()


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_grey_32(a), _grey_32(b))[0, 1])


@pytest.mark.skipif(not OFFICIAL_VIDEOS.is_dir(), reason=f"official Lift videos not found under {OFFICIAL_VIDEOS}")
def test_official_lift_preset_reproduces_the_view_layout_of_the_official_videos():
    # Left half of each official frame is the external view, right half the wrist view (768x768 each).
    first_frames = [iio.imread(path)[0] for path in sorted(glob.glob(str(OFFICIAL_VIDEOS / "*.mp4")))]
    assert len(first_frames) == 4
    official = make_env("robosuite", "Lift", image_size=(128, 128), seed=0, camera_preset="official_lift")
    agentview = make_env("robosuite", "Lift", image_size=(128, 128), seed=0, camera_preset="agentview")
    ours, _ = official.reset(seed=0)
    theirs, _ = agentview.reset(seed=0)
    official.close()
    agentview.close()
    external = [_correlation(ours.shoulder, frame[:, :768]) for frame in first_frames]
    wrist = [_correlation(ours.wrist, frame[:, 768:]) for frame in first_frames]
    baseline = [_correlation(theirs.shoulder, frame[:, :768]) for frame in first_frames]
    assert sum(c > 0.9 for c in external) >= 3, external   # three of the four videos are mirrored sideview frames
    assert max(baseline) < 0.5, baseline                    # an agentview image does not look like them
    assert min(wrist) > 0.85, wrist


def test_official_lift_free_camera_sees_the_mirrored_sideview_scene():
    # A physical camera at sideview's mirror position must see (nearly) the left-right mirror of sideview's picture.
    free = make_env("robosuite", "Lift", image_size=(96, 96), seed=0, camera_preset="official_lift_free")
    side = make_env("robosuite", "Lift", image_size=(96, 96), seed=0, camera_preset="sideview")
    a, _ = free.reset(seed=0)
    b, _ = side.reset(seed=0)
    free.close()
    side.close()
    assert _correlation(a.shoulder, b.shoulder[:, ::-1]) > 0.85
    assert _correlation(a.shoulder, b.shoulder) < 0.5


def test_same_seed_gives_the_same_first_observation_and_other_seeds_move_the_cube(lift_env):
    first, _ = lift_env.reset(seed=7)
    cube = lift_env.object_state()["cube_pos"]
    lift_env.step(np.ones(7))
    again, _ = lift_env.reset(seed=7)
    assert np.array_equal(first.shoulder, again.shoulder) and np.array_equal(first.wrist, again.wrist)
    assert np.array_equal(first.proprio.joint_positions, again.proprio.joint_positions)
    lift_env.reset(seed=8)
    assert np.linalg.norm(lift_env.object_state()["cube_pos"] - cube) > 1e-3


def test_nan_action_is_rejected(lift_env):
    lift_env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        lift_env.step([0, 0, 0, np.inf, 0, 0, 0])


def test_translation_and_axis_angle_rotation_move_the_hand_in_the_base_frame(lift_env):
    from scipy.spatial.transform import Rotation

    obs, _ = lift_env.reset(seed=0)
    start = obs.proprio
    for _ in range(8):
        obs, *_ = lift_env.step([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    moved = obs.proprio.ee_position - start.ee_position
    assert moved[0] > 0.05 and abs(moved[1]) < 0.01 and abs(moved[2]) < 0.01
    start = obs.proprio
    for _ in range(8):
        obs, *_ = lift_env.step([0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0])
    turn = Rotation.from_quat(obs.proprio.ee_quaternion) * Rotation.from_quat(start.ee_quaternion).inv()
    rotvec = turn.as_rotvec()
    assert rotvec[2] > 0.3 and abs(rotvec[0]) < 0.1 and abs(rotvec[1]) < 0.1   # turned about +z only


def test_gripper_command_opens_and_closes_the_fingers(lift_env):
    lift_env.reset(seed=0)
    for _ in range(10):
        obs, *_ = lift_env.step([0, 0, 0, 0, 0, 0, -1.0])
    closed = obs.proprio.gripper_opening
    for _ in range(20):  # the Panda fingers travel at a fixed speed: ~15 steps from closed to fully open
        obs, *_ = lift_env.step([0, 0, 0, 0, 0, 0, 1.0])
    assert closed < 0.1 and obs.proprio.gripper_opening > 0.9


@pytest.mark.parametrize("task", ["Lift", "Door", "Stack", "PickPlaceCan"])
def test_scripted_expert_succeeds_and_progress_rises(task):
    env = make_env("robosuite", task, image_size=(48, 48), seed=1)
    trajectory = rollout(env, make_expert("robosuite", task), seed=1, stop_on_success=True)
    env.close()
    assert trajectory.final_success, f"{task}: expert did not succeed in {len(trajectory.actions)} steps"
    assert trajectory.progress[0] < 20 and trajectory.progress[-1] == 100.0
    assert spearman(trajectory.progress) >= 0.8


@pytest.mark.parametrize("task", ["Lift", "Door", "Stack"])
def test_progress_stays_low_when_doing_nothing(task):
    env = make_env("robosuite", task, image_size=(32, 32), seed=2)
    trajectory = rollout(env, do_nothing(), seed=2, steps=30, keep_frames=False)
    env.close()
    assert max(trajectory.progress) < 20
    assert not any(trajectory.success)


def test_untuned_env_keeps_hard_resets_and_suite_render_settings():
    env = make_env("robosuite", "Lift", image_size=(48, 48), seed=0, tuned=False)
    first, _ = env.reset(seed=3)
    model_before = env.raw.sim.model._model
    second, _ = env.reset(seed=3)
    assert env.raw.sim.model._model is not model_before            # RoboSuite's default hard reset
    assert env.raw.sim.model._model.vis.quality.shadowsize == 4096  # untouched visual settings
    assert np.array_equal(first.shoulder, second.shoulder)
    env.close()
