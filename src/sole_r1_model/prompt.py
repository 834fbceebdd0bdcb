"""The SOLE-R1 chat prompt: system instruction, user question per layout variant, and HF chat messages.

Texts are word for word those of the official code, which the released model was trained and evaluated with:
- system prompt: `SYSTEM_PROMPT_TEMPLATE`, philipmit/sole-r1-model `reward_server/src/reward_server/constants.py`
  (same text as `system_prompt_template` in Philip-MIT/rewardgen `rewardgen/sole.py`);
- user questions: `USER_QUESTION_TEMPLATE` / `USER_QUESTION_FROM_ZERO_TEMPLATE` /
  `USER_QUESTION_EXTERNAL_VIEW_TEMPLATE` from that `constants.py`, and for the views it lacks
  (external-only from zero, wrist-only) `user_question_*_template_*_view` from rewardgen `rewardgen/sole.py`.
  For external-only from zero we take rewardgen's sentence set: the reward server's version still says
  "The views from the previous timestep are shown in the middle", which that two-column image does not have.

Message shape (`make_conversation_image`, reward_server `utils.py`): the system message's content is a plain
string, not a list of parts; the user content is `[{"type": "image"}, {"type": "text", "text": question}]`.
Qwen3-VL's chat template renders a string and a one-text-part list identically, so this is the shape to keep.

Previous progress: the official decoder writes the model's own parsed answer at t-1 into the question
(`vlm_batch_decode.py`, the text after "The task progress for the previous timestep is "), as an integer string
clipped to [-100, 100], and "0" at the first call. When that answer was unparsable the official code writes
the raw string; we write the carried-forward value instead (the parser flags that step invalid).
"""
from __future__ import annotations

import math

import numpy as np

from sole_r1_model.composite import VARIANTS, CompositeFrameBuilder
from sole_r1_model.parsing import clamp_progress
from sole_r1_model.rewarder import ProgressQuery

SYSTEM_PROMPT = (
    "You are an expert roboticist with the goal of predicting task progress percentages given frames from a video "
    "of a robot attempting to complete a task. "
    "You first think, in the form of an internal monologue, before providing your final answer. "
    "Your reasoning process MUST BE enclosed within <think> </think> tags and should include detailed reasoning. "
    "Your final answer MUST BE enclosed within <answer> </answer> tags and should be a integer (positive or "
    "negative) representing current task progress percentage. "
    "Example output format: <think>[detailed reasoning process]</think><answer>[current task progress]%</answer>"
)

_INTRO = "Here is an image containing multiple camera views of a robot attempting to complete a task. "
_ROWS = "The views on the top are from an external camera. The views on the bottom are from the robot's wrist camera. "
_WRIST = "The views are from the robot's wrist camera. "
_COLUMNS_3 = (
    "The views from the very first timestep are shown to the left. The views from the previous timestep are shown "
    "in the middle. The views from the current timestep are shown to the right. "
)
_COLUMNS_2 = (
    "The views from the very first timestep are shown to the left. The views from the current timestep are shown "
    "to the right. "
)
_TASK = "The task description is: {task_description}. "
_WITH_PREVIOUS = (
    "The task progress for the very first timestep is 0%. The task progress for the previous timestep is "
    "{prev_progress}%. Predict the task progress for the current timestep."
)
_FROM_ZERO = "The task progress for the very first timestep is 0%. Predict the task progress for the current timestep."

# variant -> question template; each is the concatenation the official constants spell out.
USER_QUESTION_TEMPLATES: dict[str, str] = {
    "full": _INTRO + _ROWS + _COLUMNS_3 + _TASK + _WITH_PREVIOUS,
    "from_zero": _INTRO + _ROWS + _COLUMNS_2 + _TASK + _FROM_ZERO,
    "external_only": _INTRO + _COLUMNS_3 + _TASK + _WITH_PREVIOUS,
    "external_only_from_zero": _INTRO + _COLUMNS_2 + _TASK + _FROM_ZERO,
    "wrist_only": _INTRO + _WRIST + _COLUMNS_3 + _TASK + _WITH_PREVIOUS,
    "wrist_only_from_zero": _INTRO + _WRIST + _COLUMNS_2 + _TASK + _FROM_ZERO,
}
if set(USER_QUESTION_TEMPLATES) != set(VARIANTS):  # a new layout must come with its question
    raise RuntimeError(f"prompt variants {sorted(USER_QUESTION_TEMPLATES)} != composite variants {sorted(VARIANTS)}")


def format_previous_progress(previous_progress: float) -> str:
    """The previous progress as the official prompt writes it: an integer string clipped to [-100, 100]."""
    value = float(previous_progress)
    if not math.isfinite(value):
        raise ValueError(f"previous_progress must be a finite percentage, got {previous_progress!r}")
    return str(int(round(clamp_progress(value))))


def build_user_text(task: str, previous_progress: float, variant: str = "full") -> str:
    """The user question for one model call; `previous_progress` is ignored by the from-zero variants."""
    if variant not in USER_QUESTION_TEMPLATES:
        raise ValueError(f"unknown prompt variant {variant!r}; choose one of {sorted(USER_QUESTION_TEMPLATES)}")
    if not isinstance(task, str) or not task.strip():
        raise ValueError("task must be a non-empty task description, e.g. 'Pick up the cube from the table.'")
    # The task is inserted verbatim, as the official pipeline does (a trailing '.' gives '..', as it did there).
    return USER_QUESTION_TEMPLATES[variant].format(
        task_description=task, prev_progress=format_previous_progress(previous_progress)
    )


def build_chat(user_text: str) -> list[dict]:
    """HF chat messages in the official shape: system content a string, user content [image, text]."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user_text}]},
    ]


def build_messages(query: ProgressQuery, variant: str = "full", builder: CompositeFrameBuilder | None = None
                   ) -> tuple[np.ndarray, list[dict]]:
    """The composite image (RGB uint8, smart-resized) and chat messages for one model call."""
    builder = builder or CompositeFrameBuilder(variant=variant)
    if builder.variant != variant:
        raise ValueError(f"builder variant {builder.variant!r} differs from prompt variant {variant!r}")
    image = builder.build(query)
    return image, build_chat(build_user_text(query.task, query.previous_progress, variant))
