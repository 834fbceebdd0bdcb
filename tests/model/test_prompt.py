"""Prompt texts are the official ones word for word; messages have the official shape; `sole-r1 prompt` works."""
import argparse
import json
import math

import numpy as np
import pytest
from PIL import Image

from sole_r1_model.commands import prompt as prompt_command
from sole_r1_model.composite import CompositeFrameBuilder
from sole_r1_model.frames import read_frames, split_side_by_side
from sole_r1_model.prompt import SYSTEM_PROMPT, build_messages, build_user_text, format_previous_progress
from sole_r1_model.rewarder import ProgressQuery

# Copied from philipmit/sole-r1-model reward_server/src/reward_server/constants.py (SYSTEM_PROMPT_TEMPLATE).
OFFICIAL_SYSTEM = (
    "You are an expert roboticist with the goal of predicting task progress percentages given frames from a video "
    "of a robot attempting to complete a task. You first think, in the form of an internal monologue, before "
    "providing your final answer. Your reasoning process MUST BE enclosed within <think> </think> tags and should "
    "include detailed reasoning. Your final answer MUST BE enclosed within <answer> </answer> tags and should be a "
    "integer (positive or negative) representing current task progress percentage. Example output format: "
    "<think>[detailed reasoning process]</think><answer>[current task progress]%</answer>"
)
# The official question of the SOLE training data example (README of philipmit/sole-r1-model), task and
# previous progress filled in as the official decoder does.
OFFICIAL_FULL = (
    "Here is an image containing multiple camera views of a robot attempting to complete a task. The views on the "
    "top are from an external camera. The views on the bottom are from the robot's wrist camera. The views from the "
    "very first timestep are shown to the left. The views from the previous timestep are shown in the middle. The "
    "views from the current timestep are shown to the right. The task description is: close the left drawer. The "
    "task progress for the very first timestep is 0%. The task progress for the previous timestep is 0%. Predict "
    "the task progress for the current timestep."
)
INTRO = "Here is an image containing multiple camera views of a robot attempting to complete a task. "
TASK_AND_ZERO = ("The task description is: open it. The task progress for the very first timestep is 0%. "
                 "Predict the task progress for the current timestep.")
TWO_COLUMNS = ("The views from the very first timestep are shown to the left. The views from the current timestep "
               "are shown to the right. ")
THREE_COLUMNS = ("The views from the very first timestep are shown to the left. The views from the previous "
                 "timestep are shown in the middle. The views from the current timestep are shown to the right. ")
WITH_PREVIOUS_7 = ("The task description is: open it. The task progress for the very first timestep is 0%. The task "
                   "progress for the previous timestep is 7%. Predict the task progress for the current timestep.")
ROWS = ("The views on the top are from an external camera. The views on the bottom are from the robot's wrist "
        "camera. ")
WRIST = "The views are from the robot's wrist camera. "


def test_system_prompt_is_the_official_text():
    assert SYSTEM_PROMPT == OFFICIAL_SYSTEM


def test_full_question_matches_the_official_training_prompt():
    assert build_user_text("close the left drawer", 0) == OFFICIAL_FULL


@pytest.mark.parametrize("variant, expected", [
    ("from_zero", INTRO + ROWS + TWO_COLUMNS + TASK_AND_ZERO),
    ("external_only", INTRO + THREE_COLUMNS + WITH_PREVIOUS_7),
    ("external_only_from_zero", INTRO + TWO_COLUMNS + TASK_AND_ZERO),
    ("wrist_only", INTRO + WRIST + THREE_COLUMNS + WITH_PREVIOUS_7),
    ("wrist_only_from_zero", INTRO + WRIST + TWO_COLUMNS + TASK_AND_ZERO),
])
def test_variant_questions_match_the_official_templates(variant, expected):
    assert build_user_text("open it", 7, variant) == expected


def test_task_is_inserted_verbatim_like_the_official_pipeline():
    # The official scripts pass "Pick up the cube from the table." into "...is: {task}. ", giving "..".
    assert "The task description is: Pick up the cube from the table.. " in build_user_text(
        "Pick up the cube from the table.", 0)


@pytest.mark.parametrize("value, text", [(12.6, "13"), (150, "100"), (-150, "-100"), (-3, "-3"), (0, "0")])
def test_previous_progress_is_written_as_a_clipped_integer(value, text):
    assert format_previous_progress(value) == text
    assert f"previous timestep is {text}%." in build_user_text("t", value)


@pytest.mark.parametrize("args, message", [(("t", math.nan), "finite"), (("t", 0, "grid"), "unknown prompt variant"),
                                           (("  ", 0), "non-empty task")])
def test_bad_prompt_inputs_are_rejected_clearly(args, message):
    with pytest.raises(ValueError, match=message):
        build_user_text(*args)


def test_messages_have_the_official_shape():
    frames = tuple(np.full((48, 64, 3), v, np.uint8) for v in (10, 20, 30))
    query = ProgressQuery(task="lift", external=frames, wrist=frames, previous_progress=33)
    image, messages = build_messages(query)
    assert image.shape == (784, 1176, 3)
    assert messages == [
        {"role": "system", "content": OFFICIAL_SYSTEM},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": build_user_text("lift", 33)}]},
    ]


def _run_prompt(argv):
    parser = argparse.ArgumentParser()
    prompt_command.register(parser.add_subparsers())
    args = parser.parse_args(["prompt"] + argv)
    return args.func(args)


def test_prompt_command_writes_exact_composites_and_messages(official_lift, tmp_path):
    video = sorted((official_lift / "videos").glob("*episode_14*.mp4"))[0]
    previous = ["0", "10", "24", "28", "26", "28", "32", "33", "100"]
    code = _run_prompt(["--task", "Pick up the cube from the table.", "--side-by-side", str(video),
                        "--out", str(tmp_path), "--previous", *previous])
    assert code == 0
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["key_frames"] == [0, 2, 5, 8, 10, 13, 16, 18, 21, 24] and len(index["steps"]) == 9
    for t in range(1, 10):
        with Image.open(tmp_path / f"step_{t:03d}.png") as png:
            assert png.size == (1176, 784) and png.mode == "RGB"
        messages = json.loads((tmp_path / f"step_{t:03d}.json").read_text())
        assert messages[0]["content"] == OFFICIAL_SYSTEM
        assert f"previous timestep is {previous[t - 1]}%." in messages[1]["content"][1]["text"]
    assert index["steps"][2]["frames"] == {"first": 0, "previous": 5, "current": 8}
    # The PNG is the composite itself (lossless, RGB order kept): rebuild step 3 from frames 0, 5, 8.
    views = [split_side_by_side(f) for f in read_frames(video, [0, 5, 8]).frames]
    query = ProgressQuery(task="x", external=tuple(v[0] for v in views), wrist=tuple(v[1] for v in views))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "step_003.png")),
                                  CompositeFrameBuilder().build(query))


def test_prompt_command_rejects_a_wrong_number_of_previous_values(official_lift, tmp_path):
    video = sorted((official_lift / "videos").glob("*.mp4"))[0]
    assert _run_prompt(["--task", "t", "--side-by-side", str(video), "--out", str(tmp_path),
                        "--previous", "0", "5"]) == 2
    assert not list(tmp_path.glob("step_*.png"))
